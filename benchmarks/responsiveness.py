"""Does napari stay responsive while the dock trains on the CPU?

Opens a real viewer with the sample data and the dock, presses Train and,
until training ends, records the gaps between ticks of a 10 ms QTimer on Qt's
event loop (a gap is how long the UI could not react) while the camera is
panned every 100 ms like a user would; also the time from pressing Train to
the first prediction layer update. After a short warm-up (so one-time costs
such as creating the output layers count for neither), runs once with torch on
every core and once with the dock's default (one core left to napari) and
writes both to benchmarks/results/responsiveness.json (or ``--out``). Each run
also lists the full garbage collections (which hold every thread) it saw.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/responsiveness.py [--out FILE]
        [--collector]  (the dock's threads without and with its freeze of the garbage collector)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
from pathlib import Path

import napari
import torch
from qtpy.QtCore import QEventLoop, QTimer

RESULTS = Path(__file__).resolve().parent / "results" / "responsiveness.json"
TICK_MS = 10
PAN_MS = 100


def measure(viewer, widget, threads: int | None, steps: int, freeze: bool = True) -> dict:
    """Train once with ``threads`` torch threads (None = all cores) and time the event loop meanwhile; also
    the full (oldest generation) garbage collections, which hold every thread. ``freeze``: the dock's
    ``freeze_collector``."""
    widget.cpu_threads = threads
    widget.freeze_collector = freeze
    widget.budget.value = steps
    gaps: list[float] = []
    ends: list[float] = []  # when each gap ended, seconds after pressing Train
    last = [time.perf_counter()]
    collections: list[tuple[float, float]] = []  # (ms, seconds after pressing Train) of each full collection
    collecting = [0.0]

    def collected(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            now = time.perf_counter()
            if phase == "start":
                collecting[0] = now
            else:
                collections.append((1000 * (now - collecting[0]), now - started))

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        ends.append(now - started)
        last[0] = now

    def pan() -> None:
        camera = viewer.scene.camera
        center = list(camera.center)
        center[-1] += 2.0 if len(gaps) % 2 else -2.0
        camera.center = center

    ticker, panner = QTimer(), QTimer()
    ticker.setInterval(TICK_MS)
    panner.setInterval(PAN_MS)
    ticker.timeout.connect(tick)
    panner.timeout.connect(pan)
    started = time.perf_counter()
    gc.callbacks.append(collected)
    widget.train_button.native.click()
    click = time.perf_counter() - started
    loop = QEventLoop()
    widget.worker.finished.connect(loop.quit)
    last[0] = time.perf_counter()
    ticker.start()
    panner.start()
    loop.exec()
    ticker.stop()
    panner.stop()
    gc.callbacks.remove(collected)
    wall = time.perf_counter() - started
    gaps_ms = sorted(1000 * g for g in gaps)
    worst = sorted(zip(gaps, ends, strict=True), reverse=True)[:5]
    return {
        "torch_threads": threads or os.cpu_count(),
        "freeze_collector": freeze,
        "full_collections": {"count": len(collections), "longest_ms_at_s": [
            [round(ms, 1), round(t, 2)] for ms, t in sorted(collections, reverse=True)[:5]]},
        "steps": steps,
        "train_wall_s": round(wall, 2),
        "seconds_per_step": round(wall / steps, 3),
        "train_button_handler_ms": round(1000 * click, 1),
        "first_prediction_s": round(widget.first_prediction_after, 2),
        "tick_gap_ms": {
            "median": round(statistics.median(gaps_ms), 1),
            "p99": round(gaps_ms[int(0.99 * (len(gaps_ms) - 1))], 1),
            "max": round(gaps_ms[-1], 1),
            "over_100ms": sum(g > 100 for g in gaps_ms),
            "ticks": len(gaps_ms),
            "worst_ms_at_s": [[round(1000 * g, 1), round(t, 2)] for g, t in worst],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="training steps per measurement")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--collector", action="store_true",
                        help="compare the dock's threads without and with freeze_collector instead of the threads")
    args = parser.parse_args()
    viewer = napari.Viewer()
    viewer.open_sample("napari-pixrel", "few_shot")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-pixrel", "pixrel: few-shot trainer")
    widget.labels.value = viewer.layers["scribbles"]
    default_threads = widget.cpu_threads
    measure(viewer, widget, default_threads, 2)  # warm-up: output layers, shaders, kernels; not reported
    if args.collector:
        runs = [measure(viewer, widget, default_threads, args.steps, freeze) for freeze in (False, True)]
    else:
        runs = [measure(viewer, widget, threads, args.steps) for threads in (None, default_threads)]
    result = {
        "what": "Qt event-loop tick gaps (10 ms timer, camera panned every 100 ms) while the dock trains "
                "(sample data, scribbles, pixel relation within image, patch 256, batch 4, eval every 10 steps, the "
                "first after 15 s of training if sooner)",
        "machine": {"cpu_cores": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "dock_default_threads": default_threads,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    viewer.close()


if __name__ == "__main__":
    main()
