"""Writes the full-mask check of the elastic warp (sixth session) as a ``pixrel bench --specs`` file.

With scribbles the warp (napari_pixrel/warp.py) lifted both losses on the val tiles (cpu_scribbles.py,
phase "minutes5-warp"). This asks the same of full masks: CE and within image at issue 4's budget, 5 minutes
of training per run on this CPU, seed 0 on the five subsets, with the table's settings (constant rate, last
step kept) and the warp as the one change, so every run pairs with the committed run of the same subset
(``pixrel bench --part table --minutes 5``, result files ``full-s*-{none,intra}-seed0-6d4ff88a.json``).

Phase "full-ema" (seventh session): the same with a moving average of the weights (decay 0.99 per step,
``TrainConfig.ema``) as what is scored and kept. The val curves of the warp runs jump by up to 40 points
between evaluations 230 steps apart, and the table keeps the last step's weights, wherever it lands; the
average should land on steadier weights. Every run pairs with the warp run of the same subset
(``full-s*-{none,intra}-seed0-3a3f4bce.json``).

Phase "full-smoothness" (eighth session): CE of phase "full" with the pairwise smoothness loss
(smoothness.py) at weight 3, the weight that won with scribbles, to see whether "auto" should use it with
full masks too. Every run pairs with the CE warp run of the same subset (``full-s*-none-seed0-3a3f4bce.json``).

Phase "full-relation-decay" (fourteenth session): within image of phase "full" with its weight falling from 1
to 0 over the 5 minutes (cosine, ``TrainConfig.relation_decay``), the last untried schedule of issue 4's
list: warm-ups that start CE alone lost (docs/relation-loss.md); this starts with the relation term shaping the
class groups and leaves the last steps to CE. Rule set before the runs: it meets issue 4's relation target if
its val mean over the five subsets is at least +3 over CE (the CE warp run of the same subset) with 4 of 5
pairs above 0 and a test mean of 70 or more; a val mean above 0 with 4 of 5 pairs would be the first relation
setting to lead CE with full masks, to be checked with a second seed before auto changes.

    python benchmarks/cpu_warp.py specs.json [full|full-ema|full-smoothness|full-relation-decay]
    pixrel bench --specs specs.json --out benchmarks/results/cpu
"""

from __future__ import annotations

from relation_sweep import SUBSETS, write_specs

from napari_pixrel.bench import eval_schedule


def full(**train) -> list[dict]:
    return [{"subset": s, "labels": "full", "mode": mode, "seed": 0, "minutes": 5.0,
             "eval_seconds": eval_schedule(5.0), "train": {"warp": True, **train}}
            for s in SUBSETS for mode in ("none", "intra")]


def full_ema() -> list[dict]:
    return full(ema=0.99)


if __name__ == "__main__":
    write_specs({"full": full, "full-ema": full_ema,
                 "full-smoothness": lambda: [r for r in full(smoothness=3.0) if r["mode"] == "none"],
                "full-relation-decay": lambda: [r for r in full(relation_decay=True) if r["mode"] == "intra"]},
                "cpu_warp_specs.json")
