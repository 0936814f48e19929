"""Training as a generator of small progress reports.

``Trainer.run()`` yields a ``TrainReport`` after every step; every
``eval_every`` steps (the first after ``first_eval_seconds`` of training if
sooner, and at the end) the report also carries per-class IoU on
the validation planes and on the painted training pixels, and a prediction of
the preview image. With validation labels the trainer keeps, by default, the
weights of the evaluation that scored best on them: with scribbles both losses
peak early and then overfit the strokes (docs/relation-loss.md). With ``ema``
what is evaluated, previewed, kept and saved is a moving average of the
trained weights: single steps at a constant rate land on good or bad weights,
the average on steadier ones. Pause, resume
and stop act between steps and are safe to call from another thread (the
napari widget's UI thread, a CLI signal).
``elapsed`` counts training time only (evaluation and the consumer's time
between steps are excluded), so a ``minutes`` budget is a training budget.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from .data import Normalizer, PatchSampler, Plane, check_image, painted_box, same_pixels
from .decoder_choice import choose_decoder
from .loss_choice import AUTO, choose_loss
from .losses import RelationSettings, cross_entropy, relation_loss
from .metrics import ConfusionMatrix
from .model import AUTO_DECODER, STRIDE, ModelConfig, PixRelNet, Segmenter, default_class_names, resolve_device
from .predict import TILE, Prediction, class_labels, predict, predict_window
from .smoothness import smoothness_loss
from .warp import random_warp

# decay per step of the weights' moving average when it is on (dock checkbox, --ema): about the last 100
# steps count. Keeping the last weights (full masks, warp, 5 CPU minutes) it lifted val mIoU for CE (+1.3,
# 5 of 5 subsets) and pixel relation (+3.0); with scribbles and the best evaluation kept it cost CE 0.6 val
# (3 subsets), so it is off by default. docs/relation-loss.md, "A moving average of the weights"
EMA_DECAY = 0.99


@dataclass(frozen=True)
class TrainConfig:
    """Loss and optimisation settings (stored with the model)."""

    loss: str = AUTO  # "none" (cross-entropy only), "intra", "inter", or "auto" (see loss_choice.py)
    relation_weight: float = 1.0  # the paper's; the steadiest measured with scribbles (docs/relation-loss.md)
    anchors_per_class: int = 1
    negative_target: float = -1.0
    hard_anchors: bool = False
    warmup_steps: int = 0  # cross-entropy only before this step ...
    ramp_steps: int = 0  # ... then the relation weight rises linearly over this many steps
    relation_decay: bool = False  # the relation weight falls to 0 over the budget (cosine): the last steps are CE's
    lr: float = 1e-3
    schedule: str = AUTO  # "constant", "cosine" (decay to 0 over the budget), or "auto": cosine for pixel relation
    steps: int | None = 600  # the budget of the loss comparison (docs/relation-loss.md)
    minutes: float | None = None
    batch_size: int = 4
    patch_size: int = 256
    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = True  # bf16 autocast where the device computes bf16 natively; the loss stays fp32
    warp: bool = True  # random elastic warps, zoom and rotation of every batch (warp.py, with what it measured)
    ema: float = 0.0  # > 0 (e.g. EMA_DECAY): evaluate, preview and keep a moving average of the weights
    smoothness: float | str = AUTO  # weight of the pairwise loss spreading scribbles to alike neighbours; auto:
    # on for sparse labels (loss_choice.py)
    eval_every: int = 25
    first_eval_seconds: float = 0.0  # > 0: the first evaluation comes after this much training if eval_every
    # steps take longer (fp32 on a CPU without native bf16 takes seconds per step; the dock uses 15)
    eval_share: float = 0.0  # > 0: an evaluation also waits until it would take at most this share of the wall
    # time (large images, where one evaluation costs many steps; the napari dock uses a third)
    keep: str = "best"  # "best": the weights of the best validation evaluation (needs validation labels); "last"
    cpu_threads: int | None = None  # None: torch's default (all cores); the napari dock leaves one to the UI

    def __post_init__(self):
        loss = "none" if self.loss == AUTO else self.loss  # the trainer resolves "auto" from the labels
        RelationSettings(loss, self.anchors_per_class, self.negative_target, self.hard_anchors)
        if self.steps is None and self.minutes is None:
            raise ValueError("give a number of steps, a time budget in minutes, or both")
        if (self.steps is not None and self.steps < 1) or (self.minutes is not None and not self.minutes > 0):
            raise ValueError("the budget is at least 1 step, or more than 0 minutes")
        if self.patch_size < STRIDE or self.patch_size % STRIDE:
            raise ValueError(f"patch_size must be a multiple of {STRIDE} (32, 64, ... 256, ...)")
        if self.batch_size < 1:
            raise ValueError("batch_size is at least 1")
        if self.schedule not in ("constant", "cosine", AUTO):
            raise ValueError("schedule is 'constant', 'cosine' or 'auto'")
        if self.keep not in ("best", "last"):
            raise ValueError("keep is 'best' (the best validation evaluation) or 'last'")
        if not (self.first_eval_seconds >= 0 and math.isfinite(self.first_eval_seconds)):
            raise ValueError("first_eval_seconds is a training time in seconds (0 = off)")
        if not 0.0 <= self.eval_share < 1.0:
            raise ValueError("eval_share is the most of the wall time evaluations may take, from 0 (off) to below 1")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError("ema is a decay per step from 0 (off) to below 1, e.g. 0.99")
        if self.smoothness != AUTO and not (isinstance(self.smoothness, (int, float)) and self.smoothness >= 0
                                            and math.isfinite(self.smoothness)):
            raise ValueError("smoothness is a weight (0 = off, or more) or 'auto'")

    @property
    def relation(self) -> RelationSettings:
        return RelationSettings(self.loss, self.anchors_per_class, self.negative_target, self.hard_anchors)

    def weight_at(self, step: int, progress: float = 0.0) -> float:
        """Relation weight at 1-based ``step`` and 0..1 ``progress`` of the budget: 0 during warm-up, then a
        linear ramp to the full weight, which with ``relation_decay`` falls to 0 as the budget ends."""
        if self.loss == "none" or step <= self.warmup_steps:
            return 0.0
        weight = self.relation_weight
        if self.ramp_steps > 0:
            weight *= min(1.0, (step - self.warmup_steps) / self.ramp_steps)
        if self.relation_decay:
            weight *= 0.5 * (1.0 + math.cos(math.pi * progress))
        return weight


@dataclass(frozen=True)
class TrainReport:
    """What the trainer tells its consumer after a step."""

    step: int
    max_steps: int | None
    elapsed: float
    progress: float  # 0..1 of the step or time budget, whichever is nearer its end
    loss: float
    ce: float
    relation: float
    relation_weight: float
    val_iou: dict | None = None
    train_iou: dict | None = None
    prediction: Prediction | None = None
    finished: bool = False
    message: str = ""
    kept_step: int | None = None  # finished report: the step of the weights kept (its IoU and prediction)


@dataclass
class _Checkpoint:
    """The best validation evaluation so far: its step, scores and a copy of the weights."""

    step: int
    miou: float
    val_iou: dict
    train_iou: dict | None
    state: dict


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a GPU that supports it, a CPU with AVX-512 BF16 or AMX. A CPU
    without (AVX2 only, as most laptops and older servers) emulates it: bf16 autocast made a training step 13
    times slower than fp32 on a 2-core AVX2 EPYC (20.4 s against 1.5 s, benchmarks/bf16_step.py), where on an
    AVX-512 BF16 one it was about 2 times faster (issue 4)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def classes_in_labels(planes: list[Plane]) -> int:
    """The number of classes labels imply when no class names say it: their largest value (at least 2, so that
    one class painted gets check_training_labels' message). Values that leave most class numbers unpainted
    (masks of 0/255, instance labels) are refused: every number up to the largest would become a class."""
    values = set()
    for p in planes:
        values.update(int(v) for v in np.unique(p.labels) if v > 0)
    highest = max(values, default=0)
    if highest > max(8, 2 * len(values)):
        shown = ", ".join(str(v) for v in sorted(values)[:8]) + (", ..." if len(values) > 8 else "")
        raise ValueError(f"the labels hold values up to {highest} but only {len(values)} different ones ({shown}): "
                         "number the classes 1, 2, 3, ... (0 = not painted), or give a name for every class number "
                         "up to the largest (class names), as each becomes a class")
    return max(2, highest)


def check_training_labels(train: list[Plane], val: list[Plane], class_names: list[str]) -> None:
    """Refuse label sets that cannot train a segmenter, naming the fix (a class beyond the names given,
    as label files read without a class count can hold, is named by its number)."""

    def names(classes) -> str:
        return ", ".join(class_names[v - 1] if v <= len(class_names) else f"class {v}" for v in sorted(classes))

    if not train:
        raise ValueError("nothing is painted in the training images: paint some pixels of each class first")
    painted = set()
    for p in train:
        painted.update(int(v) for v in np.unique(p.labels) if v > 0)
    if len(painted) < 2:
        raise ValueError(f"only one class is painted ({names(painted)}): paint at least two classes (0 means "
                         "not painted: add 1 to a mask that numbers its classes from 0)")
    in_val = set()
    for p in val:
        in_val.update(int(v) for v in np.unique(p.labels) if v > 0)
    only_val = in_val - painted
    if only_val:
        raise ValueError(f"{names(only_val)} is painted only in the validation images: paint it in a training "
                         "image too")


class Trainer:
    """Trains (or continues training) a Segmenter on painted planes."""

    def __init__(
        self,
        train: list[Plane],
        config: TrainConfig = TrainConfig(),
        model: ModelConfig | None = None,
        val: list[Plane] = (),
        class_names: list[str] | None = None,
        preview=None,
        start_from: Segmenter | None = None,
        preview_window: tuple[slice, slice] | None = None,
    ):
        """``model``: None gives the product's network, its decoder chosen for the device (decoder_choice.py).
        ``preview_window``: the rows and columns of the planes that ``preview`` was cut from (the region of
        a large slide around its strokes); None: ``preview`` holds whole planes."""
        train, val = list(train), list(val)
        if start_from is not None:
            n_classes = start_from.n_classes
            class_names = class_names or start_from.class_names
        else:
            n_classes = (model.n_classes if model else len(class_names) if class_names
                         else classes_in_labels(train + val) if train else 0)
            class_names = class_names or default_class_names(max(n_classes, 2))
        check_training_labels(train, val, class_names)
        if len(class_names) != n_classes:
            raise ValueError(f"{len(class_names)} class names given for a model of {n_classes} classes: give "
                             f"{n_classes} names, or train a new model for {len(class_names)} classes")
        for p in train + val:
            if int(p.labels.max()) > n_classes:
                raise ValueError(f"labels contain class {int(p.labels.max())} but the model has {n_classes} "
                                 "classes: train a new model for these classes, or repaint those pixels")
        if preview is not None:
            check_image(preview)  # found now, not at the first evaluation
        in_channels = train[0].image.shape[-1]
        if any(p.image.shape[-1] != in_channels for p in train + val):
            raise ValueError("all images must have the same number of channels")
        if config.loss == "inter" and config.batch_size < 2:
            raise ValueError("pixel relation across images needs a batch size of at least 2")
        chosen, self.auto_choices = choose_loss(config, train)  # what "auto" chose, said with the first step
        self.config = config = replace(config, **chosen)
        self.train_planes, self.val_planes, self.preview = train, val, preview
        self.preview_window = preview_window or (slice(None),) * 2
        self.device = resolve_device(config.device)
        if self.device.type == "cpu" and config.cpu_threads:
            torch.set_num_threads(config.cpu_threads)
        torch.manual_seed(config.seed)
        if start_from is not None:
            if start_from.config.in_channels != in_channels:
                raise ValueError(
                    f"the model takes {start_from.config.in_channels} channels, the images have {in_channels}: "
                    "train a new model on these images"
                )
            net = copy.deepcopy(start_from.net)  # the kept weights (with ema, the average) train on
            normalizer = start_from.normalizer
            history = list(start_from.training.get("history", []))
        else:
            mc = model or ModelConfig(n_classes=n_classes, in_channels=in_channels, decoder_channels=AUTO_DECODER)
            if mc.in_channels != in_channels:
                mc = ModelConfig(**{**mc.to_dict(), "in_channels": in_channels})
            mc, decoder_note = choose_decoder(mc, self.device.type == "cpu" and not native_bf16(self.device))
            self.auto_choices = "; ".join(s for s in (self.auto_choices, decoder_note) if s)
            net = PixRelNet(mc)
            normalizer = Normalizer.fit([p.image for p in train])
            history = []
        net.to(self.device, memory_format=torch.channels_last)
        self.net = net  # what the optimiser updates; the segmenter's net is its moving average when ema > 0
        kept = copy.deepcopy(net) if config.ema > 0 else net
        self.segmenter = Segmenter(kept, normalizer, list(class_names), {"history": history})
        pairs = list(zip(kept.state_dict().values(), net.state_dict().values())) if kept is not net else []
        self._averaged = [a for a, _ in pairs if a.is_floating_point()]  # lerped towards ...
        self._trained = [b for a, b in pairs if a.is_floating_point()]  # ... these after every step
        self._counted = [(a, b) for a, b in pairs if not a.is_floating_point()]  # BatchNorm's step counts
        self._steps_before = history[-1]["step"] if history else 0
        self._last_eval: tuple = (-1, None, None, None)
        self._in_preview: list[int | None] | None = None  # per plane (train, then val): its plane in the preview
        self._eval_cost = (0.0, -math.inf)  # (seconds the last evaluation took, training seconds when it was)
        self._best: _Checkpoint | None = None
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    # control, callable from any thread
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def evaluate(self) -> tuple[dict | None, dict | None]:
        """(IoU on validation planes, IoU on painted training pixels)."""
        return self._evaluate(None)

    def _evaluate(self, preview: Prediction | None) -> tuple[dict | None, dict | None]:
        """``evaluate``, reading the planes that are in the preview image from ``preview``, its prediction by
        the current weights, instead of predicting them again."""
        names, k = self.segmenter.class_names, self.segmenter.n_classes
        planes = self.train_planes + self.val_planes
        if preview is None:
            in_preview = [None] * len(planes)
        else:
            if self._in_preview is None:  # found once, in the training thread (hashing a large image takes time)
                self._in_preview = self._planes_in_preview(planes)
            in_preview = self._in_preview
        previewed = preview.labels.reshape((-1,) + preview.labels.shape[-2:]) if preview is not None else None
        window = self.preview_window

        def score(chosen):
            if not chosen:
                return None
            cm = ConfusionMatrix(k)
            for i in chosen:
                p, j = planes[i], in_preview[i]
                if j is not None:
                    cm.update(previewed[j], p.labels[window])
                    continue
                # IoU counts painted pixels only: a plane larger than a tile is predicted where it is painted
                box = (painted_box(p.labels) if max(p.labels.shape) > TILE else None) or (slice(None),) * 2
                cm.update(class_labels(predict_window(self.segmenter, p.image, box)), p.labels[box])
            return cm.as_dict(names)

        n = len(self.train_planes)
        return score(range(n, len(planes))), score(range(n))

    def _planes_in_preview(self, planes: list[Plane]) -> list[int | None]:
        """Per plane, its plane in the preview (same pixels in the preview's window), or None: also None where
        some of its painted pixels lie outside the window, as the preview's prediction cannot score those."""
        window = self.preview_window
        found = same_pixels([Plane(p.image[window], p.labels[window]) for p in planes], self.preview,
                            self.segmenter.config.in_channels)
        return [j if j is None or np.count_nonzero(p.labels[window]) == np.count_nonzero(p.labels) else None
                for p, j in zip(planes, found)]

    def progress(self, step: int, elapsed: float) -> float:
        """0..1 of the step or time budget, whichever is nearer its end."""
        cfg = self.config
        parts = [step / cfg.steps] if cfg.steps else []
        if cfg.minutes:
            parts.append(elapsed / (60 * cfg.minutes))
        return min(1.0, max(parts))

    def learning_rate(self, step: int, elapsed: float) -> float:
        """The rate of the next step: constant, or cosine-decayed to 0 over the budget's progress.

        Progress, not a step count, drives the decay, so a minutes budget decays over its time, and a budget
        of both decays towards whichever ends first.
        """
        cfg = self.config
        if cfg.schedule != "cosine":
            return cfg.lr
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * self.progress(step, elapsed)))

    def _report(self, step, elapsed, terms, weight, evaluate, finished=False, message="") -> TrainReport:
        """Build a report; ``evaluate`` adds IoU and preview (reused if this step was already evaluated)."""
        cfg = self.config
        val_iou = train_iou = prediction = None
        if evaluate and self._last_eval[0] == step:
            _, val_iou, train_iou, prediction = self._last_eval
        elif evaluate:
            started = time.perf_counter()
            if self.preview is not None:
                prediction = predict(self.segmenter, self.preview)
            val_iou, train_iou = self._evaluate(prediction)
            self._eval_cost = (time.perf_counter() - started, elapsed)
            self._last_eval = (step, val_iou, train_iou, prediction)
            self.segmenter.training["history"].append(
                {"step": self._steps_before + step, "elapsed": round(elapsed, 3), "loss": terms[0], "ce": terms[1],
                 "relation": terms[2], "val_iou": val_iou, "train_iou": train_iou}
            )
            self._remember_if_best(step, val_iou, train_iou)
            self.net.train()
        return TrainReport(step, cfg.steps, elapsed, self.progress(step, elapsed), *terms, weight, val_iou, train_iou,
                           prediction, finished, message, step if finished else None)

    def _evaluation_due(self, step: int, elapsed: float) -> bool:
        """Every ``eval_every`` steps, the first also after ``first_eval_seconds`` of training if that comes
        sooner, and with ``eval_share`` only once the training since the last evaluation is long enough for that
        evaluation's cost to be at most this share of the time."""
        cfg = self.config
        if cfg.eval_every <= 0:
            return False
        first = self._last_eval[0] < 0 and 0 < cfg.first_eval_seconds <= elapsed
        if step % cfg.eval_every and not first:
            return False
        seconds, at = self._eval_cost
        return cfg.eval_share <= 0 or elapsed - at >= seconds * (1 - cfg.eval_share) / cfg.eval_share

    def _remember_if_best(self, step: int, val_iou: dict | None, train_iou: dict | None) -> None:
        """Copy the weights when this evaluation beats every earlier one on validation (keep="best")."""
        miou = val_iou["mIoU"] if val_iou else math.nan
        if self.config.keep != "best" or not math.isfinite(miou) or (self._best and miou <= self._best.miou):
            return
        state = {k: v.detach().clone() for k, v in self.segmenter.net.state_dict().items()}
        self._best = _Checkpoint(step, miou, val_iou, train_iou, state)

    def _keep_best(self, final: TrainReport) -> TrainReport:
        """The finished report of the kept model: the last weights, or (restored into the model, its preview
        predicted again) an earlier evaluation's that scored strictly higher on validation."""
        best = self._best
        if best is None or best.step == final.step or final.val_iou["mIoU"] >= best.miou:
            return final
        seg = self.segmenter
        seg.net.load_state_dict(best.state)
        seg.net.eval()
        prediction = predict(seg, self.preview) if self.preview is not None else None
        kept, last = self._steps_before + best.step, self._steps_before + final.step
        seg.training["kept"] = {"step": kept, "val_iou": best.val_iou}
        note = (f"kept the weights of step {kept}, the best on validation: mIoU {100 * best.miou:.1f}% against "
                f"{100 * final.val_iou['mIoU']:.1f}% at the last step ({last})")
        return replace(final, val_iou=best.val_iou, train_iou=best.train_iou, prediction=prediction,
                       kept_step=best.step, message="; ".join(m for m in (final.message, note) if m))

    @torch.no_grad()
    def _average(self, step: int) -> None:
        """Move the averaged weights (and BatchNorm statistics) towards the trained ones after ``step``.

        The decay starts low, (1 + step) / (10 + step), so the average does not drag the first, random
        weights along, and grows to ``ema``: about the last 1 / (1 - ema) steps count.
        """
        if self._averaged:
            decay = min(self.config.ema, (1 + step) / (10 + step))
            torch._foreach_lerp_(self._averaged, self._trained, 1.0 - decay)
        for a, b in self._counted:
            a.copy_(b)

    def run(self) -> Iterator[TrainReport]:
        """Train until the step or time budget is used or stop() is called."""
        cfg = self.config
        seg, net, dev = self.segmenter, self.net, self.device
        seg.training.update({"config": asdict(cfg)})
        sampler = PatchSampler(self.train_planes, seg.normalizer, cfg.patch_size, np.random.default_rng(cfg.seed))
        gen = torch.Generator(device=dev).manual_seed(cfg.seed)
        warp_gen = torch.Generator().manual_seed(cfg.seed)
        # fused: one kernel over all parameters (on the 2-core CPU 6 ms per step instead of 28)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=dev.type in ("cpu", "cuda"))
        relation = cfg.relation
        bf16 = cfg.mixed_precision and native_bf16(dev)
        net.train()
        step, elapsed, terms, weight, message, out_of_memory = 0, 0.0, (math.nan,) * 3, 0.0, "", False
        try:
            while not self._stop.is_set():
                self._running.wait()
                if self._stop.is_set() or (cfg.steps and step >= cfg.steps):
                    break
                if cfg.minutes and elapsed >= 60 * cfg.minutes:
                    break
                t0 = time.perf_counter()
                for group in opt.param_groups:
                    group["lr"] = self.learning_rate(step, elapsed)
                x, y = (torch.from_numpy(a).to(dev) for a in sampler.batch(cfg.batch_size))
                if cfg.warp:
                    x, y = random_warp(x, y, warp_gen)
                x, target = x.contiguous(memory_format=torch.channels_last), y - 1
                weight = cfg.weight_at(step + 1, self.progress(step, elapsed))
                buffers = [b.detach().clone() for b in net.buffers()]  # BatchNorm stats move in forward
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                    logits, emb = net(x)
                ce = cross_entropy(logits, target)
                rel = relation_loss(emb, target, relation, logits, gen) if weight > 0 else ce.new_zeros(())
                loss = ce + weight * rel
                if cfg.smoothness > 0:
                    loss = loss + cfg.smoothness * smoothness_loss(logits, x)
                opt.zero_grad(set_to_none=True)
                if torch.isfinite(loss):
                    loss.backward()
                    grad_ok = torch.isfinite(torch.nn.utils.clip_grad_norm_(net.parameters(), float("inf")))
                if not torch.isfinite(loss) or not grad_ok:
                    for saved, live in zip(buffers, net.buffers()):
                        live.copy_(saved)
                    message = ("training stopped: the loss became NaN or infinite; the model keeps the weights "
                               "of the last good step")
                    break
                opt.step()
                step += 1
                self._average(step)
                elapsed += time.perf_counter() - t0
                terms = (loss.item(), ce.item(), rel.item())
                evaluate = self._evaluation_due(step, elapsed)
                note = self.auto_choices if step == 1 else ""
                yield self._report(step, elapsed, terms, weight, evaluate, message=note)
        except torch.OutOfMemoryError:
            out_of_memory = True  # raised below, once this error's frames (and their tensors) are gone
        finally:
            opt = x = y = target = logits = emb = ce = rel = loss = None  # the last batch, optimiser state
            net.zero_grad(set_to_none=True)  # and gradients ...
            if dev.type == "cuda":
                torch.cuda.empty_cache()  # ... go back to the device, not only to torch's cache
        if out_of_memory:
            raise MemoryError(f"out of memory on {dev}: lower the patch size (now {cfg.patch_size}) or the batch "
                              f"size (now {cfg.batch_size})")
        seg.net.eval()
        final = self._keep_best(self._report(step, elapsed, terms, weight, evaluate=True, finished=True,
                                             message=message))
        self._best = None  # the copied weights
        if dev.type == "cuda":
            torch.cuda.empty_cache()  # and what the last evaluation cached
        yield final
