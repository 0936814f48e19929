"""IoU from an accumulated confusion matrix, unlabeled pixels excluded."""

import numpy as np
import pytest

from napari_pixrel.metrics import ConfusionMatrix, iou_table


def test_iou_by_hand():
    truth = np.array([[1, 1, 2, 2], [0, 0, 3, 3]])
    pred = np.array([[1, 2, 2, 2], [3, 3, 3, 1]])
    cm = ConfusionMatrix(3).update(pred, truth)
    # class 1: tp 1, fp 1 (at a 3-pixel), fn 1 -> 1/3; class 2: tp 2, fp 1 -> 2/3; class 3: tp 1, fn 1 -> 1/2
    np.testing.assert_allclose(cm.iou(), [1 / 3, 2 / 3, 1 / 2])
    assert cm.miou() == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_unlabeled_pixels_never_count():
    truth = np.array([[1, 0], [2, 0]])
    a = ConfusionMatrix(2).update(np.array([[1, 1], [2, 1]]), truth)
    b = ConfusionMatrix(2).update(np.array([[1, 2], [2, 2]]), truth)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert a.miou() == 1.0


def test_accumulates_over_images_not_averaging_per_image():
    t1, p1 = np.array([1, 1, 1, 2]), np.array([1, 1, 1, 1])
    t2, p2 = np.array([2, 2, 2, 2]), np.array([2, 2, 2, 2])
    table = iou_table([(p1, t1), (p2, t2)], 2, ["a", "b"])
    assert table["a"] == pytest.approx(3 / 4) and table["b"] == pytest.approx(4 / 5)


def test_class_never_seen_is_nan_and_left_out_of_the_mean():
    cm = ConfusionMatrix(3).update(np.array([1, 2]), np.array([1, 2]))
    assert np.isnan(cm.iou()[2]) and cm.miou() == 1.0
    assert np.isnan(ConfusionMatrix(2).miou())


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shape"):
        ConfusionMatrix(2).update(np.zeros((2, 2)), np.zeros((2, 3)))
