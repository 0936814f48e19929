"""The "auto" loss, schedule and smoothness: pixel relation with a cosine decay for scribbles trained without
the warp, cross-entropy otherwise; the smoothness loss wherever pixels are left unpainted, unless the painted
areas draw most of the boundaries between classes."""

from dataclasses import replace

import numpy as np
import pytest
from conftest import TINY

from napari_pixrel.data import Plane, painted_planes
from napari_pixrel.loss_choice import (
    SMOOTHNESS_CONTACTS,
    SMOOTHNESS_PAINTED,
    SMOOTHNESS_WEIGHT,
    SPARSE_PAINTED,
    choose_loss,
    class_contacts,
    painted_fraction,
)
from napari_pixrel.sample_data import CLASS_NAMES
from napari_pixrel.scribbles import make_patches, make_scribbles
from napari_pixrel.trainer import TrainConfig, Trainer

FAST = TrainConfig(steps=2, patch_size=64, eval_every=0)
NO_WARP = TrainConfig(steps=600, warp=False)


def plane(painted: int, size: int = 100) -> Plane:
    """``painted`` of 100 pixels painted with one class: no boundary between classes is drawn."""
    labels = np.zeros(size, np.uint8)
    labels[:painted] = 1
    return Plane(np.zeros((10, 10, 1), np.float32), labels.reshape(10, 10))


def sample_planes(sample, paint) -> list[Plane]:
    """The sample's images with ``paint(full masks)`` as labels."""
    images, labels, _ = sample
    return [Plane(im[..., None].astype(np.float32), lab) for im, lab in zip(images, paint(labels), strict=True)]


def test_painted_fraction_counts_labelled_pixels_over_all_planes():
    assert painted_fraction([plane(10), plane(30)]) == pytest.approx(0.2)
    assert painted_fraction([]) == 0.0


def test_without_the_warp_auto_picks_relation_with_cosine_below_the_threshold_and_ce_above():
    n_sparse = int(SPARSE_PAINTED * 100) - 1
    settings, sentence = choose_loss(NO_WARP, [plane(n_sparse)])
    assert settings == {"loss": "intra", "schedule": "cosine", "smoothness": SMOOTHNESS_WEIGHT}
    assert "pixel relation" in sentence and "600 steps" in sentence and f"{n_sparse}.0%" in sentence
    settings, sentence = choose_loss(NO_WARP, [plane(100)])
    assert settings == {"loss": "none", "schedule": "constant", "smoothness": 0.0} and "cross-entropy" in sentence
    assert "100%" in sentence and "cosine" not in sentence and "smoothness" not in sentence


def test_with_the_warp_auto_picks_ce_for_scribbles_too():
    assert TrainConfig().warp
    settings, sentence = choose_loss(TrainConfig(steps=600), [plane(2)])
    assert settings == {"loss": "none", "schedule": "constant", "smoothness": SMOOTHNESS_WEIGHT}
    assert "cross-entropy" in sentence and "warp" in sentence and "2.0%" in sentence
    assert f"auto smoothness {SMOOTHNESS_WEIGHT:g}" in sentence


@pytest.mark.parametrize("steps, minutes, words", [(None, 1.5, "over 1.5 minutes"),
                                                    (400, 2, "over 400 steps or 2 minutes, whichever ends first")])
def test_a_time_budget_decays_over_its_minutes(steps, minutes, words):
    settings, sentence = choose_loss(TrainConfig(steps=steps, minutes=minutes, warp=False, smoothness=0), [plane(2)])
    assert settings == {"loss": "intra", "schedule": "cosine"} and f"decayed to 0 {words} (cosine)" in sentence


@pytest.mark.parametrize("loss, schedule", [("none", "constant"), ("intra", "cosine"), ("inter", "cosine")])
def test_a_given_loss_is_kept_and_only_the_auto_schedule_follows_it(loss, schedule):
    assert choose_loss(TrainConfig(loss=loss, smoothness=0.5), [plane(3)]) == ({"schedule": schedule}, "")
    assert choose_loss(TrainConfig(loss=loss, schedule="constant", smoothness=0), [plane(3)]) == ({}, "")


@pytest.mark.parametrize("loss", ["none", "intra"])
@pytest.mark.parametrize("painted", [3, 50, int(SMOOTHNESS_PAINTED * 100) - 1])
def test_auto_smoothness_is_on_wherever_pixels_are_unpainted_whatever_the_loss_and_off_for_masks(loss, painted):
    cfg = TrainConfig(loss=loss, schedule="constant")
    settings, sentence = choose_loss(cfg, [plane(painted)])
    assert settings == {"smoothness": SMOOTHNESS_WEIGHT} and sentence.startswith("auto smoothness")
    assert "unpainted pixels" in sentence
    assert choose_loss(cfg, [plane(int(SMOOTHNESS_PAINTED * 100))]) == ({"smoothness": 0.0}, "")
    assert choose_loss(cfg, [plane(100)]) == ({"smoothness": 0.0}, "")


def test_class_contacts_measure_how_much_of_the_class_boundaries_the_labels_draw(sample):
    full = class_contacts(sample_planes(sample, lambda m: m))
    strokes = class_contacts(sample_planes(sample, lambda m: make_scribbles(m, 0.02, seed=0)))
    squares = class_contacts(sample_planes(sample, lambda m: make_patches(m, 0.5, seed=0, size=64)))
    assert full == 1.0 and strokes < 0.05 and 0.85 < squares < 1.0
    assert class_contacts([plane(50)]) == 0.0 and class_contacts([plane(0)]) == 0.0
    two = np.zeros((10, 10), np.uint8)
    two[:, :5], two[:, 5] = 1, 2  # 10 sides 1|2 both ways = 20; class 2's other side faces 10 unpainted pixels
    assert class_contacts([Plane(np.zeros((10, 10, 1), np.float32), two)]) == pytest.approx(20 / 30)


def test_auto_smoothness_is_off_where_the_painted_areas_draw_the_class_boundaries(sample):
    cfg = TrainConfig(loss="none", schedule="constant")
    squares = sample_planes(sample, lambda m: make_patches(m, 0.5, seed=0, size=64))
    assert painted_fraction(squares) < SMOOTHNESS_PAINTED and class_contacts(squares) >= SMOOTHNESS_CONTACTS
    settings, sentence = choose_loss(cfg, squares)
    assert settings == {"smoothness": 0.0} and sentence.startswith("auto smoothness off")
    assert "boundaries between classes" in sentence and f"{class_contacts(squares):.0%}" in sentence
    strokes = sample_planes(sample, lambda m: make_scribbles(m, 0.5, seed=0))
    assert choose_loss(cfg, strokes)[0] == {"smoothness": SMOOTHNESS_WEIGHT}


def test_half_painted_trains_ce_with_the_smoothness_loss():
    settings, sentence = choose_loss(NO_WARP, [plane(50)])
    assert settings == {"loss": "none", "schedule": "constant", "smoothness": SMOOTHNESS_WEIGHT}
    assert "cross-entropy (50.0% of the training pixels" in sentence and "(50.0% painted)" in sentence


def test_auto_is_the_default_and_validates():
    assert TrainConfig().loss == "auto"
    assert TrainConfig().schedule == "auto" and TrainConfig().smoothness == "auto"
    with pytest.raises(ValueError, match="smoothness"):
        TrainConfig(smoothness="on")
    with pytest.raises(ValueError, match="loss mode"):
        TrainConfig(loss="automatic")
    with pytest.raises(ValueError, match="schedule is"):
        TrainConfig(schedule="linear")


@pytest.mark.parametrize("kind, warp, mode, schedule", [(1, False, "none", "constant"), (2, False, "intra", "cosine"),
                                                         (2, True, "none", "constant")])
def test_trainer_resolves_auto_from_the_painted_labels_and_the_warp(sample, kind, warp, mode, schedule):
    images, arrays = sample[0], sample[kind]
    planes = [p for i in (0, 1) for p in painted_planes(images[i], arrays[i])]
    trainer = Trainer(planes, replace(FAST, warp=warp), model=TINY, class_names=list(CLASS_NAMES))
    assert (trainer.config.loss, trainer.config.schedule) == (mode, schedule)
    assert trainer.config.smoothness == (SMOOTHNESS_WEIGHT if kind == 2 else 0.0)
    reports = list(trainer.run())
    assert reports[0].message == trainer.auto_choices and not reports[1].message
    assert (reports[-1].relation > 0) == (mode == "intra")
    recorded = trainer.segmenter.training["config"]  # the model file says what was trained
    assert (recorded["loss"], recorded["schedule"]) == (mode, schedule)
    assert recorded["smoothness"] == trainer.config.smoothness


def test_auto_is_resolved_per_run_so_continuing_on_masks_switches_to_ce(sample):
    images, labels, scribbles = sample
    sparse = painted_planes(images[0], scribbles[0])
    first = Trainer(sparse, replace(FAST, warp=False), model=TINY, class_names=list(CLASS_NAMES))
    list(first.run())
    dense = painted_planes(images[0], labels[0])
    again = Trainer(dense, replace(FAST, loss="auto", warp=False), start_from=first.segmenter)
    assert (first.config.loss, again.config.loss) == ("intra", "none")
