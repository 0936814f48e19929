"""Shared fixtures (the synthetic sample, a tiny model trained on it for a few steps) and tiny inputs."""

import numpy as np
import pytest
import torch

from napari_pixrel.data import painted_planes
from napari_pixrel.model import ModelConfig
from napari_pixrel.sample_data import CLASS_NAMES, load_sample_data
from napari_pixrel.trainer import TrainConfig, Trainer

TINY = ModelConfig(n_classes=3, encoder="resnet18", embed_dim=4, decoder_channels=(64, 32, 16, 16, 8))


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny tensors gain nothing from a second CPU thread, and lose a lot when the cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


def scribbles(shape, painted=None) -> np.ndarray:
    """Labels with a stroke of class 1 and one of class 2 in every plane (or only the ``painted`` planes)."""
    labels = np.zeros(shape, np.uint8)
    planes = labels.reshape((-1,) + labels.shape[-2:])
    for i in range(len(planes)) if painted is None else painted:
        planes[i, :3, :4] = 1
        planes[i, -3:, -4:] = 2
    return labels


def noise(shape, dtype=np.float32, scale=1.0) -> np.ndarray:
    """A reproducible random image of ``dtype`` with values in [0, scale)."""
    return (np.random.default_rng(0).random(shape) * scale).astype(dtype)
