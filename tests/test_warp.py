"""The elastic warp: labels move with their pixels, unseen border pixels are unpainted, runs repeat."""

import numpy as np
import torch

from napari_pixrel.warp import random_warp


def blocks(n=4, size=96):
    """Images whose intensity is their class: 3 classes in 16-pixel blocks, so warped labels can be read back
    from the warped image."""
    yy, xx = np.mgrid[:size, :size]
    labels = 1 + ((yy // 16 + xx // 16) % 3)
    labels = torch.from_numpy(np.stack([labels] * n)).long()
    return labels[:, None].float(), labels


def test_labels_follow_the_image():
    x, labels = blocks()
    wx, wl = random_warp(x, labels, torch.Generator().manual_seed(0))
    assert wx.shape == x.shape and wl.shape == labels.shape and wl.dtype == labels.dtype
    assert not torch.equal(wl, labels)  # it moved
    inside = wl > 0
    # bilinear image against nearest labels: they differ only on block edges
    agree = (wx[:, 0].round().long() == wl)[inside].float().mean()
    assert agree > 0.9, agree


def test_outside_the_patch_is_unpainted_and_no_new_classes_appear():
    x, labels = blocks()
    _, wl = random_warp(x, torch.ones_like(labels), torch.Generator().manual_seed(1))
    assert set(torch.unique(wl).tolist()) == {0, 1}  # a free rotation uncovers corners
    assert 0.3 < (wl == 1).float().mean() < 1.0


def test_same_generator_seed_same_warp_and_images_keep_their_range():
    x, labels = blocks()
    a = random_warp(x, labels, torch.Generator().manual_seed(3))
    b = random_warp(x, labels, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].min() >= x.min() - 1e-5 and a[0].max() <= x.max() + 1e-5  # mirrored border, no zeros padded in
