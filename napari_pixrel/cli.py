"""The ``pixrel`` command: train, predict, demo, bench (headless, no Qt)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

from .data import painted_planes
from .decoder_choice import DECODERS
from .evidence import LOSS_ADVICE
from .folder import check_output_names, output_file_name, output_folder, read_tif, write_tif
from .loss_choice import AUTO, SMOOTHNESS_PAINTED, SMOOTHNESS_WEIGHT
from .model import ModelConfig
from .modelfile import load_model, save_model
from .predict import TILE, predict
from .trainer import TrainConfig, Trainer, TrainReport, classes_in_labels


class ProgressLine:
    """The training's progress on stderr: on a terminal one line that overwrites itself; in a log file (a
    batch job on a GPU server, nohup) a line per tenth of the run and per evaluation, where carriage returns
    would pile every step into one line."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self.tenth = -1
        self.last = ""

    def __call__(self, report: TrainReport) -> None:
        width = 30
        done = int(width * report.progress)
        line = (f"[{'#' * done}{'.' * (width - done)}] step {report.step:5d}  {report.elapsed:6.1f}s  "
                f"loss {report.loss:.3f} (ce {report.ce:.3f}, relation {report.relation:.3f})")
        if report.val_iou:
            line += f"  val mIoU {100 * report.val_iou['mIoU']:.1f}"
        if self.terminal:
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if report.finished else ""))  # K: erase a longer tail
        else:
            tenth = int(10 * report.progress)
            if line != self.last and (tenth > self.tenth or report.val_iou or report.finished):
                self.stream.write(line + "\n")
                self.last = line
            self.tenth = max(self.tenth, tenth)
        self.stream.flush()


def format_iou_table(columns: dict[str, dict]) -> str:
    """Plain-text table: one row per class, one column per named IoU dict (percent)."""
    columns = {k: v for k, v in columns.items() if v}
    if not columns:
        return "(no labeled pixels to evaluate)"
    names = list(next(iter(columns.values())).keys())
    width = max(len(n) for n in names) + 2
    lines = ["class".ljust(width) + "".join(f"{c:>14}" for c in columns)]
    for name in names:
        cells = "".join(f"{100 * col[name]:14.1f}" if np.isfinite(col[name]) else f"{'-':>14}"
                        for col in columns.values())
        lines.append(name.ljust(width) + cells)
    return "\n".join(lines)


def _read_pairs(images: list[str], labels: list[str], what: str) -> list:
    if len(images) != len(labels):
        raise SystemExit(f"pixrel: {len(images)} {what} images but {len(labels)} label files")
    planes = []
    for im, lab in zip(images, labels):
        try:
            painted = tifffile.imread(lab)
            planes += painted_planes(read_tif(im, labels_shape=painted.shape)[0], painted)
        except (ValueError, OSError) as err:
            raise SystemExit(f"pixrel: {im}: {err}") from None
    return planes


def _writable_file(out: str, example: str) -> Path:
    """Refuse, before training, a file path that could not be written after it (its missing folders are
    created when it is written)."""
    path = Path(out)
    if path.is_dir():
        raise SystemExit(f"pixrel: --out {out} is a folder: give a file name, e.g. {path / example}")
    folder = next(p for p in path.absolute().parents if p.exists())
    if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        raise SystemExit(f"pixrel: --out {out} cannot be written ({folder} is not a writable folder)")
    return path


def model_config(args, n_classes: int) -> ModelConfig:
    """ModelConfig from the shared model flags."""
    return ModelConfig(n_classes=n_classes, encoder=args.encoder, embed_dim=args.embed_dim,
                       decoder_channels=DECODERS[args.decoder])


def train_config(args) -> TrainConfig:
    """TrainConfig from the shared training flags."""
    return TrainConfig(
        loss=args.loss, relation_weight=args.relation_weight, anchors_per_class=args.anchors, lr=args.lr,
        schedule=args.schedule,
        steps=args.steps if args.steps is not None or args.minutes is not None else TrainConfig.steps,
        minutes=args.minutes, batch_size=args.batch_size, patch_size=args.patch_size,
        seed=args.seed, device=args.device, eval_every=args.eval_every, keep=args.keep, warp=args.warp,
        ema=args.ema, smoothness=args.smoothness,
    )


def run_training(trainer: Trainer, quiet: bool = False) -> TrainReport:
    """Drive a trainer to the end with a progress line; Ctrl-C stops it after the current step
    (the model trained so far is kept and saved), a second Ctrl-C aborts."""

    def stop(signum, frame):
        signal.signal(signal.SIGINT, previous)
        print("\nstopping after this step (Ctrl-C again to abort)", file=sys.stderr)
        trainer.stop()

    previous = signal.signal(signal.SIGINT, stop)
    progress = ProgressLine()
    try:
        for report in trainer.run():
            if report.message and not report.finished:  # what "auto" chose, before the progress line
                print(report.message, file=sys.stderr)
            if not quiet:
                progress(report)
    finally:
        signal.signal(signal.SIGINT, previous)
    if report.message:
        print(report.message, file=sys.stderr)
    return report


def cmd_train(args) -> int:
    out = _writable_file(args.out, "model.pt")
    train = _read_pairs(args.images, args.labels, "training")
    val = _read_pairs(args.val_images or [], args.val_labels or [], "validation")
    try:
        n_classes = len(args.class_names) if args.class_names else classes_in_labels(train + val)
        trainer = Trainer(train, train_config(args), model=model_config(args, n_classes), val=val,
                          class_names=args.class_names)
        report = run_training(trainer, args.quiet)
    except (ValueError, MemoryError) as err:
        raise SystemExit(f"pixrel: {err}") from None
    try:
        save_model(trainer.segmenter, out)
    except OSError as err:
        raise SystemExit(f"pixrel: {err}") from None
    print(format_iou_table({"train (painted)": report.train_iou, "validation": report.val_iou}))
    print(f"{report.step} steps in {report.elapsed:.1f}s of training; model written to {args.out}")
    return 0


def cmd_predict(args) -> int:
    try:
        names = check_output_names(args.images)
        segmenter = load_model(args.model, device=args.device)  # a bad device name: ValueError
    except ValueError as err:
        raise SystemExit(f"pixrel: {err}") from None
    try:
        out = output_folder(Path(args.images[0]).parent, args.out)
    except ValueError as err:
        raise SystemExit(f"pixrel: --out: {err}") from None
    for path, name in zip(args.images, names):
        t0 = time.perf_counter()
        try:
            image, rgb = read_tif(path, segmenter.config.in_channels)
            result = predict(segmenter, image, tile=args.tile, probabilities=args.probabilities, rgb=rgb)
        except (ValueError, MemoryError, OSError) as err:
            raise SystemExit(f"pixrel: {path}: {err}") from None
        try:
            write_tif(out / name, result.labels)
            if args.probabilities:
                write_tif(out / output_file_name(path, "probabilities"), result.probabilities)
        except OSError as err:
            raise SystemExit(f"pixrel: the prediction of {path} could not be written to {out} ({err})") from None
        print(f"{path}: {time.perf_counter() - t0:.1f}s -> {out / name}")
    return 0


def weight_or_auto(text: str) -> float | str:
    """A flag's value: "auto" or a number."""
    return AUTO if text == AUTO else float(text)


def _add_training_flags(p: argparse.ArgumentParser, steps: int | None, minutes: float | None) -> None:
    p.add_argument("--loss", choices=["auto", "none", "intra", "inter"], default=TrainConfig.loss,
                   help="auto = pixel relation when under a quarter of the training pixels is painted "
                   "(scribbles) and the warp is off, else cross-entropy; none = cross-entropy only; "
                   "intra / inter = pixel relation within / across images. " + LOSS_ADVICE.replace("%", "%%"))
    p.add_argument("--steps", type=int, default=steps, help=f"maximum training steps (default {steps})" if steps
                   else f"maximum training steps (default {TrainConfig.steps}, none when --minutes is given)")
    p.add_argument("--minutes", type=float, default=minutes,
                   help="training time budget in minutes (evaluation excluded)")
    p.add_argument("--relation-weight", type=float, default=TrainConfig.relation_weight,
                   help="weight of the pixel-relation term (1 = the paper's and the steadiest measured; "
                   "see docs/relation-loss.md)")
    p.add_argument("--anchors", type=int, default=1, help="anchor pixels per class and image")
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--schedule", choices=["auto", "constant", "cosine"], default=TrainConfig.schedule,
                   help="learning rate over the budget (steps or minutes): auto = cosine decay to 0 for pixel "
                   "relation (as measured with scribbles), constant for cross-entropy")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--patch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", default="resnet18", help="any segmentation-models-pytorch encoder name")
    p.add_argument("--embed-dim", type=int, default=8, help="channels per class group")
    p.add_argument("--decoder", choices=list(DECODERS), default="auto",
                   help="the U-Net decoder's widths: standard = smp's, light = halved (the last kept at 16); "
                   "auto = light on a CPU without native bf16 (fp32 training, where its steps take about 0.6 times "
                   "as long), else standard")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, ...")
    p.add_argument("--eval-every", type=int, default=50,
                   help="score the validation images (and remember the best weights) every this many steps")
    p.add_argument("--keep", choices=["best", "last"], default=TrainConfig.keep,
                   help="best = the weights of the evaluation that scored best on the validation images (every "
                   "--eval-every steps; without validation images the last); last = the last step's")
    p.add_argument("--warp", action=argparse.BooleanOptionalAction, default=TrainConfig.warp,
                   help="random elastic warps, zoom and rotation of every training patch (the U-Net paper's EM "
                   "augmentation; see docs/relation-loss.md for what it measured)")
    p.add_argument("--ema", type=float, default=TrainConfig.ema,
                   help="evaluate, keep and save a moving average of the weights with this decay per step "
                   "(e.g. 0.99: about the last 100 steps); 0 = the trained weights themselves")
    p.add_argument("--smoothness", type=weight_or_auto, default=TrainConfig.smoothness,
                   help="weight of a pairwise loss asking nearby pixels that look alike to get the same class, "
                   "which spreads scribbles and partial masks to the unpainted pixels (smoothness.py); 0 = off; auto = "
                   f"{SMOOTHNESS_WEIGHT:g} when under {SMOOTHNESS_PAINTED * 100:g}%% of the pixels are painted and "
                   "the labels leave most class boundaries undrawn, else off")
    p.add_argument("--quiet", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixrel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model on images and their painted labels (tif)")
    p.add_argument("--images", nargs="+", required=True)
    p.add_argument("--labels", nargs="+", required=True, help="0 = not painted, 1..K = classes")
    p.add_argument("--val-images", nargs="*")
    p.add_argument("--val-labels", nargs="*")
    p.add_argument("--class-names", nargs="*")
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    _add_training_flags(p, steps=None, minutes=None)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="apply a model to tif images, stacks or time series")
    p.add_argument("--model", required=True)
    p.add_argument("--images", nargs="+", required=True)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--probabilities", action="store_true", help="also write class probabilities")
    p.add_argument("--tile", type=int, default=TILE)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("demo", help="train on the shipped synthetic sample and report IoU against its truth")
    p.add_argument("--out", default="pixrel-demo.png", help="overlay PNG to write")
    p.add_argument("--scribbles", action="store_true", help="train on the sparse scribbles, not full masks")
    _add_training_flags(p, steps=400, minutes=1.5)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="benchmarks on the EM tiles (see benchmarks/README.md)", add_help=False)
    p.set_defaults(func=None)
    return parser


def cmd_demo(args) -> int:
    from .demo import run_demo

    _writable_file(args.out, "demo.png")
    try:
        return run_demo(args, train_config(args))
    except (ValueError, MemoryError) as err:
        raise SystemExit(f"pixrel: {err}") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from .bench import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
