"""The "auto" loss: pixel relation for sparse scribbles, cross-entropy for full masks."""

from dataclasses import replace

import numpy as np
import pytest
from conftest import TINY

from napari_pixrel.data import Plane, painted_planes
from napari_pixrel.loss_choice import SPARSE_PAINTED, choose_loss, painted_fraction
from napari_pixrel.sample_data import CLASS_NAMES
from napari_pixrel.trainer import TrainConfig, Trainer

FAST = TrainConfig(steps=2, patch_size=64, eval_every=0)


def plane(painted: int, size: int = 100) -> Plane:
    labels = np.zeros(size, np.uint8)
    labels[:painted] = 1 + np.arange(painted) % 2
    return Plane(np.zeros((10, 10, 1), np.float32), labels.reshape(10, 10))


def test_painted_fraction_counts_labelled_pixels_over_all_planes():
    assert painted_fraction([plane(10), plane(30)]) == pytest.approx(0.2)
    assert painted_fraction([]) == 0.0


def test_auto_picks_relation_below_the_threshold_and_ce_above():
    n_sparse = int(SPARSE_PAINTED * 100) - 1
    loss, sentence = choose_loss("auto", [plane(n_sparse)])
    assert loss == "intra" and "pixel relation" in sentence and f"{n_sparse}.0%" in sentence
    loss, sentence = choose_loss("auto", [plane(100)])
    assert loss == "none" and "cross-entropy" in sentence and "100%" in sentence


@pytest.mark.parametrize("loss", ["none", "intra", "inter"])
def test_an_explicit_loss_is_kept(loss):
    assert choose_loss(loss, [plane(3)]) == (loss, "")


def test_auto_is_the_default_and_validates():
    assert TrainConfig().loss == "auto"
    with pytest.raises(ValueError, match="loss mode"):
        TrainConfig(loss="automatic")


@pytest.mark.parametrize("kind, mode", [(1, "none"), (2, "intra")])
def test_trainer_resolves_auto_from_the_painted_labels(sample, kind, mode):
    images, arrays = sample[0], sample[kind]
    planes = [p for i in (0, 1) for p in painted_planes(images[i], arrays[i])]
    trainer = Trainer(planes, FAST, model=TINY, class_names=list(CLASS_NAMES))
    assert trainer.config.loss == mode
    reports = list(trainer.run())
    assert reports[0].message == trainer.loss_choice and not reports[1].message
    assert (reports[-1].relation > 0) == (mode == "intra")
    assert trainer.segmenter.training["config"]["loss"] == mode  # the model file says what was trained


def test_auto_is_resolved_per_run_so_continuing_on_masks_switches_to_ce(sample):
    images, labels, scribbles = sample
    sparse = painted_planes(images[0], scribbles[0])
    first = Trainer(sparse, FAST, model=TINY, class_names=list(CLASS_NAMES))
    list(first.run())
    dense = painted_planes(images[0], labels[0])
    again = Trainer(dense, replace(FAST, loss="auto"), start_from=first.segmenter)
    assert (first.config.loss, again.config.loss) == ("intra", "none")
