"""Label-efficiency study: "do my labeled images suffice?".

For m = 1 .. n-1 of the n painted planes, a fresh model is trained on m planes
and scored on a held-out plane; a few deterministic rotations change which
plane is held out and in which order the others are added, so every point of
the curve is a mean with a spread. The last step of the curve (adding the
n-1-th image) decides the verdict: under ``threshold`` mIoU it has flattened,
otherwise more labeled images are still paying off.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from .data import Plane
from .metrics import ConfusionMatrix
from .model import AUTO_DECODER, ModelConfig
from .predict import class_labels, predict_plane
from .trainer import TrainConfig, Trainer


@dataclass(frozen=True)
class StudyRun:
    """One training run: which planes trained, which one judged, and the held-out IoU."""

    n_train: int
    rotation: int
    train_indices: tuple[int, ...]
    held_out: int
    iou: dict | None  # None when the run could not train (message says why)
    message: str = ""


@dataclass(frozen=True)
class StudyPoint:
    """The curve at m labeled images: held-out mIoU over the rotations, and each class's mean IoU."""

    n_train: int
    mean: float
    sd: float
    n_runs: int
    per_class: dict[str, float]


@dataclass(frozen=True)
class StudyResult:
    points: tuple[StudyPoint, ...]
    threshold: float
    verdict: str  # "flattened", "still climbing", "too few images", "stopped" or "running"
    sentence: str


@dataclass(frozen=True)
class StudyReport:
    """Progress after each training step; ``result`` is the curve so far (the verdict once finished)."""

    run: int  # 0-based index of the run in progress
    n_runs: int
    progress: float  # 0..1 over all runs
    elapsed: float
    result: StudyResult
    finished: bool = False
    message: str = ""


def rotations_plan(n_planes: int, rotations: int) -> list[tuple[int, list[int]]]:
    """[(held-out plane, training order)] for each rotation; deterministic, held-out planes spread evenly."""
    plan = []
    for r in range(min(rotations, n_planes)):
        held = (n_planes - 1 - r * n_planes // max(1, min(rotations, n_planes))) % n_planes
        others = [i for i in range(n_planes) if i != held]
        shift = r % len(others)
        plan.append((held, others[shift:] + others[:shift]))
    return plan


def summarize(runs: list[StudyRun], class_names, threshold: float, state: str = "running") -> StudyResult:
    """Curve (mean, sd and per-class means per m) and, when ``state`` is "finished", the verdict."""
    points = []
    for m in sorted({r.n_train for r in runs}):
        scored = [r.iou for r in runs if r.n_train == m and r.iou is not None]
        if not scored:
            continue
        miou = np.array([s["mIoU"] for s in scored], float)
        per_class = {}
        for name in class_names:
            values = np.array([s.get(name, math.nan) for s in scored], float)
            per_class[name] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
        sd = float(np.nanstd(miou, ddof=1)) if np.isfinite(miou).sum() > 1 else 0.0
        points.append(StudyPoint(m, float(np.nanmean(miou)), sd, len(scored), per_class))
    if state == "stopped":
        return StudyResult(tuple(points), threshold, "stopped",
                           "The study was stopped before the end: no verdict; the curve shows finished runs.")
    if state == "running":
        return StudyResult(tuple(points), threshold, "running", "")
    return StudyResult(tuple(points), threshold, *verdict(points, threshold))


def verdict(points: list[StudyPoint], threshold: float) -> tuple[str, str]:
    """("flattened" | "still climbing" | "too few images", a sentence with the numbers)."""
    if len(points) < 2:
        return "too few images", (
            "Too few labeled images to see a trend: paint at least 3 images (or slices) and run it again."
        )
    a, b = points[-2], points[-1]
    gain = 100 * (b.mean - a.mean)
    numbers = (
        f"going from {a.n_train} to {b.n_train} labeled images changed held-out mIoU by {gain:+.1f} points "
        f"({100 * a.mean:.1f} -> {100 * b.mean:.1f}, spread +-{100 * b.sd:.1f} over {b.n_runs} rotations)"
    )
    if gain < 100 * threshold:
        return "flattened", (
            f"Flattened: {numbers}, less than the {100 * threshold:g}-point threshold. "
            "More labeled images like these are unlikely to help much; label harder or different ones."
        )
    return "still climbing", (
        f"Still climbing: {numbers}, at least the {100 * threshold:g}-point threshold. "
        "Label more images: the model is still learning from each one."
    )


class Study:
    """Trains (n-1) x rotations small models; ``run()`` yields StudyReports, ``stop()`` ends it early."""

    def __init__(
        self,
        planes: list[Plane],
        class_names,
        config: TrainConfig,
        model: ModelConfig | None = None,
        rotations: int = 3,
        threshold: float = 0.02,
    ):
        if len(planes) < 2:
            raise ValueError(
                f"the study needs at least 2 painted images or slices (found {len(planes)}): paint more"
            )
        self.planes = list(planes)
        self.class_names = list(class_names)
        self.config = replace(config, eval_every=0)
        channels = planes[0].image.shape[-1]
        self.model = model or ModelConfig(n_classes=len(self.class_names), in_channels=channels,
                                          decoder_channels=AUTO_DECODER)
        self.threshold = threshold
        self.plan = rotations_plan(len(planes), rotations)
        self._stop = threading.Event()
        self._trainer: Trainer | None = None

    def stop(self) -> None:
        self._stop.set()
        if self._trainer is not None:
            self._trainer.stop()

    def _score(self, trainer: Trainer, plane: Plane) -> dict:
        probs = predict_plane(trainer.segmenter, plane.image)
        return ConfusionMatrix(self.model.n_classes).update(class_labels(probs), plane.labels).as_dict(
            self.class_names
        )

    def run(self) -> Iterator[StudyReport]:
        jobs = [(m, r, held, order[:m]) for m in range(1, len(self.planes)) for r, (held, order) in
                enumerate(self.plan)]
        runs: list[StudyRun] = []
        result = summarize(runs, self.class_names, self.threshold)
        t0 = time.perf_counter()
        for i, (m, r, held, chosen) in enumerate(jobs):
            if self._stop.is_set():
                break
            try:
                trainer = Trainer([self.planes[j] for j in chosen], self.config, self.model,
                                  class_names=self.class_names)
            except ValueError as err:
                runs.append(StudyRun(m, r, tuple(chosen), held, None, str(err)))
                continue
            self._trainer = trainer
            if self._stop.is_set():
                break
            for report in trainer.run():
                progress = (i + report.progress) / len(jobs)
                yield StudyReport(i, len(jobs), progress, time.perf_counter() - t0, result)
            self._trainer = None
            if self._stop.is_set():
                break
            runs.append(StudyRun(m, r, tuple(chosen), held, self._score(trainer, self.planes[held])))
            result = summarize(runs, self.class_names, self.threshold)
            yield StudyReport(i, len(jobs), (i + 1) / len(jobs), time.perf_counter() - t0, result,
                              message=f"trained on {m} of {len(self.planes)} images (rotation {r + 1})")
        stopped = self._stop.is_set()
        result = summarize(runs, self.class_names, self.threshold, "stopped" if stopped else "finished")
        skipped = [r.message for r in runs if r.iou is None]
        message = "study stopped" if stopped else f"study done ({len(jobs) - len(skipped)} runs)"
        if skipped:
            message += f"; {len(skipped)} runs skipped: {skipped[0]}"
        yield StudyReport(len(jobs), len(jobs), 1.0, time.perf_counter() - t0, result, finished=True,
                          message=message)
