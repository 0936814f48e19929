"""Tiled, stacked and lazy prediction agree with whole-image prediction."""

import dask.array as da
import numpy as np
import pytest

from napari_pixrel.predict import class_labels, iter_predict, predict, predict_plane, predict_window


def big_image(sample, size=700):
    images = sample[0]
    return np.block([[images[0], images[1], images[2]], [images[3], images[4], images[5]],
                     [images[1], images[3], images[5]]])[:size, :size]


def test_tiled_prediction_matches_whole_image(sample, tiny_segmenter):
    image = big_image(sample)[..., None]
    whole = predict_plane(tiny_segmenter, image, tile=1024)
    tiled = predict_plane(tiny_segmenter, image, tile=256, overlap=64)
    assert tiled.shape == whole.shape == (3, 700, 700)
    agree = (tiled.argmax(0) == whole.argmax(0)).mean()
    assert agree > 0.995, agree
    assert np.abs(tiled - whole).mean() < 0.01


def test_a_window_is_predicted_with_the_plane_around_it_as_context(sample, tiny_segmenter):
    image = big_image(sample)[..., None]
    whole = predict_plane(tiny_segmenter, image)
    np.testing.assert_array_equal(predict_window(tiny_segmenter, image, (slice(None), slice(None))), whole)
    window = (slice(300, 420), slice(5, 700))
    part = predict_window(tiny_segmenter, image, window)
    assert part.shape == (3, 120, 695)
    agree = (part.argmax(0) == whole[(slice(None),) + window].argmax(0)).mean()
    assert agree > 0.995, agree


def test_labels_and_probabilities_follow_napari_convention(sample, tiny_segmenter):
    result = predict(tiny_segmenter, sample[0][0])
    assert result.labels.shape == (256, 256) and result.labels.dtype == np.uint8
    assert set(np.unique(result.labels)) <= {1, 2, 3}
    assert result.probabilities.shape == (3, 256, 256)
    np.testing.assert_allclose(result.probabilities.sum(0), 1.0, atol=1e-4)


def test_stack_and_dask_are_predicted_slice_by_slice(sample, tiny_segmenter):
    stack = sample[0][:3]
    result = predict(tiny_segmenter, stack, probabilities=False)
    assert result.labels.shape == (3, 256, 256) and result.probabilities is None
    for i in range(3):
        np.testing.assert_array_equal(result.labels[i], predict(tiny_segmenter, stack[i]).labels)
    lazy = predict(tiny_segmenter, da.from_array(stack, chunks=(1, 128, 128)), tile=128, overlap=32)
    assert (lazy.labels == result.labels).mean() > 0.99


@pytest.mark.parametrize("shape", [(7, 9), (33, 100), (1, 40)])
def test_tiny_and_odd_sizes_are_padded_never_cropped(tiny_segmenter, shape):
    image = np.random.default_rng(0).integers(0, 255, shape).astype(np.uint8)
    assert predict(tiny_segmenter, image).labels.shape == shape


def test_stop_between_planes(sample, tiny_segmenter):
    calls = []
    result = predict(tiny_segmenter, sample[0][:4], should_stop=lambda: calls.append(1) or len(calls) >= 3)
    assert len(calls) == 3  # asked before each plane: the third is not started
    assert (result.labels[:2] > 0).all() and (result.labels[2:] == 0).all()


def test_stop_between_the_tiles_of_a_large_plane(sample, tiny_segmenter):
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= 4

    assert list(iter_predict(tiny_segmenter, big_image(sample), tile=256, should_stop=stop)) == []
    assert len(calls) == 4  # before the plane and before each tile: 2 of its 36 tiles predicted, then stopped


def test_class_labels_in_bands_equal_the_argmax():
    probabilities = np.random.default_rng(0).random((3, 600, 50)).astype(np.float32)
    labels = class_labels(probabilities)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, probabilities.argmax(0) + 1)
