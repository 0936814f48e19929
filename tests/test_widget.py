"""The trainer dock in a real (headless) napari viewer, with tiny training budgets.

Run under Xvfb (see the Makefile): napari needs an OpenGL context to add layers.
"""

import numpy as np
import pytest
import tifffile
import torch
from napari._qt.qthreading import wait_for_workers_to_quit
from qtpy.QtCore import QThreadPool

from napari_pixrel._sample_data import few_shot_sample
from napari_pixrel._widget import (
    EVAL_SHARE,
    FIRST_EVAL_SECONDS,
    LOSSES,
    OUTPUT_KEY,
    PREDICTION,
    UNCERTAINTY,
    PixrelWidget,
    clock,
    output_names,
    parse_validation,
)
from napari_pixrel.decoder_choice import choose_decoder
from napari_pixrel.loss_choice import SMOOTHNESS_WEIGHT
from napari_pixrel.model import AUTO_DECODER, ModelConfig, PixRelNet
from napari_pixrel.trainer import EMA_DECAY, TrainConfig, native_bf16

TINY_NET = {"decoder_channels": (32, 16, 16, 8, 8)}
# evaluations at fixed steps, whatever the machine's load: the dock's own spacing by time (first_eval_seconds,
# eval_share) is the trainer's, tested in test_trainer.py
TINY_TRAINING = {"patch_size": 64, "batch_size": 2, "eval_every": 3, "mixed_precision": False,
                 "first_eval_seconds": 0.0, "eval_share": 0.0}
N_IMAGES = 4


@pytest.fixture
def viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    for data, kwargs, kind in few_shot_sample():
        getattr(viewer, f"add_{kind}")(data[:N_IMAGES], **kwargs)
    return viewer


@pytest.fixture
def widget(viewer) -> PixrelWidget:
    """The dock, found through the plugin manifest, set to the scribbles and a tiny budget."""
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-pixrel", "pixrel: few-shot trainer")
    assert isinstance(widget, PixrelWidget)
    widget.model_settings = TINY_NET
    widget.train_settings = TINY_TRAINING
    widget.labels.value = viewer.layers["scribbles"]
    widget.budget.value = 6
    return widget


def steps_done(widget) -> int:
    return len(widget.training_plot.series.get("", {}).get("step", []))


def user_layers(viewer):
    """Copies of the layers the user owns (everything but the dock's outputs)."""
    return {layer.name: np.array(layer.data) for layer in viewer.layers if not layer.metadata.get(OUTPUT_KEY)}


def test_widget_offers_layers_and_class_names_from_the_sample(widget, viewer):
    assert widget.image.value is viewer.layers["pixrel sample"]
    assert [layer.name for layer in widget.labels.choices] == ["scribbles", "ground truth"]
    assert widget.class_names.value == "background, membrane, mitochondria"


def test_training_in_background_updates_one_prediction_layer_and_the_iou_table(widget, viewer, qtbot):
    before = user_layers(viewer)
    for _ in range(2):  # a second run reuses the same output layers
        widget.train_button.native.click()
        assert widget.busy
        qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    assert widget.last_error == ""
    names = [layer.name for layer in viewer.layers]
    assert names.count(PREDICTION) == 1 and names.count(UNCERTAINTY) == 1
    prediction = viewer.layers[PREDICTION].data
    assert prediction.shape == viewer.layers["scribbles"].data.shape
    assert set(np.unique(prediction)) <= {1, 2, 3}
    uncertain = viewer.layers[UNCERTAINTY].data
    assert uncertain.shape == prediction.shape and 0 <= uncertain.min() and uncertain.max() <= 1
    table = widget.iou_table.values()
    assert list(table) == ["validation", "painted (train)"]
    assert list(table["validation"]) == ["background", "membrane", "mitochondria", "mIoU"]
    assert table["painted (train)"]["mIoU"] != "-"
    assert widget.progress.value() == 100 and widget.training_plot.series[""]["step"][-1] == 6
    assert widget.first_prediction_after is not None
    after = user_layers(viewer)
    assert list(after) == list(before) == ["pixrel sample", "ground truth", "scribbles"]
    for name, data in after.items():
        np.testing.assert_array_equal(data, before[name])


def test_pause_resume_stop(widget, qtbot):
    widget.budget.value = 10_000
    widget.train_settings = {**TINY_TRAINING, "eval_every": 0}
    widget.train()
    qtbot.waitUntil(lambda: steps_done(widget) >= 2, timeout=60_000)
    with qtbot.waitSignal(widget.worker.paused, timeout=30_000):  # once the step in flight has landed
        widget.pause_button.native.click()
    assert widget.resume_button.enabled and not widget.pause_button.enabled
    paused_at = steps_done(widget)  # the reports before the pause came before its signal (one queue)
    qtbot.wait(700)
    assert steps_done(widget) == paused_at
    widget.resume_button.native.click()
    qtbot.waitUntil(lambda: steps_done(widget) > paused_at + 1, timeout=30_000)
    widget.pause_button.native.click()
    qtbot.wait(300)
    widget.stop_button.native.click()  # while paused
    qtbot.waitUntil(lambda: not widget.busy, timeout=30_000)
    assert widget.train_button.enabled and not widget.stop_button.enabled
    assert widget.segmenter is not None and PREDICTION in widget.viewer.layers  # the final report is shown


def test_resume_or_stop_before_the_pause_takes_effect(widget, qtbot):
    """A pause waits for the step in flight: a Resume or Stop pressed meanwhile must not leave it paused."""
    widget.budget.value = 10_000
    widget.train()
    qtbot.waitUntil(lambda: steps_done(widget) >= 1, timeout=60_000)
    widget.pause()
    widget.resume()
    resumed_at = steps_done(widget)
    qtbot.waitUntil(lambda: steps_done(widget) > resumed_at + 2, timeout=30_000)
    widget.pause()
    widget.stop()
    qtbot.waitUntil(lambda: not widget.busy, timeout=30_000)


def test_napari_quits_a_paused_training_on_exit(widget, qtbot):
    """On exit napari asks its workers to quit and waits with no time limit: a paused training must end."""
    widget.budget.value = 10_000
    widget.train()
    qtbot.waitUntil(lambda: steps_done(widget) >= 1, timeout=60_000)
    with qtbot.waitSignal(widget.worker.paused, timeout=30_000):  # the step in flight ends: the worker waits
        widget.pause()
    wait_for_workers_to_quit(10_000)
    qtbot.waitUntil(lambda: not widget.busy, timeout=10_000)


def test_stop_while_paused_and_closing_the_viewer_end_the_thread(widget, viewer, qtbot):
    widget.budget.value = 10_000
    widget.train()
    qtbot.waitUntil(lambda: steps_done(widget) >= 1, timeout=60_000)
    widget.pause()
    viewer.close()
    assert QThreadPool.globalInstance().waitForDone(30_000)


def test_budget_unit_switches_to_its_own_default(widget):
    widget.train_settings = {}
    assert (widget._train_config().first_eval_seconds, widget._train_config().eval_share) == (
        FIRST_EVAL_SECONDS, EVAL_SHARE) and EVAL_SHARE > 0
    widget.budget_unit.value = "minutes"
    assert widget.budget.value == 5 and widget._train_config().minutes == 5
    widget.budget_unit.value = "steps"
    assert widget.budget.value == 600 and widget._train_config().steps == 600


def test_a_pyramid_image_trains_and_applies_at_full_resolution(widget, viewer):
    stack = viewer.layers["pixrel sample"].data
    viewer.add_image([stack, stack[:, ::2, ::2]], multiscale=True, name="pyramid")
    widget.image.value = viewer.layers["pyramid"]
    widget.run_in_thread = False
    widget.train()
    assert widget.last_error == ""
    widget.apply_to_image()
    assert widget.last_error == ""
    assert viewer.layers[PREDICTION].data.shape == stack.shape and (viewer.layers[PREDICTION].data >= 1).all()


def test_export_refuses_the_empty_prediction_of_a_training_that_failed_at_once(widget, viewer, tmp_path,
                                                                               monkeypatch):
    def broken(self, x):
        raise RuntimeError("broken network")

    monkeypatch.setattr(PixRelNet, "forward", broken)
    widget.run_in_thread = False
    widget.train()
    assert "broken network" in widget.last_error
    assert PREDICTION in viewer.layers  # created empty when Train was pressed
    widget.export_prediction(tmp_path / "prediction.tif")
    assert "covers some slices or a region only, or none" in widget.last_error
    assert not (tmp_path / "prediction.tif").exists()


def test_errors_become_messages_and_the_widget_recovers(widget, viewer):
    viewer.add_labels(np.zeros_like(viewer.layers["scribbles"].data), name="empty")
    widget.labels.value = viewer.layers["empty"]
    widget.run_in_thread = False
    widget.train()
    assert "nothing is painted" in widget.last_error and not widget.busy
    widget.labels.value = viewer.layers["scribbles"]
    widget.validation.value = "0, 1, 2, 3"
    widget.train()
    assert "leave at least one for training" in widget.last_error
    widget.continue_training()
    assert "no model to continue" in widget.last_error
    assert widget.train_button.enabled


def test_validation_slices_of_a_time_series_of_stacks_are_named_t_colon_z():
    labels = np.zeros((3, 4, 8, 8), np.uint8)  # T, Z, Y, X
    labels[0, 1, 2, 2] = labels[2, 3, 2, 2] = labels[1, 0, 4, 4] = 1
    assert parse_validation("2:3", labels) == [11]
    assert parse_validation("2:3, 1:0", labels) == [4, 11] == parse_validation("11 4", labels)
    assert parse_validation("last", labels) == [11]
    with pytest.raises(ValueError, match=r"2 slider\(s\) of 3 x 4"):
        parse_validation("3:0", labels)
    with pytest.raises(ValueError, match=r"slice\(s\) 0:2 have nothing painted; painted slices: 0:1, 1:0, 2:3"):
        parse_validation("0:2", labels)
    with pytest.raises(ValueError, match="'two': give slice numbers such as '4, 5' \\(or '2:5' for t:z\\)"):
        parse_validation("two", labels)
    with pytest.raises(ValueError, match=r"slice\(s\) -1, 99 have nothing painted"):
        parse_validation("99, -1", labels)
    assert parse_validation(" 2 : 3 ", labels) == [11]
    with pytest.raises(ValueError, match=r"slice\(s\) 5 have nothing painted; painted slices: 1$"):
        parse_validation("5", labels[:1])  # napari shows no slider for an axis of length 1
    with pytest.raises(ValueError, match="'0:1': the labels have no slider"):
        parse_validation("0:1", labels[0, 0])


def test_continue_training_and_teaching_mode(widget, viewer, tmp_path):
    widget.run_in_thread = False
    widget.teaching.value = True
    widget.train()
    assert widget.last_error == ""
    for run in ("cross-entropy", "pixel relation"):
        assert output_names(run)[0] in viewer.layers
    exported = widget.export_prediction(tmp_path / "prediction.tif")  # the model Save and Apply use
    np.testing.assert_array_equal(tifffile.imread(exported), viewer.layers[output_names("pixel relation")[0]].data)
    assert len(widget.iou_table.values()) == 4
    first = widget.segmenters["pixel relation"]
    widget.continue_training()
    assert widget.segmenters["pixel relation"] is not first
    assert widget.segmenters["pixel relation"].training["history"][-1]["step"] == 12


def test_keep_best_shows_the_kept_weights_and_stars_them_on_the_curve(widget, viewer):
    widget.run_in_thread = False
    widget.budget.value = 12
    assert widget.keep_best.value and widget._train_config().keep == "best"
    # a jumpy validation score; whether a 12-step run's last evaluation is its best depends on the seed
    for seed in range(5):
        widget.train_settings = {**TINY_TRAINING, "eval_every": 2, "lr": 0.05, "warp": False, "seed": seed}
        widget.train()
        assert widget.last_error == ""
        if "kept" in widget.segmenter.training:
            break
    else:
        pytest.fail("in 5 seeds the last evaluation was always the best: nothing to keep")
    history = widget.segmenter.training["history"]
    kept = widget.segmenter.training["kept"]
    assert kept["val_iou"]["mIoU"] == max(h["val_iou"]["mIoU"] for h in history) > history[-1]["val_iou"]["mIoU"]
    assert widget.training_plot.series[""]["kept"] == [(kept["step"], kept["val_iou"]["mIoU"])]
    assert f"kept the weights of step {kept['step']}" in widget.status.text()
    shown = widget.iou_table.values()["validation"]["mIoU"]
    assert shown == f"{100 * kept['val_iou']['mIoU']:.1f}"
    widget.keep_best.value = False
    assert widget._train_config().keep == "last"


@pytest.mark.parametrize("checkbox, key, toggled", [("warp", "warp", not TrainConfig.warp),
                                                     ("average", "ema", 0.0 if TrainConfig.ema else EMA_DECAY),
                                                     ("spread", "smoothness", 0.0)])
def test_training_checkboxes_reach_the_trainer_and_the_model_file(widget, checkbox, key, toggled):
    widget.run_in_thread = False
    widget.train_settings = TINY_TRAINING
    widget.budget.value = 2
    getattr(widget, checkbox).value = not getattr(widget, checkbox).value
    widget.train()
    assert widget.last_error == ""
    assert widget.segmenter.training["config"][key] == toggled


def test_study_gives_curve_and_verdict(widget):
    widget.run_in_thread = False
    widget.labels.value = widget.viewer.layers["ground truth"]
    widget.study_steps.value = 2
    widget.study_rotations.value = 1
    widget.run_study()
    assert widget.last_error == ""
    result = widget.study_plot.result
    assert [p.n_train for p in result.points] == [1, 2, 3]
    assert result.verdict in ("flattened", "still climbing")
    assert widget.verdict.text() == result.sentence


def test_save_load_apply_to_stack_folder_and_export(widget, viewer, tmp_path, qtbot):
    widget.run_in_thread = False
    widget.train()
    widget.apply_to_image()
    first = np.array(viewer.layers[PREDICTION].data)
    assert first.shape == viewer.layers["pixrel sample"].data.shape
    assert (first >= 1).all()  # every slice of the stack is filled
    widget.save_model(tmp_path / "model.pixrel")
    widget.load_model(tmp_path / "model.pixrel")
    viewer.layers.remove(PREDICTION)
    widget.run_in_thread = True
    widget.apply_to_image()
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    np.testing.assert_array_equal(viewer.layers[PREDICTION].data, first)

    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        tifffile.imwrite(images / f"im{i}.tif", viewer.layers["pixrel sample"].data[i])
    widget.run_in_thread = False
    widget.apply_to_folder(images)
    written = sorted((images / "pixrel_labels").glob("*.tif"))
    assert [p.name for p in written] == ["im0_labels.tif", "im1_labels.tif"]
    np.testing.assert_array_equal(tifffile.imread(written[1]), first[1])
    exported = widget.export_prediction(tmp_path / "prediction.tif")
    np.testing.assert_array_equal(tifffile.imread(exported), first)


def test_default_loss_is_auto_relation_for_scribbles_without_the_warp_and_ce_otherwise(widget, viewer):
    assert LOSSES[widget.loss.value] == "auto"
    widget.run_in_thread = False
    widget.budget.value = 2
    trained = {}
    for layer, warp in (("scribbles", False), ("scribbles", True), ("ground truth", False)):
        widget.labels.value = viewer.layers[layer]
        widget.warp.value = warp
        widget.train()
        assert widget.last_error == ""
        trained[layer, warp] = widget.segmenter.training["config"]
    assert (trained["scribbles", False]["loss"], trained["scribbles", False]["schedule"]) == ("intra", "cosine")
    assert (trained["scribbles", True]["loss"], trained["scribbles", True]["schedule"]) == ("none", "constant")
    assert (trained["ground truth", False]["loss"], trained["ground truth", False]["schedule"]) == ("none", "constant")
    assert trained["scribbles", False]["relation_weight"] == widget.relation_weight.value == TrainConfig.relation_weight
    assert trained["scribbles", True]["smoothness"] == SMOOTHNESS_WEIGHT == trained["scribbles", False]["smoothness"]
    assert trained["ground truth", False]["smoothness"] == 0.0


def test_the_docks_own_network_has_the_decoder_chosen_for_this_cpu_and_says_so(viewer, monkeypatch):
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-pixrel", "pixrel: few-shot trainer")
    said = []
    monkeypatch.setattr(widget, "_say", lambda message: said.append(message) or widget.status.setText(message))
    widget.run_in_thread = False
    widget.train_settings = {**TINY_TRAINING, "device": "cpu"}
    widget.labels.value = viewer.layers["scribbles"]
    widget.budget.value = 1
    widget.train()
    assert widget.last_error == ""
    emulated = not native_bf16(torch.device("cpu"))
    chosen, sentence = choose_decoder(ModelConfig(n_classes=3, decoder_channels=AUTO_DECODER), emulated)
    assert widget.segmenter.config.decoder_channels == chosen.decoder_channels
    assert any("auto decoder: light" in s for s in said) == emulated and any(sentence in s for s in said)


def test_the_status_clock_counts_past_an_hour():
    assert [clock(t) for t in (0, 245.9, 3599, 3723)] == ["00:00", "04:05", "59:59", "1:02:03"]
