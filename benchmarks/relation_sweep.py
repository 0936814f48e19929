"""Writes the run list of the pixel-relation study (issue 6) as a ``pixrel bench --specs`` file.

Every setting runs on the five 4-tile subsets at equal steps, with val and test
mIoU measured along the way (so one run also gives its learning curve).
Settings are chosen on val; test is read only for the chosen ones.
Phases are listed in priority order: a sweep cut short still has the most
important comparisons. Studies: "full" (full masks first; the first GPU
session) and "scribbles" (the napari regime first, with its own full-mask
baselines so that every comparison is on one device; the second GPU session), "painted"
(painted fractions from 2% to full masks; the third GPU session) and "smoothness" (scribbles with the
pairwise smoothness loss, eighth session).

    python benchmarks/relation_sweep.py specs.json [full|scribbles|painted|painted-seed1|smoothness|smoothness-more]
    pixrel bench --specs specs.json --workers 8 --out benchmarks/results/gpu
"""

from __future__ import annotations

import json
import sys

SUBSETS = range(5)
STEPS = 600  # 2.4 to 3 minutes of training on the 2-core CPU (0.235 to 0.294 s per step, step-cost table)
EVAL = [100, 200, 300, 400, 600]
PAPER_STEPS = 3000
PAPER_EVAL = [500, 1000, 1500, 2000, 3000]


def runs(mode, labels="full", seeds=(0,), steps=STEPS, evals=EVAL, train=None, model=None, painted=None):
    extra = {"painted": painted} if painted else {}
    return [{"subset": s, "labels": labels, "mode": mode, "seed": seed, "steps": steps, "eval_steps": evals,
             "train": train or {}, "model": model or {}, **extra} for seed in seeds for s in SUBSETS]


LEVERS = [  # one change each from the paper's setting (weight 1 on the sum over classes, 1 anchor, D=8)
    {"train": {"relation_weight": 0.03}},
    {"train": {"relation_weight": 0.1}},
    {"train": {"relation_weight": 0.3, "warmup_steps": 200, "ramp_steps": 200}},
    {"train": {"anchors_per_class": 8}},
    {"train": {"hard_anchors": True}},
    {"train": {"negative_target": 0.0}},
    {"model": {"head": "projection"}},
    {"model": {"embed_dim": 16}},
]


def full_first() -> list[dict]:
    out = []
    # 1. the paper's table at the product's learning rate, two seeds (noise first)
    for mode in ("none", "intra", "inter"):
        out += runs(mode, seeds=(0, 1))
    # 2. the paper's regime: Adam lr 1e-4, a long schedule
    for mode in ("none", "intra", "inter"):
        out += runs(mode, steps=PAPER_STEPS, evals=PAPER_EVAL, train={"lr": 1e-4})
    # 3. levers on full masks, one seed
    for lever in LEVERS:
        out += runs("intra", **lever)
    out += runs("inter", train={"relation_weight": 0.1})
    # 4. scribbles: the napari regime, two seeds
    for mode in ("none", "intra", "inter"):
        out += runs(mode, labels="scribbles", seeds=(0, 1))
    # 5. second seed for the small weights and the separate head; small weights on scribbles
    for lever in LEVERS[:2] + LEVERS[6:7]:
        out += runs("intra", seeds=(1,), **lever)
    for lever in LEVERS[:2]:
        out += runs("intra", labels="scribbles", **lever)
    return out


SCRIBBLE_LEVERS = LEVERS[3:] + [{"train": {"relation_weight": 0.3}}, {"train": {"relation_weight": 3.0}}]


def scribbles_first() -> list[dict]:
    # 0. the reference ceiling: CE on all 192 train tiles (longest run, started first)
    out = [{"subset": "all", "mode": "none", "steps": PAPER_STEPS, "eval_steps": PAPER_EVAL}]
    # 1. the paper's table with scribbles, two seeds
    for mode in ("none", "intra", "inter"):
        out += runs(mode, labels="scribbles", seeds=(0, 1))
    # 2. levers on scribbles, one seed (anchors here are painted pixels by construction)
    for lever in SCRIBBLE_LEVERS:
        out += runs("intra", labels="scribbles", **lever)
    # 3. does the gap hold with a longer budget?
    for mode in ("none", "intra"):
        out += runs(mode, labels="scribbles", steps=2 * STEPS, evals=EVAL + [900, 1200])
    # 4. full masks on this device: baselines, then the levers the first session did not reach
    for mode in ("none", "intra"):
        out += runs(mode)
    for lever in LEVERS[3:6] + LEVERS[7:]:
        out += runs("intra", **lever)
    return out


PAINTED = (0.05, 0.1, 0.25, 0.5)
COSINE = {"schedule": "cosine"}


def painted_first(seeds=(0,)) -> list[dict]:
    """Where between scribbles (2%) and full masks does pixel relation stop paying? (the auto rule's 25%)"""
    out = []
    # 1. relation and CE, both with the cosine decay, at painted fractions between scribbles and full masks
    for painted in PAINTED:
        for mode in ("intra", "none"):
            out += runs(mode, labels="scribbles", seeds=seeds, painted=painted, train=COSINE)
    # 2. the same pair at the two ends: scribbles (~2%) and full masks
    for labels in ("scribbles", "full"):
        for mode in ("intra", "none"):
            out += runs(mode, labels=labels, seeds=seeds, train=COSINE)
    # 3. CE at a constant rate (the product's choice above 25%) at the same fractions
    for painted in PAINTED:
        out += runs("none", labels="scribbles", seeds=seeds, painted=painted)
    return out


SCRIBBLE_STEPS = 1100  # about what CE fits in 5 minutes on the 2-core CPU with the warp (median 1140)
SCRIBBLE_EVAL = [100, 200, 300, 400, 600, 800, 1100]
PRODUCT = {"warp": True, "keep": "best", "eval_every": 50}  # the product's scribble defaults, as on the CPU


def smoothness_first(seeds=(0,), weights=(0.0, 1.0, 0.3, 3.0), relation=(0.0, 1.0)) -> list[dict]:
    """Does a pairwise smoothness loss (smoothness.py) carry scribbles further? (the eighth session)"""
    # CE at a constant rate (weights chosen on the val tiles), within image decayed over the budget (auto's
    # schedule for it); weight 0 leaves the key out, as the baselines' names have it
    regimes = (("none", weights, {}), ("intra", relation, {"schedule": "cosine"}))
    return [r for mode, chosen, schedule in regimes for weight in chosen
            for r in runs(mode, labels="scribbles", seeds=seeds, steps=SCRIBBLE_STEPS, evals=SCRIBBLE_EVAL,
                          train={**PRODUCT, **schedule, **({"smoothness": weight} if weight else {})})]


STUDIES = {"full": full_first, "scribbles": scribbles_first, "painted": painted_first,
           "painted-seed1": lambda: painted_first(seeds=(1,)),
           "smoothness": lambda: smoothness_first((0,)) + smoothness_first((1,)),
           # the weights above the best of the first call (3), and its second seed
           "smoothness-more": lambda: (smoothness_first((1,), (3.0,), ()) + smoothness_first((0,), (10.0,), ())
                                       + smoothness_first((1,), (10.0,), ()))}


def write_specs(phases: dict, default_path: str) -> None:
    """Command line of the spec writers: ``SCRIPT [PATH] [PHASE]`` (the first phase by default)."""
    path = sys.argv[1] if len(sys.argv) > 1 else default_path
    specs = phases[sys.argv[2] if len(sys.argv) > 2 else next(iter(phases))]()
    with open(path, "w") as f:
        json.dump(specs, f, indent=1)
    print(f"{len(specs)} runs written to {path}")


if __name__ == "__main__":
    write_specs(STUDIES, "relation_specs.json")
