"""How long does showing a partial live prediction hold napari's UI thread?

Where the labels are large (a 4096 x 4096 slide painted in one corner, a stack of 20 sections of 1024 x 1024 with
4 of them painted), each evaluation during training predicts only the painted region or slices
(``preview_of``), and the dock places that into its output layers, which have the labels' shape. This opens
the dock in a real window (run under Xvfb), prepares its output layers as Train does, and times the dock's
render of an evaluation (``_show_latest``: the prediction and uncertainty layers and the IoU table) until Qt
has painted the canvas, alternating two predictions so that every render changes the layers, and after each
render a repaint of the canvas with nothing changed (what drawing costs at all). Appends the
medians, under ``--label``, to one JSON file: run it on two checkouts, alternately, to compare them (the
package comes from ``PYTHONPATH`` when set; the file records where it came from).

    QT_QPA_PLATFORM= xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/preview_render.py
        --label NAME [--repeats 9] [--out benchmarks/results/cpu-avx2/preview-render.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

import napari_pixrel
from napari_pixrel._widget import PixrelWidget, preview_of
from napari_pixrel.predict import Prediction
from napari_pixrel.trainer import TrainReport

NAMES = ["background", "membrane", "mitochondria"]


def cases() -> dict[str, tuple[tuple, list]]:
    """{name: (labels shape, the painted parts)}."""
    return {"slide 4096x4096, one corner painted": ((4096, 4096), [np.s_[100:400, 100:400]]),
            "stack 20x1024x1024, 4 sections painted": ((20, 1024, 1024),
                                                       [np.s_[i, 100:900, 100:900] for i in (0, 5, 10, 15)])}


def render_seconds(shape: tuple, painted: list, repeats: int) -> list[float]:
    """Seconds of the UI thread per render of an evaluation's partial preview, in a fresh viewer."""
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    labels = np.zeros(shape, np.uint8)
    for part in painted:
        labels[part] = 1
    viewer.add_image(image, name="image")
    viewer.add_labels(labels, name="labels")
    widget = PixrelWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.image.value, widget.labels.value = viewer.layers["image"], viewer.layers["labels"]
    widget._render_source = viewer.layers["labels"]
    preview, widget._preview_planes, widget._preview_window = preview_of(image, labels)
    widget._preview_shape = labels.shape
    widget._prepare_outputs("", labels.shape)
    widget.segmenter = SimpleNamespace(class_names=NAMES)
    app.processEvents()
    reports = []
    for seed in (1, 2):
        probabilities = np.random.default_rng(seed).random((len(NAMES),) + preview.shape, dtype=np.float32)
        probabilities /= probabilities.sum(0)
        prediction = Prediction((probabilities.argmax(0) + 1).astype(np.uint8), probabilities)
        iou = dict.fromkeys([*NAMES, "mIoU"], 0.5)
        reports.append(TrainReport(step=10, max_steps=600, elapsed=1.0, progress=0.1, loss=1.0, ce=1.0, relation=0.0,
                                   relation_weight=0.0, val_iou=None, train_iou=iou, prediction=prediction))
    canvas = viewer.window._qt_viewer.canvas.native
    seconds = {"render": [], "repaint alone": []}
    for i in range(repeats + 1):
        widget._latest = {"": reports[i % 2]}
        for kind, change in (("render", widget._show_latest), ("repaint alone", lambda: None)):
            start = time.perf_counter()
            change()
            app.processEvents()
            canvas.repaint()
            app.processEvents()
            if i:  # the first render after preparing the layers is a warm-up
                seconds[kind].append(time.perf_counter() - start)
    viewer.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="what this checkout is (e.g. new arrays, in place)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default="benchmarks/results/cpu-avx2/preview-render.json")
    args = parser.parse_args()
    package = Path(napari_pixrel.__file__).parent
    commit = subprocess.run(["git", "-C", str(package), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {
        "machine": {"cpu_cores": os.cpu_count(), "platform": platform.platform()},
        "what": "ms of the UI thread per render of an evaluation's partial preview, until the canvas is painted",
        "runs": []}
    run = {"label": args.label, "package": str(package), "commit": commit, "ms": {}, "median_ms": {},
           "command": f"python benchmarks/preview_render.py --label '{args.label}' --repeats {args.repeats}"}
    for name, (shape, painted) in cases().items():
        for kind, seconds in render_seconds(shape, painted, args.repeats).items():
            run["ms"][f"{name}: {kind}"] = [round(1000 * s, 1) for s in seconds]
            run["median_ms"][f"{name}: {kind}"] = round(1000 * statistics.median(seconds), 1)
    result["runs"].append(run)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(args.label, commit, run["median_ms"])


if __name__ == "__main__":
    main()
