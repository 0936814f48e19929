"""Paired comparison of two groups of committed result files, matched by subset and seed.

RESULTS.md pairs every setting with the paper's CE; this pairs any two groups, e.g. the kept weights of
pixel relation against those of CE, or a run's kept weights against its own last step (``--point-a``,
``--point-b``). The patterns are read from the current folder, so run it in benchmarks/:

    cd benchmarks && ../.venv/bin/python paired.py 'results/cpu/scribbles-s*-intra-seed*-c96448ed.json' \
        'results/cpu/scribbles-s*-none-seed*-0f2e7e35.json' [--point-a 300s] [--point-b 300s]

Prints, for val and test: each group's mIoU (mean ± sd, and per class), the paired difference A − B
(mean ± sd, pairs above 0) and every pair's difference.
"""

from __future__ import annotations

import argparse
import glob
import json

from napari_pixrel.bench_report import mean_sd


def scores(pattern: str, point: str | None) -> dict[tuple, dict]:
    """{(subset, seed): {"val": iou, "test": iou}} from the files matching ``pattern``; with ``point``,
    the scores of that curve point instead of the run's result."""
    out = {}
    for path in sorted(glob.glob(pattern)):
        run = json.load(open(path))
        spec = run["spec"]
        source = next(p for p in run["curve"] if p["point"] == point) if point else run
        out[(spec["subset"], spec["seed"])] = {"val": source["val"], "test": source["test"]}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--point-a", help="a curve point of A (e.g. 300s) instead of its result")
    parser.add_argument("--point-b", help="a curve point of B instead of its result")
    args = parser.parse_args(argv)
    a, b = scores(args.a, args.point_a), scores(args.b, args.point_b)
    pairs = sorted(set(a) & set(b))
    if not pairs:
        raise SystemExit("no (subset, seed) pair in both groups")
    print(f"{len(pairs)} pairs (subset, seed): {pairs}")
    for split in ("val", "test"):
        print(f"{split}:")
        for name, group in (("A", a), ("B", b)):
            classes = {k: mean_sd([100 * group[p][split][k] for p in pairs]) for k in group[pairs[0]][split]}
            print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in classes.items()))
        diffs = [100 * (a[p][split]["mIoU"] - b[p][split]["mIoU"]) for p in pairs]
        print(f"  A - B: {mean_sd(diffs)}, {sum(d > 0 for d in diffs)} of {len(diffs)} above 0; "
              + ", ".join(f"{d:+.1f}" for d in diffs))


if __name__ == "__main__":
    main()
