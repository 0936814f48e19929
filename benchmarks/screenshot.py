"""A real screenshot of napari with the pixrel dock during training -> docs/screenshot.png.

Opens the synthetic few-shot sample, docks "pixrel: few-shot trainer", starts
training on the scribbles and takes the whole window once a prediction and the
IoU table are shown (training goes on in the background meanwhile).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/screenshot.py
"""

from __future__ import annotations

import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_pixrel._widget import PREDICTION

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"


def wait(seconds: float, until=lambda: False) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        QApplication.processEvents()
        time.sleep(0.02)


def main() -> None:
    viewer = napari.Viewer()
    viewer.window.resize(1560, 960)
    viewer.open_sample("napari-pixrel", "few_shot")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-pixrel", "pixrel: few-shot trainer")
    widget.labels.value = viewer.layers["scribbles"]
    viewer.dims.set_current_step(0, 5)  # the validation image: what the model has not trained on
    viewer.reset_view()
    widget.train_button.native.click()
    wait(600, until=lambda: len(widget.training_plot.series.get("", {}).get("eval", [])) >= 8)
    viewer.layers["scribbles"].visible = False  # show the prediction over the image, not the strokes
    viewer.layers.selection.active = viewer.layers[PREDICTION]
    widget.training_plot.redraw(force=True)
    wait(2)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(path=str(OUT), canvas_only=False, flash=False)
    print(f"wrote {OUT}")
    widget.stop()
    wait(30, until=lambda: not widget.busy)
    viewer.close()


if __name__ == "__main__":
    main()
