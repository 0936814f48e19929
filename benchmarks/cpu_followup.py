"""Writes the CPU follow-up of the GPU study (issue 6) as a ``pixrel bench --specs`` file.

The GPU run (benchmarks/gpu_run.sh) covered the paper's table, the paper's
regime and the weight levers; these are the levers it did not reach, at the
same 600 equal steps, in priority order (a run takes 3 to 35 minutes here,
depending on what else runs): 8 anchors per class (led on val on its one GPU
subset), the separate projection head, then scribbles, CE against the
paper's setting subset by subset (CE overfits thin strokes: the regime where
a regulariser may pay), then more subsets of the first two.

    python benchmarks/cpu_followup.py specs.json
    pixrel bench --specs specs.json --out benchmarks/results/cpu
"""

from __future__ import annotations

from relation_sweep import runs, write_specs


def specs() -> list[dict]:
    anchors8 = [r for r in runs("intra", train={"anchors_per_class": 8}) if r["subset"] != 0]
    projection = [r for r in runs("intra", model={"head": "projection"}) if r["subset"] in (0, 1)]
    scribbles = [r for subset in range(5) for mode in ("none", "intra")
                 for r in runs(mode, labels="scribbles") if r["subset"] == subset]
    return anchors8[:1] + projection[:1] + scribbles + anchors8[1:] + projection[1:]


if __name__ == "__main__":
    write_specs({"followup": specs}, "cpu_specs.json")
