"""The dock's training curves: redraws give the lines made once their new data, and make them again only when
the runs change."""

import gc
from types import SimpleNamespace

import numpy as np
from matplotlib.artist import Artist

from napari_pixrel._plots import TrainingPlot


def report(step, loss, evaluated=False, kept_step=None, miou=0.5):
    iou = {"mIoU": miou} if evaluated or kept_step else None
    return SimpleNamespace(step=step, loss=loss, val_iou=iou, train_iou=iou, kept_step=kept_step)


def test_the_lines_are_made_once_and_follow_the_reports(qtbot):
    plot = TrainingPlot()
    qtbot.addWidget(plot)
    for step in range(1, 6):
        plot.add("", report(step, 1 / step, evaluated=step % 2 == 0, miou=step / 10))
    plot.redraw(force=True)
    loss, val, train = plot.loss_ax.lines[0], *plot.iou_ax.lines
    for step in range(6, 11):
        plot.add("", report(step, 1 / step, evaluated=step % 2 == 0, miou=step / 10))
    plot.redraw(force=True)
    assert plot.loss_ax.lines[0] is loss and list(plot.iou_ax.lines) == [val, train]  # the same lines, updated
    np.testing.assert_array_equal(loss.get_xdata(), np.arange(1, 11))
    np.testing.assert_array_equal(val.get_xdata(), [2, 4, 6, 8, 10])
    np.testing.assert_allclose(train.get_ydata(), [0.2, 0.4, 0.6, 0.8, 1.0])
    assert plot.loss_ax.get_xlim()[1] >= 10 and plot.iou_ax.get_xlim()[1] >= 10  # the axes follow the data
    assert plot.iou_ax.get_ylim() == (0, 1)


def test_a_kept_evaluation_and_a_second_run_make_the_lines_again(qtbot):
    plot = TrainingPlot()
    qtbot.addWidget(plot)
    for step in range(1, 5):
        plot.add("cross-entropy", report(step, 1.0, evaluated=step % 2 == 0))
    plot.redraw(force=True)
    plot.add("pixel relation", report(1, 2.0))
    plot.redraw(force=True)
    assert [line.get_label() for line in plot.loss_ax.lines] == ["cross-entropy", "pixel relation"]
    plot.add("cross-entropy", report(4, 1.0, kept_step=2, miou=0.7))  # the finished report of a kept run
    plot.redraw(force=True)
    stars = [line for line in plot.iou_ax.lines if line.get_label() == "kept"]
    assert len(stars) == 1 and list(stars[0].get_xdata()) == [2] and list(stars[0].get_ydata()) == [0.7]
    plot.clear()
    assert not plot.loss_ax.lines and not plot.iou_ax.lines


class _Collector(Artist):
    """Runs the garbage collector while the figure draws, as a busy napari may."""

    def draw(self, renderer):
        gc.collect()


def test_a_figure_dropped_before_its_repaint_never_paints_a_deleted_canvas(qtbot, capfd):
    plot = TrainingPlot()  # no parent: Python owns it, and deletes its canvas when it is collected
    plot.figure.add_artist(_Collector())
    plot.add("", report(1, 1.0))
    plot.redraw(force=True)
    del plot  # a dock closed while a repaint is due
    qtbot.wait(100)
    assert "has been deleted" not in capfd.readouterr().err
