"""Choosing validation planes: painted plane indices and the train/validation split of a label stack."""

import numpy as np

from napari_pixrel.data import painted_indices, painted_planes, split_labels


def test_painted_indices_count_planes_like_as_planes():
    labels = np.zeros((2, 3, 8, 8), np.uint8)  # (T, Z, Y, X): planes 0..5 in order
    labels[0, 1, 2, 2] = 1
    labels[1, 2, 5, 5] = 2
    assert painted_indices(labels) == [1, 5]
    assert painted_indices(labels[0, 1]) == [0]


def test_split_keeps_planes_apart_and_leaves_the_input_alone():
    labels = np.zeros((4, 8, 8), np.uint8)
    labels[:, 1, 1] = 1
    labels[:, 6, 6] = 2
    before = labels.copy()
    train, val = split_labels(labels, [3])
    np.testing.assert_array_equal(labels, before)
    assert painted_indices(train) == [0, 1, 2] and painted_indices(val) == [3]
    assert train.dtype == val.dtype == labels.dtype
    image = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    assert len(painted_planes(image, train)) == 3 and len(painted_planes(image, val)) == 1
