"""Scribbles must look like sparse, thin, class-balanced painted strokes."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_pixrel.sample_data import make_em_like
from napari_pixrel.scribbles import brush_width, make_scribbles


@pytest.fixture(scope="module")
def labels():
    return make_em_like(2, 128, seed=3)[1]


def test_deterministic_per_seed(labels):
    a = make_scribbles(labels, seed=1)
    assert np.array_equal(a, make_scribbles(labels, seed=1))
    assert not np.array_equal(a, make_scribbles(labels, seed=2))


def test_subset_of_labels_same_shape_and_dtype(labels):
    scribbles = make_scribbles(labels)
    assert scribbles.shape == labels.shape and scribbles.dtype == labels.dtype
    painted = scribbles > 0
    assert np.array_equal(scribbles[painted], labels[painted])


@pytest.mark.parametrize("fraction", [0.01, 0.02, 0.05])
def test_fraction_near_target(labels, fraction):
    for plane in make_scribbles(labels, fraction=fraction):
        assert fraction / 1.5 < (plane > 0).mean() < fraction * 1.5


def test_denser_painting_uses_a_wider_brush(labels):
    """Thin strokes cap out near 15% of a plane; a person painting a quarter of it uses a wider brush."""
    assert brush_width(0.02) == brush_width(0.1) == 3 < brush_width(0.25) < brush_width(0.5)
    for plane in make_scribbles(labels, fraction=0.25):
        assert 0.25 / 1.5 < (plane > 0).mean() < 0.25 * 1.5


def test_every_class_gets_a_balanced_share(labels):
    for lab, scr in zip(labels, make_scribbles(labels), strict=True):
        counts = [(scr == c).sum() for c in np.unique(lab)]
        assert min(counts) > 0
        assert max(counts) < 3 * min(counts)


def test_strokes_are_thin(labels):
    scribbles = make_scribbles(labels, fraction=0.05, width=3)
    for plane in scribbles:
        depth = ndi.distance_transform_edt(plane > 0)[plane > 0]
        assert (depth <= 3).mean() > 0.95


def test_unlabeled_input_and_tiny_class_respected():
    lab = np.zeros((64, 64), dtype=np.uint16)
    lab[5:60, 5:40] = 1
    lab[20:23, 45:50] = 7
    scribbles = make_scribbles(lab, fraction=0.02)
    assert scribbles.dtype == np.uint16
    assert not scribbles[lab == 0].any()
    assert (scribbles == 7).any() and (scribbles == 1).any()


def test_stack_planes_are_independent(labels):
    stack = make_scribbles(labels, seed=5)
    assert np.array_equal(stack[0], make_scribbles(labels[0], seed=5))
    with pytest.raises(ValueError):
        make_scribbles(labels[None])
