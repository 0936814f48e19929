"""``pixrel demo``: the whole loop on the shipped synthetic sample, headless.

Trains on the first four sample images (full masks, or scribbles with
``--scribbles``), evaluates on the two held-out images against their full
ground truth, prints the per-class IoU table and writes an overlay PNG.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .data import painted_planes  # noqa: E402
from .metrics import ConfusionMatrix  # noqa: E402
from .predict import predict  # noqa: E402
from .sample_data import CLASS_NAMES, load_sample_data  # noqa: E402
from .trainer import TrainConfig, Trainer  # noqa: E402

N_TRAIN = 4
COLORS = np.array([[0, 0, 0], [0.2, 0.6, 0.2], [0.9, 0.2, 0.2], [0.2, 0.4, 0.9]])


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """RGB picture of a grey image with class colours blended in (0 = none)."""
    grey = np.repeat((image / max(1, image.max()))[..., None], 3, -1)
    colour = COLORS[np.clip(labels, 0, len(COLORS) - 1)]
    return np.where(labels[..., None] > 0, (1 - alpha) * grey + alpha * colour, grey)


def run_demo(args, config: TrainConfig) -> int:
    from .cli import format_iou_table, model_config, run_training

    t0 = time.perf_counter()
    images, truth, scribbles = load_sample_data()
    painted = scribbles if args.scribbles else truth
    train = [p for i in range(N_TRAIN) for p in painted_planes(images[i], painted[i])]
    trainer = Trainer(train, config, model=model_config(args, len(CLASS_NAMES)), class_names=list(CLASS_NAMES))
    report = run_training(trainer, args.quiet)
    held_out = predict(trainer.segmenter, images[N_TRAIN:], probabilities=False).labels
    cm = ConfusionMatrix(len(CLASS_NAMES))
    for pred, gt in zip(held_out, truth[N_TRAIN:]):
        cm.update(pred, gt)
    label_kind = "scribbles" if args.scribbles else "full masks"
    print(f"\npixrel demo: loss={trainer.config.loss}, trained on {N_TRAIN} images ({label_kind}), "
          f"{report.step} steps, {report.elapsed:.0f}s")
    print(format_iou_table({"held-out IoU %": cm.as_dict(list(CLASS_NAMES))}))

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    panels = [(images[N_TRAIN], None, "held-out image"), (images[N_TRAIN], truth[N_TRAIN], "ground truth"),
              (images[N_TRAIN], held_out[0], f"pixrel prediction (mIoU {100 * cm.miou():.1f})")]
    for ax, (img, lab, title) in zip(axes, panels):
        ax.imshow(img if lab is None else overlay(img, lab), cmap="gray")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"overlay written to {args.out}; total {time.perf_counter() - t0:.0f}s")
    return 0
