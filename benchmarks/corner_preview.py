"""What the dock's evaluations cost on a large slide painted in one corner, with the live prediction of the
whole slide (the dock before the eighteenth session) and of the region around the strokes (``preview_of``).

The slide is a mosaic of the shipped synthetic sample (``--tiles`` x ``--tiles`` tiles of 256 pixels) whose
top-left tile carries its scribbles; the trainer runs with the dock's settings (``EVAL_SHARE``, one CPU thread
fewer than the cores) for a training budget of ``--seconds``, once per preview. Writes one JSON file of wall
time, training time, steps and evaluations per preview.

    .venv/bin/python benchmarks/corner_preview.py [--tiles 16] [--seconds 60]
        [--out benchmarks/results/cpu/corner-preview.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from large_image_eval import mosaic, run

from napari_pixrel._widget import EVAL_SHARE, preview_of
from napari_pixrel.bench import environment
from napari_pixrel.model import resolve_device
from napari_pixrel.sample_data import load_sample_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=16, help="tiles per side (16: 4096 x 4096 pixels)")
    parser.add_argument("--seconds", type=float, default=60.0, help="training budget of each run")
    parser.add_argument("--out", default="benchmarks/results/cpu/corner-preview.json")
    args = parser.parse_args()
    images, _, scribbles = load_sample_data()
    image = mosaic(images, args.tiles)
    strokes = np.zeros(image.shape, scribbles.dtype)
    strokes[: scribbles.shape[1], : scribbles.shape[2]] = scribbles[0]
    region, _, window = preview_of(image, strokes)
    runs = {"whole slide": run(image, strokes, EVAL_SHARE, args.seconds),
            "painted region": run(image, strokes, EVAL_SHARE, args.seconds, preview=region, window=window)}
    result = {**environment(resolve_device("auto")), "image": list(image.shape),
              "region": [[s.start, s.stop] for s in window], "runs": runs,
              "command": f"python benchmarks/corner_preview.py --tiles {args.tiles} --seconds {args.seconds:g}"}
    Path(args.out).write_text(json.dumps(result, indent=1))
    for name, r in runs.items():
        print(name, r)


if __name__ == "__main__":
    main()
