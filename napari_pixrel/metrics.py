"""Per-class IoU from an accumulated confusion matrix.

IoU is accumulated over all pixels of a class (not averaged per image), the
way the paper and the benchmark report it; unlabeled pixels (0) never count.
"""

from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """Counts (true class, predicted class) pairs over any number of images."""

    def __init__(self, n_classes: int):
        self.n_classes = n_classes
        self.counts = np.zeros((n_classes, n_classes), dtype=np.int64)

    def update(self, predicted: np.ndarray, truth: np.ndarray) -> ConfusionMatrix:
        """Add one image; both in napari convention (0 = unlabeled, k = class k)."""
        predicted = np.asarray(predicted)
        truth = np.asarray(truth)
        if predicted.shape != truth.shape:
            raise ValueError(f"prediction shape {predicted.shape} differs from labels shape {truth.shape}")
        painted = (truth > 0) & (truth <= self.n_classes)
        t = truth[painted].astype(np.int64) - 1
        p = np.clip(predicted[painted].astype(np.int64) - 1, 0, self.n_classes - 1)
        self.counts += np.bincount(t * self.n_classes + p, minlength=self.n_classes**2).reshape(
            self.n_classes, self.n_classes
        )
        return self

    def iou(self) -> np.ndarray:
        """IoU per class; NaN for a class that is neither labeled nor predicted."""
        tp = np.diag(self.counts).astype(np.float64)
        union = self.counts.sum(0) + self.counts.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / np.maximum(union, 1), np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes that have a defined IoU."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def as_dict(self, class_names: list[str] | tuple[str, ...]) -> dict[str, float]:
        """IoU per class name plus "mIoU", as plain floats (NaN where undefined)."""
        out = {name: float(v) for name, v in zip(class_names, self.iou())}
        out["mIoU"] = self.miou()
        return out


def iou_table(pairs, n_classes: int, class_names) -> dict[str, float]:
    """IoU dict for an iterable of (predicted, truth) label images."""
    cm = ConfusionMatrix(n_classes)
    for predicted, truth in pairs:
        cm.update(predicted, truth)
    return cm.as_dict(class_names)
