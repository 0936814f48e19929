"""Scribbles must look like sparse, thin, class-balanced painted strokes; patches like fully painted squares."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_pixrel.sample_data import make_em_like
from napari_pixrel.scribbles import brush_width, make_patches, make_scribbles


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


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.75])
def test_patches_paint_whole_grid_squares_up_to_the_fraction(fraction):
    labels = make_em_like(2, 256, seed=3)[1]
    patches = make_patches(labels, fraction, seed=4, size=32)
    assert patches.shape == labels.shape and patches.dtype == labels.dtype
    for lab, plane in zip(labels, patches, strict=True):
        painted = plane > 0
        assert abs(painted.mean() - fraction) <= 0.5 * 32 * 32 / plane.size
        np.testing.assert_array_equal(plane[painted], lab[painted])
        squares = painted.reshape(8, 32, 8, 32).transpose(0, 2, 1, 3).reshape(64, -1)
        assert set(squares.mean(1)) <= {0.0, 1.0}  # each grid square all painted or all blank
    assert np.array_equal(patches, make_patches(labels, fraction, seed=4, size=32))
    assert not np.array_equal(patches, make_patches(labels, fraction, seed=5, size=32))
    assert np.array_equal(patches[0], make_patches(labels[0], fraction, seed=4, size=32))


def test_patches_paint_at_least_one_square_of_an_uneven_plane():
    plane = make_patches(np.ones((50, 70), np.uint8), 0.001, size=64)
    assert plane.any() and plane.sum() <= 50 * 64
