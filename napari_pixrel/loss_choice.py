"""The "auto" loss: pixel relation where the benchmark measured it to win, cross-entropy elsewhere.

On the paper's EM tiles (docs/relation-loss.md) pixel relation lost to cross-entropy with full masks
and beat it with ~2% of the pixels painted as scribbles. What decides is how much of the training
images is painted, which the trainer knows before the first step. The threshold sits between the
two measured regimes (2% and 100% painted); fractions in between were not measured.
"""

from __future__ import annotations

import numpy as np

from .data import Plane

AUTO = "auto"
SPARSE_PAINTED = 0.25  # below this fraction of painted pixels "auto" trains with pixel relation


def painted_fraction(planes: list[Plane]) -> float:
    """Fraction of the training planes' pixels that carry a class (labels > 0)."""
    total = sum(p.labels.size for p in planes)
    return sum(int(np.count_nonzero(p.labels)) for p in planes) / total if total else 0.0


def choose_loss(loss: str, planes: list[Plane]) -> tuple[str, str]:
    """(loss mode to train with, sentence for the user): ``loss`` itself unless it is "auto"."""
    if loss != AUTO:
        return loss, ""
    fraction = painted_fraction(planes)
    if fraction < SPARSE_PAINTED:
        return "intra", (f"auto loss: pixel relation ({fraction:.1%} of the training pixels are painted; "
                         "with sparse scribbles it beat cross-entropy)")
    return "none", (f"auto loss: cross-entropy ({fraction:.0%} of the training pixels are painted; "
                    "with full masks it beat pixel relation)")
