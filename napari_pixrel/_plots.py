"""Curves in the dock: training loss and mIoU while training, and the label-efficiency study's curve.

Drawing this small figure takes 40-150 ms of the UI thread on a busy CPU, so
redraws are throttled: data is always recorded, the canvas is repainted at
most every ``min_interval`` seconds (and at once when a run ends), and the
layout is fixed (matplotlib's constrained layout would double the cost).
"""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from ._throttle import Throttle

BACKGROUND = "#262930"  # napari's dark theme
FOREGROUND = "#d0d0d0"
COLORS = ("#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176")


class _DockFigure(QWidget):
    """A small dark figure that fits napari's dark theme, with a throttled redraw."""

    def __init__(self, height: float = 2.4, min_interval: float = 2.5, parent=None):
        super().__init__(parent)
        self.figure = Figure(figsize=(4, height), facecolor=BACKGROUND)
        self.figure.subplots_adjust(left=0.12, right=0.97, bottom=0.2, top=0.88, wspace=0.3)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.canvas.setFixedHeight(int(height * self.figure.dpi))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.n_draws = 0
        self._throttle = Throttle(self._draw, min_interval, self)

    def _style(self, ax, title: str, xlabel: str, ylabel: str) -> None:
        ax.set_facecolor(BACKGROUND)
        ax.set_title(title, color=FOREGROUND, fontsize=8)
        ax.set_xlabel(xlabel, color=FOREGROUND, fontsize=7)
        ax.set_ylabel(ylabel, color=FOREGROUND, fontsize=7)
        ax.tick_params(colors=FOREGROUND, labelsize=7)
        for spine in ax.spines.values():
            spine.set_color("#5a5f6a")

    def _legend(self, ax) -> None:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, facecolor=BACKGROUND, edgecolor="#5a5f6a", labelcolor=FOREGROUND)

    def redraw(self, force: bool = False) -> None:
        """Repaint soon (throttled), or at once with ``force``."""
        if force:
            self._throttle.now()
        else:
            self._throttle.request()

    def _draw(self) -> None:
        raise NotImplementedError

    def _paint(self) -> None:
        """Draw now, while this widget is held: ``draw_idle`` would draw later holding only the canvas, and
        a dock closed meanwhile could be collected in the middle of that draw, deleting the canvas under it
        (matplotlib then prints "wrapped C/C++ object ... has been deleted"). The throttle already spaces
        the draws."""
        self.canvas.draw()
        self.n_draws += 1


class TrainingPlot(_DockFigure):
    """Loss per step and mIoU (validation solid, painted training pixels dashed) per evaluation, per run;
    a star marks an earlier evaluation whose weights a finished run kept (the best on validation).

    The lines are made once per set of runs and then only given new data: a redraw that made them again on
    cleared axes held the UI thread 154 ms on a 2-core CPU, one with new data 74 ms (benchmarks/dock_draw.py).
    """

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.loss_ax, self.iou_ax = self.figure.subplots(1, 2)
        self.series: dict[str, dict[str, list]] = {}
        self._lines: dict[str, tuple] = {}  # run -> its lines: loss, validation, painted (train), kept
        self._made_for: tuple = ()  # the runs (and whether each has a kept star) the lines were made for
        self.clear()

    def clear(self) -> None:
        self.series = {}
        self._draw()

    def add(self, run: str, report) -> None:
        """Record one TrainReport of the run named ``run`` (a name shown in the legend)."""
        s = self.series.setdefault(run, {"step": [], "loss": [], "eval": [], "val": [], "train": [], "kept": []})
        s["step"].append(report.step)
        s["loss"].append(report.loss)
        if report.kept_step not in (None, report.step):
            s["kept"] = [(report.kept_step, report.val_iou["mIoU"])]
        elif report.train_iou is not None:
            s["eval"].append(report.step)
            s["val"].append((report.val_iou or {}).get("mIoU", float("nan")))
            s["train"].append(report.train_iou["mIoU"])

    def _make_lines(self) -> None:
        """Empty lines for each run (and the legends), on cleared axes."""
        self.loss_ax.clear()
        self.iou_ax.clear()
        self._style(self.loss_ax, "loss", "step", "")
        self._style(self.iou_ax, "mIoU", "step", "")
        self.iou_ax.set_ylim(0, 1)
        self._lines = {}
        for color, (run, s) in zip(COLORS, self.series.items(), strict=False):
            lines = (self.loss_ax.plot([], [], color=color, lw=1, label=run or None)[0],
                     self.iou_ax.plot([], [], color=color, lw=1.5, marker=".", label="validation")[0],
                     self.iou_ax.plot([], [], color=color, lw=1, ls="--", label="painted (train)")[0])
            if s["kept"]:
                lines += (self.iou_ax.plot([], [], color=color, marker="*", ms=9, ls="", label="kept")[0],)
            self._lines[run] = lines
        self._legend(self.loss_ax)
        if len(self.series) == 1:
            self._legend(self.iou_ax)
        self._made_for = tuple((run, bool(s["kept"])) for run, s in self.series.items())

    def _draw(self) -> None:
        if self._made_for != tuple((run, bool(s["kept"])) for run, s in self.series.items()) or not self._lines:
            self._make_lines()
        for run, s in self.series.items():
            loss, val, train, *kept = self._lines[run]
            loss.set_data(s["step"], s["loss"])
            val.set_data(s["eval"], s["val"])
            train.set_data(s["eval"], s["train"])
            for star in kept:
                star.set_data(*zip(*s["kept"], strict=True))
        for ax in (self.loss_ax, self.iou_ax):
            ax.relim()
            ax.autoscale_view(scaley=ax is self.loss_ax)
        self._paint()


class StudyPlot(_DockFigure):
    """Held-out mIoU (mean +- sd over rotations) and each class's IoU against the number of labeled images."""

    def __init__(self, parent=None):
        super().__init__(height=2.2, parent=parent)
        self.ax = self.figure.subplots()
        self.result = None
        self._draw()

    def show_result(self, result, force: bool = False) -> None:
        self.result = result
        self.redraw(force)

    def _draw(self) -> None:
        ax = self.ax
        ax.clear()
        self._style(ax, "do my labeled images suffice?", "labeled images", "held-out IoU")
        ax.set_ylim(0, 1)
        points = self.result.points if self.result is not None else ()
        if points:
            m = [p.n_train for p in points]
            for color, name in zip(COLORS[1:], points[0].per_class, strict=False):
                ax.plot(m, [p.per_class[name] for p in points], color=color, lw=1, alpha=0.8, label=name)
            ax.errorbar(m, [p.mean for p in points], yerr=[p.sd for p in points], color=COLORS[0], lw=2,
                        marker="o", capsize=3, label="mIoU")
            ax.set_xticks(m)
            self._legend(ax)
        self._paint()
