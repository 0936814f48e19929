"""The "auto" loss and schedule: the training regime the benchmark measured to win for the labels at hand.

On the paper's EM tiles (docs/relation-loss.md) pixel relation lost to cross-entropy with full masks at every
setting tried, and with ~2% of the pixels painted as scribbles it won, most clearly with the learning rate
decayed to 0 over the run (cosine): at a constant rate single runs end on good or bad steps. What decides is
how much of the training images is painted, which the trainer knows before the first step. Measured at 2, 5,
10, 25, 50 and 100% painted (H200, 600 steps): relation with the decay led cross-entropy up to 25% and trailed
it at 50% and with full masks, so the threshold sits at the last fraction where it led. Cross-entropy keeps
the constant rate: the decay did not help it with masks. A minutes budget decays over its time: at 5 CPU
minutes with scribbles the decay kept relation's mean and halved its spread over the five subsets (it led CE
in 5 of 5, against 4 of 5 at a constant rate; 8 of 8 runs with a second seed on three subsets). With the
elastic warp (the default since the sixth session) both losses gain, CE more: over two seeds × five subsets
with scribbles relation − CE was −0.6 val (3 of 10 pairs) and −0.8 test, and CE fits about 8% more steps in
the same minutes. So with the warp on, auto trains CE for scribbles too; pixel relation stays auto's choice
for sparse labels without the warp, where it led. Wherever pixels are left unpainted auto also adds the
smoothness loss (smoothness.py) at weight 3, chosen on the val tiles among 0.3, 1, 3 and 10 (H200, 1100 steps,
CE with the warp: +3.4 val, 10 of 10 runs) and confirmed at 5 CPU minutes with scribbles (+5.6 test, 10 of 10;
docs/relation-loss.md, "Spreading scribbles"). On this CPU it helped at every painted fraction measured, 2,
10, 25, 50, 75 and 90% (five subsets each at 50 to 90%: +2.8, +1.6, +2.1 val; with a second seed at 50, 75
and 90%, +3.3, +1.3 and +0.7 over ten pairs, the last within the noise), and not with full masks
(keeping the best evaluation, its best val was lower on 4 of 5 subsets): the unpainted pixels are the ones it
fills in. So auto turns it on below 95% painted, halfway between the last fraction where it helped and full
masks. Painting part of each image as complete areas (every pixel, class boundaries included) is the other way
users label, and there it cost: 64-pixel squares over half of each tile, -2.3 val (1 of 5 subsets). What tells
the two apart is how much of the class boundaries the labels draw (``class_contacts``): strokes 0 to 0.73 of
their edges against another class, 32-pixel squares at 50% 0.64 to 0.72 (the loss +0.7 val, 3 of 5: no cost),
64-pixel squares 0.76 to 0.82 at 25% (+0.6) and 0.83 to 0.85 at 50% (-2.3), full masks 1. So auto also leaves
it off from 0.78 on, halfway between the highest share where it helped and the lowest where it cost. A check
with 128-pixel squares at 50% (0.92 to 0.95) did not show a cost (+0.1 val, 1 of 5 subsets above 0): above the
threshold the loss was not seen to help, which is what the rule rests on.
"""

from __future__ import annotations

import numpy as np

from .data import Plane

AUTO = "auto"
SPARSE_PAINTED = 0.25  # below this fraction of painted pixels, and without the warp, "auto" trains pixel relation
SMOOTHNESS_PAINTED = 0.95  # below this fraction "auto" adds the smoothness loss ...
SMOOTHNESS_WEIGHT = 3.0  # ... with this weight
SMOOTHNESS_CONTACTS = 0.78  # ... unless this share of the painted areas' edges faces another class


def painted_fraction(planes: list[Plane]) -> float:
    """Fraction of the training planes' pixels that carry a class (labels > 0)."""
    total = sum(p.labels.size for p in planes)
    return sum(int(np.count_nonzero(p.labels)) for p in planes) / total if total else 0.0


def class_contacts(planes: list[Plane]) -> float:
    """Of the sides of painted pixels that face a different label (a 4-neighbour in the image, unpainted or
    of another class), the share that face another class: how much of the boundaries between classes the
    labels draw. Near 0 for strokes, which keep inside their class's regions; 1 for full masks; in between
    for areas painted completely, whose edges run through unpainted pixels."""
    touching = edge = 0
    for p in planes:
        lab = p.labels
        for a, b in ((lab[1:], lab[:-1]), (lab[:, 1:], lab[:, :-1])):
            for this, other in ((a, b), (b, a)):
                differs = (this > 0) & (other != this)
                touching += int(np.count_nonzero(differs & (other > 0)))
                edge += int(np.count_nonzero(differs))
    return touching / edge if edge else 0.0


def choose_loss(config, planes: list[Plane]) -> tuple[dict, str]:
    """(TrainConfig fields that resolve "auto", sentence for the user; "" when nothing was "auto").

    An "auto" loss is pixel relation within image for sparse labels trained without the warp, else
    cross-entropy; an "auto" schedule is cosine for pixel relation (decayed over the step or time budget),
    else constant; an "auto" smoothness is SMOOTHNESS_WEIGHT when some pixels are left unpainted (under
    SMOOTHNESS_PAINTED) and the labels leave most of the class boundaries undrawn (class contacts under
    SMOOTHNESS_CONTACTS), else 0.
    """
    chosen, loss, sentences = {}, config.loss, []
    fraction = painted_fraction(planes)
    sparse = fraction < SPARSE_PAINTED
    painted = f"{fraction:.1%}" if fraction < SMOOTHNESS_PAINTED else f"{fraction:.0%}"  # 94.6%, not 95%
    if loss == AUTO:
        loss = chosen["loss"] = "intra" if sparse and not config.warp else "none"
        if loss == "intra":
            sentences.append(f"auto loss: pixel relation ({painted} of the training pixels are painted; with "
                             "sparse scribbles and no warp it beat cross-entropy)")
        elif sparse:
            sentences.append(f"auto loss: cross-entropy ({painted} of the training pixels are painted; with the "
                             "warp on it matched or beat pixel relation on scribbles too)")
        else:
            sentences.append(f"auto loss: cross-entropy ({painted} of the training pixels are painted; with half "
                             "painted it caught up with pixel relation, with full masks it beat it)")
    if config.schedule == AUTO:
        chosen["schedule"] = "cosine" if loss != "none" else "constant"
        if sentences and chosen["schedule"] == "cosine":
            sentences[-1] += f", learning rate decayed to 0 over {budget_words(config)} (cosine)"
    if config.smoothness == AUTO:
        unpainted = fraction < SMOOTHNESS_PAINTED
        contacts = class_contacts(planes) if unpainted else 1.0
        spread = unpainted and contacts < SMOOTHNESS_CONTACTS
        chosen["smoothness"] = SMOOTHNESS_WEIGHT if spread else 0.0
        if spread:
            sentences.append(f"auto smoothness {SMOOTHNESS_WEIGHT:g}: nearby pixels that look alike are asked to "
                             f"share a class, which spreads the painted labels to the unpainted pixels "
                             f"({painted} painted)")
        elif unpainted:
            sentences.append(f"auto smoothness off: the painted areas draw most of the boundaries between classes "
                             f"({contacts:.0%} of their edges face another class), where the smoothness loss did "
                             "not help on the EM benchmark")
    return chosen, "; ".join(sentences)


def budget_words(config) -> str:
    """'600 steps', '5 minutes', or both joined by 'or', for a whichever-ends-first budget."""
    parts = [f"{config.steps} steps"] if config.steps else []
    if config.minutes:
        parts.append(f"{config.minutes:g} minutes")
    return " or ".join(parts) + (", whichever ends first" if len(parts) == 2 else "")
