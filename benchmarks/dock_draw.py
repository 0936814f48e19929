"""How long does a redraw of the dock's training curves hold napari's UI thread?

The training plot redraws at most every 2.5 s while training, and after every step where a step takes
longer (fp32 on a CPU without native bf16). This shows a ``TrainingPlot`` in a real window (run under Xvfb)
with 40 steps and 4 evaluations of one run, and times, interleaved, a redraw that makes the lines again on
cleared axes (what every redraw did before the nineteenth session) and one that gives the existing lines
their data (what it does now), each until Qt has painted the canvas. Writes the medians to one JSON file.

    QT_QPA_PLATFORM= xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/dock_draw.py
        [--repeats 9] [--out benchmarks/results/cpu-avx2/dock-draw.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path
from types import SimpleNamespace

from memory_format_step import interleaved
from qtpy.QtWidgets import QApplication

from napari_pixrel._plots import TrainingPlot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default="benchmarks/results/cpu-avx2/dock-draw.json")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    plot = TrainingPlot()
    plot.resize(400, 300)
    plot.show()
    for step in range(1, 41):
        evaluated = step % 10 == 0
        plot.add("", SimpleNamespace(step=step, loss=1 / step, kept_step=None, val_iou={"mIoU": 0.4 + step / 100},
                                     train_iou={"mIoU": 0.5 + step / 100} if evaluated else None))

    def remade() -> None:
        plot._make_lines()
        plot._draw()

    def painted(redraw):
        def redraw_and_paint() -> None:
            redraw()
            plot.canvas.repaint()  # the paint of the drawn figure, now
            app.processEvents()
        return redraw_and_paint

    seconds = interleaved({"lines made again": painted(remade), "lines given new data": painted(plot._draw)}, 1,
                          args.repeats)
    median = {name: round(1000 * statistics.median(s), 1) for name, s in seconds.items()}
    result = {"machine": {"cpu_cores": os.cpu_count(), "platform": platform.platform()},
              "what": "ms of the UI thread per training-plot redraw (40 steps, 4 evaluations, one run)",
              "ms": {name: [round(1000 * t, 1) for t in s] for name, s in seconds.items()},
              "median_ms": median, "command": f"python benchmarks/dock_draw.py --repeats {args.repeats}"}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(median)


if __name__ == "__main__":
    main()
