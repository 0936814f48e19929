"""Writes the full-mask check of the elastic warp (sixth session) as a ``pixrel bench --specs`` file.

With scribbles the warp (napari_pixrel/warp.py) lifted both losses on the val tiles (cpu_scribbles.py,
phase "minutes5-warp"). This asks the same of full masks: CE and within image at issue 4's budget, 5 minutes
of training per run on this CPU, seed 0 on the five subsets, with the table's settings (constant rate, last
step kept) and the warp as the one change, so every run pairs with the committed run of the same subset
(``pixrel bench --part table --minutes 5``, result files ``full-s*-{none,intra}-seed0-6d4ff88a.json``).

    python benchmarks/cpu_warp.py specs.json
    pixrel bench --specs specs.json --out benchmarks/results/cpu
"""

from __future__ import annotations

from relation_sweep import SUBSETS, write_specs

from napari_pixrel.bench import eval_schedule


def full() -> list[dict]:
    return [{"subset": s, "labels": "full", "mode": mode, "seed": 0, "minutes": 5.0,
             "eval_seconds": eval_schedule(5.0), "train": {"warp": True}}
            for s in SUBSETS for mode in ("none", "intra")]


if __name__ == "__main__":
    write_specs({"full": full}, "cpu_warp_specs.json")
