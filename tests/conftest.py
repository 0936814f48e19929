"""Shared fixtures: the synthetic sample and a tiny model trained on it for a few steps."""

import pytest

from napari_pixrel.data import painted_planes
from napari_pixrel.model import ModelConfig
from napari_pixrel.sample_data import CLASS_NAMES, load_sample_data
from napari_pixrel.trainer import TrainConfig, Trainer

TINY = ModelConfig(n_classes=3, encoder="resnet18", embed_dim=4, decoder_channels=(64, 32, 16, 16, 8))


@pytest.fixture(scope="session")
def sample():
    return load_sample_data()


@pytest.fixture(scope="session")
def tiny_segmenter(sample):
    images, labels, _ = sample
    planes = [p for i in range(2) for p in painted_planes(images[i], labels[i])]
    trainer = Trainer(planes, TrainConfig(steps=4, patch_size=64, eval_every=0), model=TINY,
                      class_names=list(CLASS_NAMES))
    for _ in trainer.run():
        pass
    return trainer.segmenter
