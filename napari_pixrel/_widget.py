"""The "pixrel: few-shot trainer" dock.

It only wires buttons and renders reports: training, the label-efficiency
study and prediction are the engine's generators (``Trainer.run``,
``Study.run``, ``predict.iter_predict``, ``folder.predict_folder``), run in a
napari ``thread_worker`` and rendered by one function per job connected to
``yielded``. Jobs read snapshots of the user's layers (painting on during
training is safe) and never write to them; results go to output layers that
are created once and then updated in place, at most once per
``RENDER_INTERVAL``.
"""

from __future__ import annotations

import functools
import gc
import math
import os
import re
import time
from dataclasses import replace
from pathlib import Path

import napari.layers
import numpy as np
import torch
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, LineEdit, PushButton, SpinBox
from napari.qt.threading import create_worker
from napari.utils.history import get_open_history
from napari.utils.notifications import show_error
from qtpy.QtCore import QEvent, Qt
from qtpy.QtWidgets import QFileDialog, QLabel, QProgressBar, QTabWidget, QVBoxLayout, QWidget

from . import folder, modelfile
from ._iou_table import IouTable
from ._plots import StudyPlot, TrainingPlot
from ._throttle import Throttle
from .data import as_planes, painted_box, painted_indices, painted_planes, split_labels
from .evidence import LOSS_ADVICE
from .loss_choice import AUTO, SMOOTHNESS_PAINTED
from .model import AUTO_DECODER, ModelConfig, Segmenter
from .predict import class_labels, iter_predict, labels_dtype, uncertainty
from .study import Study
from .trainer import EMA_DECAY, TrainConfig, Trainer

LOSSES = {
    "auto: CE; relation for scribbles without the warp": "auto",
    "cross-entropy only": "none",
    "pixel relation within image": "intra",
    "pixel relation across images": "inter",
}
TEACHING_BASELINE = "cross-entropy"  # teaching mode's two runs, side by side
TEACHING_RELATION = "pixel relation"
PREDICTION = "pixrel prediction"
UNCERTAINTY = "pixrel uncertainty"
OUTPUT_KEY = "pixrel_output"  # metadata flag of the layers this dock writes
RENDER_INTERVAL = 1.0  # seconds between layer/table updates while a job runs
EVAL_EVERY = 10  # evaluate (IoU, prediction) every 10 steps: a first prediction within seconds ...
FIRST_EVAL_SECONDS = 15.0  # ... the first after 15 s of training where steps are slow (fp32 on AVX2: 4.2 s per
# step with smp's decoder, a first prediction after 45 s, benchmarks/results/cpu-avx2/responsiveness.json)
EVAL_SHARE = 1 / 3  # ... but at most a third of the time: large images (benchmarks/large_image_eval.py)
PREVIEW_PIXELS = 2**22  # training previews the whole image up to this many pixels, else its painted planes
PREVIEW_MIN_SIDE = 1024  # ... and, where these still exceed it, the region around their strokes, this large at least
PREVIEW_MARGIN = 64  # pixels of context around the strokes
MODEL_FILTER = "pixrel model (*.pixrel *.pt);;all files (*)"  # the CLI's examples write .pt
# the budget a unit starts at when chosen: 600 steps or 5 minutes, the budgets the README's benchmark measured
BUDGET_DEFAULTS = {"steps": TrainConfig.steps, "minutes": 5.0}


def output_names(run: str) -> tuple[str, str]:
    """Names of the prediction and uncertainty layers of a run ("" = the one normal run)."""
    suffix = f" ({run})" if run else ""
    return PREDICTION + suffix, UNCERTAINTY + suffix


OUTPUT_NAMES = {name for run in ("", TEACHING_BASELINE, TEACHING_RELATION) for name in output_names(run)}


def iou_columns(run: str, val_iou: dict | None, train_iou: dict | None) -> dict:
    """IoU table columns of a run: validation images and painted training pixels."""
    tag = f"\n{run}" if run else ""
    return {f"validation{tag}": val_iou, f"painted (train){tag}": train_iou}


def parse_class_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) < 2:
        raise ValueError("give at least two class names, separated by commas (label 1 = first name, ...)")
    if len(set(names)) != len(names):
        raise ValueError(f"class names must differ: {', '.join(names)}")
    return names


def _sliders(labels_shape: tuple) -> tuple[int, ...]:
    """The lengths of the leading axes napari shows a slider for (it hides those of length 1)."""
    return tuple(n for n in labels_shape[:-2] if n > 1)


def _slice_name(index: int, sliders: tuple[int, ...]) -> str:
    """A plane index as the user reads it on napari's sliders: '7', or 't:z' ('2:5') with several sliders."""
    if len(sliders) < 2 or not 0 <= index < math.prod(sliders):
        return str(index)
    return ":".join(str(int(i)) for i in np.unravel_index(index, sliders))


def _plane_index(token: str, sliders: tuple[int, ...]) -> int:
    """'7' (planes counted in order through all sliders) or one number per slider, 't:z', -> plane index."""
    try:
        parts = [int(t) for t in token.split(":")]
    except ValueError:
        raise ValueError(f"validation slice {token!r}: give slice numbers such as '4, 5' (or '2:5' for t:z), or "
                         "'last', or leave it empty") from None
    if len(parts) == 1:
        return parts[0]
    if len(parts) != len(sliders) or any(not 0 <= p < n for p, n in zip(parts, sliders)):
        shown = (f"{len(sliders)} slider(s) of {' x '.join(map(str, sliders))} positions" if sliders
                 else "no slider")
        raise ValueError(f"validation slice {token!r}: the labels have {shown}")
    return int(np.ravel_multi_index(parts, sliders))


def parse_validation(text: str, labels: np.ndarray) -> list[int]:
    """Plane indices held out for validation: "" = none, "last" = last painted plane (when 2+ are painted),
    else numbers as on napari's slider; with several sliders (T and Z) one number per slider, 't:z', or
    planes counted in order through all of them."""
    text = re.sub(r"\s*:\s*", ":", text.strip().lower())
    if not text:
        return []
    painted, sliders = painted_indices(labels), _sliders(labels.shape)
    if text == "last":
        return painted[-1:] if len(painted) >= 2 else []
    chosen = sorted({_plane_index(t, sliders) for t in text.replace(",", " ").split()})
    unpainted = [_slice_name(i, sliders) for i in chosen if i not in painted]
    if unpainted:
        raise ValueError(f"validation slice(s) {', '.join(unpainted)} have nothing painted; painted slices: "
                         f"{', '.join(_slice_name(i, sliders) for i in painted)}")
    if len(chosen) == len(painted):
        raise ValueError("every painted slice is marked for validation: leave at least one for training")
    return chosen


def preview_of(image: np.ndarray, labels: np.ndarray, in_view: int | None = None
               ) -> tuple[np.ndarray, list[int] | None, tuple[slice, slice] | None]:
    """What training predicts at each evaluation: the whole image when small, else only its painted planes and
    the plane ``in_view`` (the 20 EM sections of 1024 x 1024 would take about 21 s per evaluation on a 2-core
    CPU, against 2.6 s for the 10 training steps between two: benchmarks/results/cpu/cost-cpu-2threads.json),
    and, where these are still too large (a slide painted in one corner), only the region around the strokes.
    Returns the preview, its plane indices (None: all planes, whole) and its window (rows, columns; None: whole
    planes)."""
    if labels.size <= PREVIEW_PIXELS:
        return image, None, None
    planes, _ = as_planes(image, labels_shape=labels.shape)
    chosen = sorted(set(painted_indices(labels)) | ({in_view} if in_view is not None else set()))
    flat = labels.reshape((-1,) + labels.shape[-2:])
    window = None
    if len(chosen) * flat[0].size > PREVIEW_PIXELS:
        box = painted_box(flat[chosen], PREVIEW_MARGIN, PREVIEW_MIN_SIDE)
        if box is not None and (box[0].stop - box[0].start) * (box[1].stop - box[1].start) <= flat[0].size // 2:
            window = box
    if len(chosen) == len(planes) and window is None:
        return image, None, None
    preview = planes[chosen][(slice(None),) + (window or ())]
    return (preview if preview.shape[-1] > 1 else preview[..., 0]), chosen, window


def partial_preview_note(planes: list[int], window: tuple[slice, slice] | None, in_view: int | None,
                         labels: np.ndarray) -> str:
    """The status line's account of a partial preview: how many painted slices, the slice in view, and the
    region of them."""
    rows, cols = window or (slice(0, 1), slice(0, 1))
    region = f"rows {rows.start}-{rows.stop - 1}, columns {cols.start}-{cols.stop - 1}" if window else ""
    if labels.ndim == 2:
        return f"; the live prediction covers the painted region, {region} (Apply predicts all)"
    unpainted_in_view = in_view is not None and not labels.reshape((-1,) + labels.shape[-2:])[in_view].any()
    in_view_too = " and the slice in view" if unpainted_in_view else ""
    of_region = f"{region} of " if region else ""
    return (f"; the live prediction covers {of_region}the {len(planes) - unpainted_in_view} painted slices"
            f"{in_view_too} (Apply predicts all)")


def ui_spare_threads() -> int:
    """The dock's torch threads: one fewer than the cores (at least 1), so napari's UI never starves."""
    return max(1, (os.cpu_count() or 1) - 1)


def full_resolution(layer: napari.layers.Layer):
    """A layer's data at full resolution: a multi-resolution (pyramid) layer's data is the list of its levels,
    which np.array would turn into the smallest one."""
    return layer.data[0] if layer.multiscale else layer.data


def clock(seconds: float) -> str:
    """Elapsed training time as the status line shows it: 04:05, or 1:02:03 past an hour (a long budget)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _stop_all(jobs: list) -> None:
    """Stop the jobs, and give the objects frozen for them back to the garbage collector (PixrelWidget._start)
    now: a dock closed or deleted mid-job may never see its worker finish."""
    for job in jobs:
        job.stop()
    gc.unfreeze()


class JobFailed(Exception):
    """A job's RuntimeError (most torch errors), passed on as another type: napari's worker takes a
    RuntimeError for a deleted worker and drops it, which would leave the dock busy for ever."""


def _button(text: str, action) -> PushButton:
    """A push button that calls ``action`` when clicked."""
    button = PushButton(text=text)
    button.changed.connect(action)
    return button


def _with_threads(reports, threads: int | None):
    """Pass ``reports`` on, after setting torch's CPU threads in the thread that runs them (torch keeps
    the setting per thread, so it must be set there)."""
    if threads:
        torch.set_num_threads(threads)
    try:
        yield from reports
    except RuntimeError as err:
        raise JobFailed(f"{type(err).__name__}: {err}") from None


def _alternate(runs: dict[str, Trainer]):
    """One step of each trainer in turn, as (run name, TrainReport), until all have finished."""
    generators = {name: trainer.run() for name, trainer in runs.items()}
    while generators:
        for name in list(generators):
            try:
                yield name, next(generators[name])
            except StopIteration:
                del generators[name]


class _WorkerPause:
    """Pause / Resume of a job run in a thread worker. The worker, not the job, waits between two reports: on
    exit napari asks its workers to quit and waits without a time limit, and a job waiting inside its generator
    never sees that. A pause takes effect once the step in flight has ended, by when Resume or Stop may have
    come: it is undone then. Listed after the jobs, its ``stop`` lets a paused worker run on to see theirs."""

    def __init__(self, worker):
        self.worker, self.held = worker, False
        # direct: run in the worker's thread, even while the UI thread waits for it (closing the viewer)
        worker.paused.connect(self._paused, Qt.ConnectionType.DirectConnection)

    def pause(self) -> None:
        self.held = True
        self.worker.pause()

    def resume(self) -> None:
        self.held = False
        self.worker.resume()

    stop = resume

    def _paused(self) -> None:
        if not self.held:
            self.worker.resume()


class _StopFlag:
    """Stop control for jobs that have none of their own (prediction)."""

    def __init__(self):
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def user_action(method):
    """Button handler wrapper: any error becomes a napari notification and a status line, never a crash."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        self.last_error = ""
        try:
            return method(self, *args, **kwargs)
        except Exception as err:  # noqa: BLE001 - the user sees every failure as a message
            self._fail(err)

    return wrapper


class PixrelWidget(QWidget):
    """Paint, train in the background, watch predictions and per-class IoU live, decide, apply."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.run_in_thread = True  # False: jobs run inline (tests, scripts)
        self.freeze_collector = True  # the garbage collector skips napari's objects while a job runs (_start)
        # CPU threads of background jobs: one core is left to napari so the UI never starves (None: all)
        self.cpu_threads: int | None = ui_spare_threads()
        # extra ModelConfig fields, e.g. {"encoder": "resnet18"}; the decoder is chosen for the device by default
        self.model_settings: dict = {"decoder_channels": AUTO_DECODER}
        self._last_folder = ""  # where the next file dialog opens (_start_in)
        self.train_settings: dict = {"eval_every": EVAL_EVERY}  # extra TrainConfig fields
        self.segmenter: Segmenter | None = None  # the model that Save / Apply use
        self.segmenters: dict[str, Segmenter] = {}  # per run of the last training ("" = normal run)
        self.last_error = ""  # the message of the last failed action or job ("" = none)
        self.worker = None
        self._worker_pause: _WorkerPause | None = None  # Pause / Resume of the running thread worker
        self._jobs: list = []  # what Stop acts on; never rebound (see destroyed)
        self._latest: dict = {}  # run name -> newest report that carries IoU and a prediction
        self._render_source = None  # the layer whose scale/translate output layers copy
        self._preview_planes: list[int] | None = None  # the planes training previews (None: all)
        self._preview_window: tuple[slice, slice] | None = None  # ... and their region (None: whole)
        self._preview_shape: tuple = ()  # the shape of the output layers the preview is placed into
        self._preview_note = ""  # said after training's status messages while the preview is partial
        self._exported = PREDICTION  # the prediction layer Export writes: the newest of the model Save uses
        self._exported_partial = False  # it covers some slices or a region only (a large image's live preview, ...)
        self._replaced = None  # (segmenters, segmenter) before Train: given back if training fails at once
        self._job_kind = ""
        self._render = None  # the running job's render function (see _rendered)
        self._render_failed = False  # a render of the running job raised: the job is stopped (_rendering)
        self._train_started = 0.0
        self.first_prediction_after: float | None = None  # seconds from Train to the first prediction shown
        self._build()
        self._layers_throttle = Throttle(self._rendering(self._show_latest), RENDER_INTERVAL, self)
        self.destroyed.connect(functools.partial(_stop_all, self._jobs))
        self._layer_events = (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed)
        for event in self._layer_events:
            event.connect(self._reset_choices)
        self._reset_choices()
        self._take_class_names_from_layer(self.labels.value)
        self._set_busy("")

    def event(self, event) -> bool:
        """Closing the dock (its X) only takes the widget out of the window, it is not deleted: stop the
        running job and stop following the layer list then, or training would go on unseen."""
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            _stop_all(self._jobs)
            for layer_event in self._layer_events:
                layer_event.disconnect(self._reset_choices)
        return super().event(event)

    # ---------- layout
    def _build(self) -> None:
        self.image = ComboBox(label="image", choices=self._image_choices)
        self.labels = ComboBox(label="labels", choices=self._labels_choices)
        self.class_names = LineEdit(label="class names", value="background, foreground")
        self.validation = LineEdit(label="validation slices", value="last")
        self.loss = ComboBox(label="loss", choices=list(LOSSES), value=next(iter(LOSSES)))
        self.loss_advice = Label(value=LOSS_ADVICE)
        self.loss_advice.native.setWordWrap(True)
        self.relation_weight = FloatSpinBox(label="relation weight", value=TrainConfig.relation_weight, min=0.0,
                                            max=100.0, step=0.01)
        self.relation_weight.tooltip = ("weight of the pixel-relation term; 1 is the paper's and the steadiest "
                                        "measured on the EM benchmark")
        self.budget = FloatSpinBox(label="budget", value=BUDGET_DEFAULTS["steps"], min=0.1, max=1e6, step=10)
        self.budget_unit = ComboBox(label="budget unit", choices=list(BUDGET_DEFAULTS), value="steps")
        self.budget_unit.changed.connect(self._budget_unit_changed)
        self.keep_best = CheckBox(text="keep the weights that scored best on validation",
                                  value=TrainConfig.keep == "best")
        self.keep_best.tooltip = ("at the end, go back to the evaluation with the highest validation mIoU (needs "
                                  "validation slices); unchecked: keep the last step's weights")
        self.warp = CheckBox(text="warp training patches (elastic, zoom, rotation)", value=TrainConfig.warp)
        self.warp.tooltip = ("augment every training patch with a smooth random deformation, zoom and rotation, "
                             "as the U-Net paper did for EM; measured on the EM benchmark in docs/relation-loss.md")
        self.average = CheckBox(text="average the weights over the last ~100 steps", value=TrainConfig.ema > 0)
        self.average.tooltip = ("evaluate, preview and keep a moving average of the trained weights: steadier than "
                                "the last step's; measured on the EM benchmark in docs/relation-loss.md")
        self.spread = CheckBox(text="spread scribbles to alike neighbours", value=TrainConfig.smoothness != 0)
        self.spread.tooltip = (f"with strokes or partial masks (under {SMOOTHNESS_PAINTED:.0%} of the pixels "
                               "painted) add the smoothness loss: nearby pixels that look alike are asked to share "
                               "a class; measured on the EM benchmark in docs/relation-loss.md. Off with full masks, "
                               "and where the painted areas draw most of the boundaries between classes (whole "
                               "areas painted completely, boundaries included): there it did not help (64-pixel "
                               "squares over half of each image: -2 mIoU)")
        self.teaching = CheckBox(text="teaching mode: cross-entropy baseline beside pixel relation")
        self.class_names.tooltip = "comma-separated; label 1 = first name, 2 = second, ...; 0 = not painted"
        self.validation.tooltip = ("painted slices held out to measure IoU: numbers as on napari's slider "
                                   "(e.g. '4, 5'; with a T and a Z slider 't:z', e.g. '2:5', or slices counted "
                                   "in order through both), 'last' = the last painted slice, empty = none")
        self.labels.changed.connect(self._take_class_names_from_layer)
        form = Container(widgets=[self.image, self.labels, self.class_names, self.validation, self.loss,
                                  self.loss_advice, self.relation_weight, self.budget, self.budget_unit, self.keep_best,
                                  self.warp, self.average, self.spread, self.teaching])

        self.train_button = _button("Train", self.train)
        self.pause_button = _button("Pause", self.pause)
        self.resume_button = _button("Resume", self.resume)
        self.stop_button = _button("Stop", self.stop)
        self.continue_button = _button("Continue training", self.continue_training)
        controls = Container(layout="horizontal", labels=False, widgets=[
            self.train_button, self.pause_button, self.resume_button, self.stop_button])

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.iou_table = IouTable()
        self.iou_table.show_iou(iou_columns("", None, None), [])
        self.training_plot = TrainingPlot()

        self.study_steps = SpinBox(label="steps per run", value=60, min=1, max=100000)
        self.study_rotations = SpinBox(label="rotations", value=3, min=1, max=20)
        self.study_threshold = FloatSpinBox(label="flat below (mIoU points)", value=2.0, min=0.0, max=100.0)
        self.study_button = _button("Do my labeled images suffice?", self.run_study)
        self.study_plot = StudyPlot()
        self.verdict = QLabel("Trains on 1, 2, ... of your painted images and scores the held-out ones.")
        self.verdict.setWordWrap(True)
        study_tab = QWidget()
        study_layout = QVBoxLayout(study_tab)
        for w in (Container(widgets=[self.study_steps, self.study_rotations, self.study_threshold]).native,
                  self.study_button.native, self.study_plot, self.verdict):
            study_layout.addWidget(w)
        curves_tab = QWidget()
        curves_layout = QVBoxLayout(curves_tab)
        curves_layout.addWidget(self.training_plot)
        curves_layout.addStretch(1)
        self.tabs = QTabWidget()
        self.tabs.addTab(curves_tab, "curves")
        self.tabs.addTab(study_tab, "enough labels?")

        self.save_button = _button("Save model", self._ask_save_model)
        self.load_button = _button("Load model", self._ask_load_model)
        self.apply_button = _button("Apply to image", self.apply_to_image)
        self.folder_button = _button("Apply to folder", self._ask_apply_to_folder)
        self.export_button = _button("Export prediction", self._ask_export_prediction)
        model_row = Container(layout="horizontal", labels=False, widgets=[
            self.save_button, self.load_button, self.export_button])
        apply_row = Container(layout="horizontal", labels=False, widgets=[
            self.continue_button, self.apply_button, self.folder_button])

        layout = QVBoxLayout(self)
        for w in (form.native, controls.native, apply_row.native, self.progress, self.status, self.iou_table,
                  self.tabs, model_row.native):
            layout.addWidget(w)
        layout.addStretch(1)

    def _layer_choices(self, kind) -> list:
        """(name, layer) of the viewer's layers of ``kind``, top of the layer list first, outputs excluded (a
        duplicate of one, which napari gives the output's metadata, is the user's: to correct and train on)."""
        return [(layer.name, layer) for layer in reversed(self.viewer.layers)
                if isinstance(layer, kind) and not (layer.metadata.get(OUTPUT_KEY) and layer.name in OUTPUT_NAMES)]

    def _image_choices(self, _widget=None) -> list:
        return self._layer_choices(napari.layers.Image)

    def _labels_choices(self, _widget=None) -> list:
        return self._layer_choices(napari.layers.Labels)

    def _reset_choices(self, _event=None) -> None:
        self.image.reset_choices()
        self.labels.reset_choices()

    def _budget_unit_changed(self, unit: str) -> None:
        """The number kept from the other unit would be far off (600 steps as minutes: 10 hours)."""
        self.budget.value = BUDGET_DEFAULTS[unit]

    def _take_class_names_from_layer(self, layer) -> None:
        names = layer.metadata.get("class_names") if layer is not None else None
        if names:
            self.class_names.value = ", ".join(names)

    # ---------- job plumbing
    def _set_busy(self, kind: str) -> None:
        """Enable the buttons that make sense while ``kind`` runs ("" = idle)."""
        self._job_kind = kind
        idle = not kind
        for button in (self.train_button, self.study_button, self.load_button, self.apply_button,
                       self.folder_button, self.save_button, self.export_button, self.continue_button):
            button.enabled = idle
        self.stop_button.enabled = not idle
        self.pause_button.enabled = kind == "training"
        self.resume_button.enabled = False

    def _start(self, kind: str, jobs: list, reports, render) -> None:
        """Run the generator ``reports`` in a thread_worker (or inline), passing each report to ``render``.

        While it runs, the garbage collector skips the objects that exist when it starts (``gc.freeze``, undone
        in ``_finished``): a napari window holds very many, and the job's allocations set off full collections
        that walk them all while holding every thread, 419 ms of frozen UI in a 40-step run on a
        2-core CPU (benchmarks/responsiveness.py --collector). What the job creates is still collected."""
        self._jobs[:] = jobs
        self._render_failed = False
        self._set_busy(kind)
        if self.freeze_collector:
            gc.freeze()
        if not self.run_in_thread:
            try:
                for report in _with_threads(reports, self.cpu_threads):
                    render(report)
            except Exception as err:  # noqa: BLE001 - shown to the user, widget recovers
                self._job_failed(err)
            self._finished()
            return

        self._render = self._rendering(render)
        self.worker = create_worker(_with_threads, reports, self.cpu_threads, _start_thread=False,
                                    _ignore_errors=True)
        self.worker.yielded.connect(self._rendered)
        self.worker.errored.connect(self._job_failed)
        self.worker.finished.connect(self._finished)
        self._worker_pause = _WorkerPause(self.worker)
        self._jobs.append(self._worker_pause)
        self.worker.start()

    def _rendered(self, report) -> None:
        """Pass a worker's report to the job's render function. Connected as a method of this widget, so
        that Qt drops the reports still queued when napari closes the dock (no rendering into deleted
        widgets)."""
        self._render(report)

    def _finished(self) -> None:
        gc.unfreeze()
        self._jobs.clear()
        self.worker = self._worker_pause = None
        if self.status.text() == "stopping ...":
            self._say(f"{self._job_kind} stopped")
        self._set_busy("")

    def _rendering(self, render):
        """``render`` as Qt calls it (a worker's signal, a throttle's timer): an error stops the job and is said
        once, not as a traceback at every report; e.g. a layer of yours renamed to an output layer's name
        while training runs, which the next evaluation must not overwrite."""

        @functools.wraps(render)
        def guarded(*args) -> None:
            if self._render_failed:
                return
            try:
                render(*args)
            except Exception as err:  # noqa: BLE001 - shown to the user, the job stops
                self._render_failed = True
                _stop_all(self._jobs)
                self._job_failed(err)

        return guarded

    def _job_failed(self, err: BaseException) -> None:
        """A running job's error: said like a button's, and in the study tab, which would else say "studying
        ..." for good."""
        self._fail(err)
        if self._job_kind == "study":
            self.verdict.setText(f"no verdict: the study failed ({self.last_error})")

    def _fail(self, err: BaseException) -> None:
        plain = isinstance(err, ValueError | MemoryError | OSError | JobFailed)
        message = str(err) if plain else f"{type(err).__name__}: {err}"
        if self._job_kind == "training" and self._replaced is not None:
            self.segmenters, self.segmenter = self._replaced
            self._replaced = None
            if self.segmenter is not None:
                message += "; the model trained before is kept"
        self.last_error = message
        self.status.setText(message)
        show_error(message)

    def _say(self, message: str) -> None:
        self.status.setText(message)

    def _show_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(round(100 * fraction)))
        self.progress.setFormat(f"%p%  {text}")

    @property
    def busy(self) -> bool:
        return bool(self._job_kind)

    def pause(self) -> None:
        """Pause the thread worker (see _WorkerPause); a job run inline holds the UI, nothing can pause it."""
        if self._worker_pause is not None:
            self._worker_pause.pause()
        self.pause_button.enabled, self.resume_button.enabled = False, True
        self._say("paused")

    def resume(self) -> None:
        if self._worker_pause is not None:
            self._worker_pause.resume()
        self.pause_button.enabled, self.resume_button.enabled = True, False
        self._say("training")

    def stop(self) -> None:
        _stop_all(self._jobs)
        self._say("stopping ...")

    # ---------- output layers
    def _check_output_names(self, *names: str) -> None:
        """Refuse when a layer of the user's has the name of an output layer: it would be overwritten."""
        for name in names:
            if name in self.viewer.layers and not self.viewer.layers[name].metadata.get(OUTPUT_KEY):
                raise ValueError(f"your layer '{name}' has the name of a layer this plugin writes its results "
                                 "to: rename it (the plugin never writes into your layers)")

    def _output_layer(self, name: str, data: np.ndarray, kind: str):
        """Set the data of the output layer ``name``, creating it once (never a pile of layers)."""
        self._check_output_names(name)
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        src = self._render_source
        where = {}
        if src is not None:
            where = {"scale": tuple(src.scale)[:data.ndim], "translate": tuple(src.translate)[:data.ndim]}
        if layer is not None and layer.data.ndim == data.ndim:
            layer.data = data
            for key, value in where.items():  # a source with another scale or offset than the last one's
                if not np.array_equal(getattr(layer, key), value):  # setting them redraws
                    setattr(layer, key, value)
            return layer
        if layer is not None:
            self.viewer.layers.remove(layer)
        active = self.viewer.layers.selection.active  # napari activates an added layer: the user paints on
        if kind == "labels":
            layer = self.viewer.add_labels(data, name=name, opacity=0.5, metadata={OUTPUT_KEY: True}, **where)
        else:
            layer = self.viewer.add_image(data, name=name, colormap="magma", opacity=0.6, visible=False,
                                          contrast_limits=(0.0, 1.0), metadata={OUTPUT_KEY: True}, **where)
        if active is not None:
            self.viewer.layers.selection.active = active
        return layer

    def _show_prediction(self, run: str, labels: np.ndarray, uncertain: np.ndarray, partial: bool = False) -> None:
        prediction_name, uncertainty_name = output_names(run)
        self._output_layer(prediction_name, labels, "labels")
        self._output_layer(uncertainty_name, uncertain, "image")
        self._mark_exported(run, partial)

    def _mark_exported(self, run: str, partial: bool) -> None:
        """Export writes the newest prediction of the model that Save uses."""
        if not run or self.segmenters.get(run) is self.segmenter:  # Apply, a normal run, teaching's relation
            self._exported, self._exported_partial = output_names(run)[0], partial

    def _prepare_outputs(self, run: str, shape: tuple) -> None:
        """Create missing output layers (empty) now: adding a layer costs the UI about 0.5 s, better spent
        when Train is pressed than in the middle of the user's panning and painting. Empty, they are partial:
        Export refuses them until a prediction fills them. A partial preview empties existing ones too: it is
        written into them in place (``_place_preview``), and what lay outside it came from another model."""
        if self._preview_planes is not None or any(name not in self.viewer.layers for name in output_names(run)):
            self._show_prediction(run, np.zeros(shape, np.uint8), np.zeros(shape, np.float32), partial=True)

    # ---------- training
    def _chosen_layers(self):
        image, labels = self.image.value, self.labels.value
        if image is None or labels is None:
            raise ValueError("choose an image layer and a labels layer to paint in (add them to the viewer)")
        return image, labels

    def _train_config(self) -> TrainConfig:
        steps = self.budget_unit.value == "steps"
        return TrainConfig(**{
            "loss": LOSSES[self.loss.value],
            "relation_weight": self.relation_weight.value,
            "steps": max(1, int(self.budget.value)) if steps else None,
            "minutes": None if steps else self.budget.value,
            "keep": "best" if self.keep_best.value else "last",
            "warp": self.warp.value,
            "ema": EMA_DECAY if self.average.value else 0.0,
            "smoothness": AUTO if self.spread.value else 0.0,
            "cpu_threads": self.cpu_threads,
            "first_eval_seconds": FIRST_EVAL_SECONDS,
            "eval_share": EVAL_SHARE,
            **self.train_settings,
        })

    def _run_configs(self) -> dict[str, TrainConfig]:
        """{run name: config}: one run, or teaching mode's cross-entropy baseline and pixel-relation run."""
        config = self._train_config()
        if not self.teaching.value:
            return {"": config}
        relation = config.loss if config.loss in ("intra", "inter") else "intra"
        return {TEACHING_BASELINE: replace(config, loss="none"),
                TEACHING_RELATION: replace(config, loss=relation)}

    def _snapshot(self):
        """Copies of the chosen image and labels, the class names and the (training, validation) planes cut
        from the labels' copy."""
        image_layer, labels_layer = self._chosen_layers()
        image, labels = np.array(full_resolution(image_layer)), np.array(full_resolution(labels_layer))
        names = parse_class_names(self.class_names.value)
        train_labels, val_labels = split_labels(labels, parse_validation(self.validation.value, labels))
        train = painted_planes(image, train_labels, len(names))
        val = painted_planes(image, val_labels, len(names))
        self._render_source = labels_layer
        return image, labels, names, train, val

    @user_action
    def train(self, _=None) -> None:
        """Train new models from scratch on a snapshot of the painted labels."""
        self._train(continue_from=False)

    @user_action
    def continue_training(self, _=None) -> None:
        """Go on training the current model(s) on the labels as painted now (new strokes included)."""
        if self.segmenter is None:
            raise ValueError("there is no model to continue: press Train (or load a model) first")
        self._train(continue_from=True)

    def _train(self, continue_from: bool) -> None:
        if self.busy:
            raise ValueError(f"{self._job_kind} is running: stop it first")
        image, labels, names, train, val = self._snapshot()
        in_view = self._plane_in_view(labels.shape)
        preview, self._preview_planes, self._preview_window = preview_of(image, labels, in_view)
        self._preview_shape = labels.shape
        runs = {}
        for run, config in self._run_configs().items():
            self._check_output_names(*output_names(run))
            start = self.segmenters.get(run, self.segmenter) if continue_from else None
            model = None if start else ModelConfig(n_classes=len(names), **self.model_settings)
            runs[run] = Trainer(train, config, model, val=val, class_names=names, preview=preview,
                                start_from=start, preview_window=self._preview_window)
        for run in runs:
            self._prepare_outputs(run, labels.shape)
        self._replaced = self.segmenters, self.segmenter
        self.segmenters = {run: trainer.segmenter for run, trainer in runs.items()}
        self.segmenter = self.segmenters.get(TEACHING_RELATION, self.segmenters.get(""))
        self._latest = {}
        self.training_plot.clear()
        empty = {header: None for run in runs for header in iou_columns(run, None, None)}
        self.iou_table.show_iou(empty, names)
        self._preview_note = "" if self._preview_planes is None else partial_preview_note(
            self._preview_planes, self._preview_window, in_view, labels)
        self._say(f"training on {len(train)} painted image(s), validating on {len(val)}{self._preview_note}")
        self._train_started = time.monotonic()
        self.first_prediction_after = None
        self._start("training", list(runs.values()), _alternate(runs), self._render_training)

    def _render_training(self, item) -> None:
        """Render one (run name, TrainReport): progress every step, layers and table throttled."""
        run, report = item
        self._replaced = None  # the new model has trained: it is the one to keep, even if training fails later
        self.training_plot.add(run, report)
        steps = f"step {report.step}/{report.max_steps}" if report.max_steps else f"step {report.step}"
        self._show_progress(report.progress, f"{steps}  {clock(report.elapsed)}")
        if report.prediction is not None:
            self._latest[run] = report
            if report.finished:
                self._layers_throttle.now()
            else:
                self._layers_throttle.request()
        self.training_plot.redraw(force=report.finished)
        if report.finished:
            self._say((report.message or f"training finished at step {report.step}") + self._preview_note)
        elif report.message:
            self._say(report.message + self._preview_note)

    def _show_latest(self) -> None:
        """Show the newest evaluated report of each run: prediction layers and the IoU table."""
        if not self._latest:
            return
        columns = {}
        for run, report in self._latest.items():
            p = report.prediction
            if self._preview_planes is None:
                self._show_prediction(run, p.labels, uncertainty(p.probabilities))
            else:
                for name, kind, preview in zip(output_names(run), ("labels", "image"),
                                               (p.labels, uncertainty(p.probabilities))):
                    self._place_preview(name, kind, preview)
                self._mark_exported(run, partial=True)
            columns.update(iou_columns(run, report.val_iou, report.train_iou))
        self.iou_table.show_iou(columns, self.segmenter.class_names)
        if self.first_prediction_after is None:
            self.first_prediction_after = time.monotonic() - self._train_started

    def _plane_in_view(self, shape: tuple) -> int | None:
        """The index among the labels' planes of the slice the viewer shows (None for a single plane)."""
        lead = shape[:-2]
        if not lead:
            return None
        point = np.round(self._render_source.world_to_data(self.viewer.dims.point)[: len(lead)]).astype(int)
        return int(np.ravel_multi_index(tuple(np.clip(point, 0, np.array(lead) - 1)), lead))

    def _place_preview(self, name: str, kind: str, preview: np.ndarray) -> None:
        """Write a preview of the painted planes (or of their painted region) into the output layer ``name``,
        where those lie, and redraw it. Written in place: a new array of the labels' shape per evaluation held
        the UI thread longer (benchmarks/preview_render.py)."""
        self._check_output_names(name)
        data = self.viewer.layers[name].data if name in self.viewer.layers else None
        if not (isinstance(data, np.ndarray) and data.shape == self._preview_shape and data.dtype == preview.dtype
                and data.flags.c_contiguous and data.flags.writeable):  # removed, or not an array to write into
            self._output_layer(name, np.zeros(self._preview_shape, preview.dtype), kind)
        layer = self.viewer.layers[name]
        planes = layer.data.reshape((-1,) + self._preview_shape[-2:])  # a view: the array is C-contiguous
        planes[(self._preview_planes,) + (self._preview_window or ())] = preview.reshape((-1,) + preview.shape[-2:])
        layer.refresh()

    # ---------- label-efficiency study
    @user_action
    def run_study(self, _=None) -> None:
        """Train on 1, 2, ... of the painted images and score held-out ones, in the background."""
        if self.busy:
            raise ValueError(f"{self._job_kind} is running: stop it first")
        image_layer, labels_layer = self._chosen_layers()
        names = parse_class_names(self.class_names.value)
        planes = painted_planes(np.array(full_resolution(image_layer)), np.array(full_resolution(labels_layer)),
                                len(names))
        config = replace(self._train_config(), steps=self.study_steps.value, minutes=None)
        channels = planes[0].image.shape[-1] if planes else 1
        model = ModelConfig(n_classes=len(names), in_channels=channels, **self.model_settings)
        study = Study(planes, names, config, model, rotations=self.study_rotations.value,
                      threshold=self.study_threshold.value / 100)
        self.tabs.setCurrentIndex(1)
        n_runs = len(study.plan) * (len(planes) - 1)
        self.verdict.setText(f"studying {len(planes)} painted images: {n_runs} short training runs ...")
        self._start("study", [study], study.run(), self._render_study)

    def _render_study(self, report) -> None:
        run = min(report.run + 1, report.n_runs)
        self._show_progress(report.progress, f"run {run}/{report.n_runs}  {clock(report.elapsed)}")
        self.study_plot.show_result(report.result, force=report.finished)
        if report.finished:
            self.verdict.setText(report.result.sentence)
            self._say(report.message)

    # ---------- model file
    def _require_model(self) -> Segmenter:
        if self.segmenter is None:
            raise ValueError("there is no model yet: train one or load a model file")
        return self.segmenter

    @user_action
    def save_model(self, path) -> Path:
        path = modelfile.save_model(self._require_model(), path)
        self._say(f"model saved to {path}")
        return path

    @user_action
    def load_model(self, path) -> Segmenter:
        segmenter = modelfile.load_model(path)  # device auto: where training would run
        self.segmenter, self.segmenters = segmenter, {"": segmenter}
        self.class_names.value = ", ".join(segmenter.class_names)
        self._say(f"loaded {Path(path).name}: classes {', '.join(segmenter.class_names)}")
        return segmenter

    def _start_in(self, name: str = "") -> str:
        """Where a file dialog opens: the folder of the last file or folder chosen in this dock (a model saved
        beside the images is loaded from there, their labels exported there), before that the folder napari
        last opened files from (its open history, kept across sessions: where the user's data is), with
        ``name`` to offer."""
        return str(Path(self._last_folder or get_open_history()[0]) / name)

    def _chosen(self, path: str, is_folder: bool = False) -> str:
        """``path`` as a dialog returned it, remembered for the next dialog ("" when cancelled)."""
        if path:
            self._last_folder = str(Path(path) if is_folder else Path(path).parent)
        return path

    def _ask_save_model(self, _=None) -> None:
        path, _filter = QFileDialog.getSaveFileName(self, "Save model", self._start_in("model.pixrel"), MODEL_FILTER)
        if self._chosen(path):
            self.save_model(path)

    def _ask_load_model(self, _=None) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Load model", self._start_in(), MODEL_FILTER)
        if self._chosen(path):
            self.load_model(path)

    # ---------- applying the model
    @user_action
    def apply_to_image(self, _=None) -> None:
        """Predict every plane (all slices of a stack) of the chosen image layer, with progress and Stop."""
        segmenter = self._require_model()
        if self.image.value is None:
            raise ValueError("choose an image layer to apply the model to")
        layer = self.image.value
        data = full_resolution(layer)
        planes, lead = as_planes(data, n_channels=segmenter.config.in_channels, rgb=layer.rgb)
        self._check_output_names(*output_names(""))
        n, h, w = planes.shape[:3]
        labels = np.zeros((n, h, w), labels_dtype(segmenter.n_classes))
        uncertain = np.zeros((n, h, w), np.float32)
        shape = tuple(lead) + (h, w)
        flag = _StopFlag()
        self._render_source = layer

        done = [0]

        def show() -> None:
            self._show_prediction("", labels.reshape(shape), uncertain.reshape(shape), partial=done[0] < n)

        def predicted():
            for i, total, probs in iter_predict(segmenter, data, rgb=layer.rgb, should_stop=lambda: flag.stopped):
                yield i, total, class_labels(probs), uncertainty(probs)

        def render(item) -> None:
            i, total, plane_labels, plane_uncertainty = item
            labels[i], uncertain[i] = plane_labels, plane_uncertainty
            done[0] += 1
            self._show_progress((i + 1) / total, f"plane {i + 1}/{total}")
            if i + 1 == total:
                self._say(f"applied the model to {total} plane(s) of {layer.name}")
                throttle.now()
            else:
                throttle.request()

        throttle = Throttle(self._rendering(show), RENDER_INTERVAL, self)
        self._start("prediction", [flag], predicted(), render)

    @user_action
    def apply_to_folder(self, path, out_folder=None) -> None:
        """Write a label TIFF for every TIFF in ``path`` (into ``path/pixrel_labels`` by default)."""
        segmenter = self._require_model()
        folder.tif_files(path)  # refuse an empty folder before starting
        flag = _StopFlag()

        def render(item) -> None:
            done, total, written = item
            self._show_progress(done / total, f"image {done}/{total}")
            self._say(f"wrote {written}")

        reports = folder.predict_folder(segmenter, path, out_folder, should_stop=lambda: flag.stopped)
        self._start("folder prediction", [flag], reports, render)

    @user_action
    def export_prediction(self, path) -> Path:
        if self._exported not in self.viewer.layers:
            raise ValueError(f"there is no '{self._exported}' layer to export yet: train or apply a model first")
        if self._exported_partial:
            raise ValueError(f"'{self._exported}' covers some slices or a region only, or none (empty until "
                             "training's first evaluation, the live preview of a large image, a stopped Apply): "
                             "press Apply to image first")
        path = folder.write_tif(path, self.viewer.layers[self._exported].data)
        self._say(f"prediction written to {path}")
        return path

    @user_action
    def _ask_apply_to_folder(self, _=None) -> None:
        """The images' folder, then, only where its ``pixrel_labels`` cannot be written (a read-only share, a
        file of that name), a folder for the label files."""
        path = self._chosen(QFileDialog.getExistingDirectory(self, "Folder of .tif images to segment",
                                                             self._start_in()), is_folder=True)
        if not path:
            return
        folder.tif_files(path)  # an empty folder is refused before anything is made in it
        try:
            folder.output_folder(path)
            out = None
        except ValueError as err:
            out = QFileDialog.getExistingDirectory(self, f"Folder for the label files ({err})", self._start_in())
            if not out:
                return
        self.apply_to_folder(path, out)

    def _ask_export_prediction(self, _=None) -> None:
        path, _filter = QFileDialog.getSaveFileName(self, "Export prediction", self._start_in("prediction.tif"),
                                                    "TIFF (*.tif)")
        if self._chosen(path):
            self.export_prediction(path)
