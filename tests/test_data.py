"""Arrays -> planes, label checks, normalisation and patch sampling."""

import numpy as np
import pytest

from napari_pixrel.data import (
    Normalizer,
    PatchSampler,
    Plane,
    as_planes,
    check_labels,
    painted_box,
    painted_planes,
    same_pixels,
)


def test_layouts_are_found_from_the_labels_shape():
    assert as_planes(np.zeros((30, 40)), labels_shape=(30, 40))[0].shape == (1, 30, 40, 1)
    assert as_planes(np.zeros((30, 40, 3)), labels_shape=(30, 40))[0].shape == (1, 30, 40, 3)
    planes, lead = as_planes(np.zeros((5, 30, 40)), labels_shape=(5, 30, 40))
    assert planes.shape == (5, 30, 40, 1) and lead == (5,)
    planes, lead = as_planes(np.zeros((2, 5, 30, 40, 2)), labels_shape=(2, 5, 30, 40))
    assert planes.shape == (10, 30, 40, 2) and lead == (2, 5)
    with pytest.raises(ValueError, match="does not match"):
        as_planes(np.zeros((30, 40)), labels_shape=(30, 41))


def test_painted_box_holds_every_painted_pixel_of_every_plane_grown_within_the_image():
    labels = np.zeros((2, 100, 300), np.uint8)
    labels[0, 10:12, 250:260] = 1
    labels[1, 40, 200] = 2
    assert painted_box(labels) == (slice(10, 41), slice(200, 260))
    assert painted_box(labels, margin=15) == (slice(0, 56), slice(185, 275))  # cut at the top edge
    assert painted_box(labels, min_side=64) == (slice(0, 64), slice(198, 262))  # grown around the centre
    assert painted_box(labels, min_side=120) == (slice(0, 100), slice(170, 290))  # at most the image
    assert painted_box(labels[:, :, :262], min_side=80) == (slice(0, 80), slice(182, 262))  # slid back inside
    assert painted_box(np.zeros((5, 5), np.uint8)) is None


def test_layouts_for_prediction_come_from_the_model_channels():
    assert as_planes(np.zeros((4, 30, 40)), n_channels=1)[0].shape == (4, 30, 40, 1)
    assert as_planes(np.zeros((30, 40, 3)), n_channels=3)[0].shape == (1, 30, 40, 3)
    with pytest.raises(ValueError, match="expects 3 channels"):
        as_planes(np.zeros((30, 40)), n_channels=3)


def test_only_painted_slices_of_a_stack_are_used():
    image = np.random.default_rng(0).random((4, 16, 16))
    labels = np.zeros((4, 16, 16), np.uint8)
    labels[1, 2, 3] = 1
    labels[3, 5, 5] = 2
    planes = painted_planes(image, labels)
    assert len(planes) == 2
    np.testing.assert_array_equal(planes[1].image[..., 0], image[3].astype(np.float32))


def test_planes_are_found_in_an_image_by_their_pixels():
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 255, (4, 16, 16, 2), dtype=np.uint8)
    labels = np.zeros((4, 16, 16), np.uint8)
    labels[[1, 3], 2, 3] = 1
    planes = painted_planes(stack, labels)  # float32 copies of planes 1 and 3
    assert same_pixels(planes, stack, n_channels=2) == [1, 3]
    assert same_pixels(planes, stack[[3, 0]], n_channels=2) == [None, 0]
    assert same_pixels(planes, stack[:, :8], n_channels=2) == [None, None]  # another shape
    changed = stack[[1]].copy()
    changed[0, 0, 0, 0] ^= 1
    assert same_pixels(planes, changed, n_channels=2) == [None, None]  # one pixel differs
    gray = painted_planes(stack[..., 0], labels)
    assert same_pixels(gray, stack[3, ..., 0], n_channels=1) == [None, 0]  # a 2D image is one plane
    assert same_pixels(gray, stack[[3, 2, 1], ..., 0], n_channels=1) == [2, 0]  # the dock's partial preview
    tall = np.concatenate([stack[..., 0]] * 20, axis=1)  # more rows than one band
    assert same_pixels(painted_planes(tall, np.concatenate([labels] * 20, axis=1)), tall, n_channels=1) == [1, 3]


@pytest.mark.parametrize(
    "labels,match",
    [(np.full((4, 4), 1.0), "whole numbers"), (np.full((4, 4), -1), "negative"), (np.full((4, 4), 5), "class 5")],
)
def test_bad_labels_are_refused_with_the_fix(labels, match):
    with pytest.raises(ValueError, match=match):
        check_labels(labels, n_classes=3)


def test_nan_images_are_refused():
    image = np.ones((8, 8), np.float32)
    image[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        painted_planes(image, np.ones((8, 8), np.uint8))


def test_normalizer_percentiles_roundtrip_and_constant_images():
    rng = np.random.default_rng(0)
    img = rng.normal(1000, 50, (64, 64, 1)).astype(np.uint16)
    norm = Normalizer.fit([img])
    out = norm(img)
    assert 0.0 <= np.median(out) <= 1.0 and out.dtype == np.float32
    assert Normalizer.from_dict(norm.to_dict()) == norm
    with pytest.raises(ValueError, match="constant"):
        Normalizer.fit([np.full((8, 8, 1), 7.0)])


def test_normalizer_scales_each_channel_on_its_own_and_zeroes_an_empty_one():
    rng = np.random.default_rng(0)
    red = rng.normal(1000, 50, (64, 64))
    green = np.zeros((64, 64))
    green[:4, :4] = 200  # 0.4% of the pixels: the percentiles coincide, min and max do not
    rgb = np.stack([red, green, np.zeros((64, 64))], -1).astype(np.uint16)  # a two-colour image, blue empty
    norm = Normalizer.fit([rgb])
    out = norm(rgb)
    assert np.isfinite(out).all()
    assert 0.0 <= np.median(out[..., 0]) <= 1.0  # red by its percentiles, as if alone
    assert norm.low[1:] == (0.0, 0.0) and norm.high[1] == 200.0  # green by min and max
    assert np.array_equal(out[..., 2], np.zeros((64, 64)))  # blue carries nothing


def test_sampler_centres_patches_on_painted_pixels_and_pads_small_planes():
    labels = np.zeros((40, 50), np.int64)
    labels[30, 45] = 2  # a single scribble pixel far from the centre
    labels[2, 2] = 1
    plane = Plane(np.random.default_rng(0).random((40, 50, 1)).astype(np.float32), labels)
    sampler = PatchSampler([plane], Normalizer((0.0,), (1.0,)), patch=64, rng=np.random.default_rng(0))
    x, y = sampler.batch(8)
    assert x.shape == (8, 1, 64, 64) and y.shape == (8, 64, 64)
    assert all((yy > 0).sum() == 2 for yy in y)  # padding never crops painted pixels away
    big = Plane(np.zeros((300, 300, 1), np.float32), np.pad(labels, ((0, 260), (0, 250))))
    sampler = PatchSampler([big], Normalizer((0.0,), (1.0,)), patch=32, rng=np.random.default_rng(1))
    _, y = sampler.batch(20)
    assert all((yy > 0).any() for yy in y)
    assert {int(v) for yy in y for v in np.unique(yy[yy > 0])} == {1, 2}  # both classes drawn
