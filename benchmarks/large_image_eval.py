"""How much of a dock training run on one large 2D image goes to evaluation, with and without ``eval_share``.

The dock evaluates every 10 steps (the live prediction of the whole image, and the IoU of the painted pixels,
read from it since the fifteenth session). On a 2048 x 2048 image one evaluation predicts 4 million pixels,
which costs many training steps, and a minutes budget counts training time only, so the wall time grows with
every evaluation. ``eval_share``
(the dock's ``EVAL_SHARE``) makes an evaluation wait until it takes at most that share of the time.

The image is a mosaic of the shipped synthetic sample (8 x 8 tiles of 256 pixels) with its scribbles; the
trainer runs with the dock's settings (one CPU thread fewer than the cores, evaluation every 10 steps, the
first after 15 s of training if sooner, the product's defaults otherwise) for a training budget of
``--seconds``, once without and once with the share.
Writes one JSON file of wall time, training time, steps and evaluations per setting.

    .venv/bin/python benchmarks/large_image_eval.py [--seconds 60] [--out benchmarks/results/cpu/large-image-eval.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from napari_pixrel._widget import EVAL_EVERY, EVAL_SHARE, FIRST_EVAL_SECONDS, ui_spare_threads
from napari_pixrel.bench import environment
from napari_pixrel.data import painted_planes
from napari_pixrel.model import ModelConfig, resolve_device
from napari_pixrel.sample_data import load_sample_data
from napari_pixrel.trainer import TrainConfig, Trainer

TILES = 8  # per side: 2048 x 2048 pixels


def mosaic(stack: np.ndarray, tiles: int = TILES) -> np.ndarray:
    """``tiles`` x ``tiles`` planes of ``stack``, cycling through it."""
    rows = [np.concatenate([stack[(r * tiles + c) % len(stack)] for c in range(tiles)], axis=1) for r in range(tiles)]
    return np.concatenate(rows, axis=0)


def run(image: np.ndarray, scribbles: np.ndarray, share: float, seconds: float, preview: np.ndarray | None = None,
        window: tuple[slice, slice] | None = None) -> dict:
    """One dock-like training run; the live prediction covers ``preview`` (default: the whole image), cut from
    ``window`` of the image (default: all of it)."""
    config = TrainConfig(steps=None, minutes=seconds / 60, eval_every=EVAL_EVERY,
                         first_eval_seconds=FIRST_EVAL_SECONDS, eval_share=share, cpu_threads=ui_spare_threads())
    trainer = Trainer(painted_planes(image, scribbles), config, ModelConfig(n_classes=3),
                      class_names=["background", "membrane", "mitochondria"],
                      preview=image if preview is None else preview, preview_window=window)
    started = time.perf_counter()
    reports = list(trainer.run())
    wall = time.perf_counter() - started
    evaluated = [r.step for r in reports if r.prediction is not None and not r.finished]
    training = reports[-1].elapsed
    return {"eval_share": share, "wall_seconds": round(wall, 1), "training_seconds": round(training, 1),
            "steps": reports[-1].step, "evaluations_before_the_end": len(evaluated), "evaluated_steps": evaluated,
            "seconds_per_evaluation": round((wall - training) / (len(evaluated) + 1), 2)}  # + the final one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training budget of each run")
    parser.add_argument("--out", default="benchmarks/results/cpu/large-image-eval.json")
    args = parser.parse_args()
    images, _, scribbles = load_sample_data()
    image, labels = mosaic(images), mosaic(scribbles)
    runs = [run(image, labels, share, args.seconds) for share in (0.0, EVAL_SHARE)]
    result = {**environment(resolve_device("auto")),
              "image": list(image.shape), "eval_every": EVAL_EVERY, "first_eval_seconds": FIRST_EVAL_SECONDS,
              "runs": runs,
              "command": f"python benchmarks/large_image_eval.py --seconds {args.seconds:g}"}
    Path(args.out).write_text(json.dumps(result, indent=1))
    for r in runs:
        print(r)


if __name__ == "__main__":
    main()
