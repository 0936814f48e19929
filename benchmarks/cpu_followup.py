"""Writes the CPU follow-up of the GPU study (issue 6) as a ``pixrel bench --specs`` file.

The GPU run (benchmarks/gpu_run.sh) covered the paper's table, the paper's
regime and the weight levers; these are the levers it did not reach, at the
same 600 equal steps, in priority order (the CPU is slow: a run takes 5 to
20 minutes here): 8 anchors per class (led on val on its one GPU subset),
the separate projection head, scribbles (CE against the paper's setting),
then more subsets of each.

    python benchmarks/cpu_followup.py specs.json
    pixrel bench --specs specs.json --out benchmarks/results/cpu
"""

from __future__ import annotations

import json
import sys

from relation_sweep import runs


def specs() -> list[dict]:
    anchors8 = [r for r in runs("intra", train={"anchors_per_class": 8}) if r["subset"] != 0]
    projection = [r for r in runs("intra", model={"head": "projection"}) if r["subset"] in (0, 1)]
    scribbles = []
    for subset in (0, 1):
        for mode, train in (("none", {}), ("intra", {"anchors_per_class": 8}), ("intra", {})):
            scribbles += [r for r in runs(mode, labels="scribbles", train=train) if r["subset"] == subset]
    scribbles_paper = [scribbles[0], scribbles[2]]  # CE and the paper's setting on subset 0
    rest = [r for r in scribbles if r not in scribbles_paper]
    return anchors8[:1] + projection[:1] + scribbles_paper + anchors8[1:2] + projection[1:] + anchors8[2:] + rest


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "cpu_specs.json"
    with open(path, "w") as f:
        json.dump(specs(), f, indent=1)
    print(f"{len(specs())} runs written to {path}")
