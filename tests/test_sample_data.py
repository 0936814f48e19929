"""The synthetic EM-like set must be deterministic, plausible and shipped small."""

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_pixrel import sample_data
from napari_pixrel.sample_data import (
    CLASS_NAMES,
    load_sample_data,
    make_em_like,
    write_sample_data,
)

SHIPPED = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.fixture(scope="module")
def data():
    return make_em_like(2, 256, seed=0)


def test_shapes_dtypes_and_classes(data):
    images, labels = data
    assert CLASS_NAMES == ("background", "membrane", "mitochondria")
    assert images.shape == labels.shape == (2, 256, 256)
    assert images.dtype == labels.dtype == np.uint8
    for plane in labels:
        assert set(np.unique(plane)) == {1, 2, 3}


def test_deterministic_per_seed(data):
    images, labels = make_em_like(2, 256, seed=0)
    assert np.array_equal(images, data[0]) and np.array_equal(labels, data[1])
    other = make_em_like(2, 256, seed=1)
    assert not np.array_equal(other[0], images)
    assert not np.array_equal(other[1], labels)


def test_class_fractions_plausible(data):
    for plane in data[1]:
        assert 0.12 < (plane == 2).mean() < 0.24
        assert 0.03 < (plane == 3).mean() < 0.08


def test_membranes_are_thin(data):
    for plane in data[1]:
        depth = ndi.distance_transform_edt(plane == 2)
        assert np.percentile(depth[plane == 2], 99) <= 3


def test_image_is_noisy_and_threshold_does_not_separate(data):
    images, labels = data
    membrane, mito, cytoplasm = (images[labels == c].astype(float) for c in (2, 3, 1))
    assert membrane.mean() < cytoplasm.mean() - 40 and mito.mean() < cytoplasm.mean() - 40
    assert abs(membrane.mean() - mito.mean()) < 20
    assert cytoplasm.std() > 15


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    assert set(write_sample_data(folder)) == {"images", "labels", "scribbles"}
    return folder


def test_write_and_load_roundtrip(written):
    images, labels, scribbles = load_sample_data(written)
    assert images.shape == labels.shape == scribbles.shape == (6, 256, 256)
    assert np.array_equal(labels[:2], make_em_like(2, 256, seed=0)[1])
    painted = scribbles > 0
    assert np.array_equal(scribbles[painted], labels[painted])


def test_fallback_generates_the_shipped_set(written, monkeypatch):
    monkeypatch.setattr(sample_data, "DEFAULT_FOLDER", written / "missing")
    for generated, stored in zip(load_sample_data(), load_sample_data(written), strict=True):
        assert np.array_equal(generated, stored)


def test_shipped_files_load_and_are_small():
    files = [SHIPPED / f"{name}.tif" for name in ("images", "labels", "scribbles")]
    if not all(f.exists() for f in files):
        pytest.skip("sample_data/ not generated")
    assert sum(f.stat().st_size for f in files) < 2_000_000
    images, labels, scribbles = load_sample_data()
    assert images.shape == labels.shape == scribbles.shape == (6, 256, 256)
    assert images.dtype == labels.dtype == scribbles.dtype == np.uint8
    assert 0.013 < (scribbles > 0).mean() < 0.03
