"""Inference: whole planes when they fit, overlapping tiles when they don't.

Tiles are aligned to the encoder's stride and only their centres (an
``overlap`` margin of context is cut away) are written, so a tiled result
matches whole-image prediction up to rare pixels near tile seams. Stacks,
time series and dask arrays are predicted plane by plane, each window read
on demand, so memory stays bounded by one plane's output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .data import as_planes, check_image, pad_to
from .model import STRIDE, Segmenter

TILE = 512  # pixels a side: larger planes are predicted in overlapping tiles


@dataclass(frozen=True)
class Prediction:
    """Labels in napari convention (1..K) and class probabilities (K, *labels.shape)."""

    labels: np.ndarray
    probabilities: np.ndarray | None


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _run(segmenter: Segmenter, windows: list[np.ndarray]) -> np.ndarray:
    """Normalised (h, w, C) windows of equal shape -> probabilities (n, K, h, w)."""
    for w in windows:
        check_image(w)  # NaN would silently give class 1 everywhere
    net = segmenter.net
    x = torch.from_numpy(np.stack([np.moveaxis(w, -1, 0) for w in windows])).to(segmenter.device)
    try:
        with torch.inference_mode():
            logits = net.logits(x.contiguous(memory_format=torch.channels_last))
            return torch.softmax(logits.float(), 1).cpu().numpy()
    except torch.OutOfMemoryError:
        pass  # raised below, outside this handler, so the failed pass's frames and tensors are freed
    h, w = windows[0].shape[:2]
    smaller = max(128, _round_up(max(h, w) // 2, STRIDE))
    raise MemoryError(f"out of memory on {x.device} predicting a {h}x{w} window: use a smaller tile "
                      f"(e.g. tile={smaller})")


def _read(plane, y0: int, x0: int, size: int) -> np.ndarray:
    """Window [y0, y0+size) x [x0, x0+size) of a (H, W, C) array-like, mirrored beyond its edges."""
    h, w = plane.shape[:2]
    ya, xa = max(0, y0), max(0, x0)
    yb, xb = min(h, y0 + size), min(w, x0 + size)
    win = np.asarray(plane[ya:yb, xa:xb], dtype=np.float32)
    pads = [(ya - y0, y0 + size - yb), (xa - x0, x0 + size - xb), (0, 0)]
    return np.pad(win, pads, mode="symmetric") if any(p != (0, 0) for p in pads[:2]) else win


def predict_plane(segmenter: Segmenter, plane, tile: int = TILE, overlap: int = 64,
                  should_stop: Callable[[], bool] | None = None) -> np.ndarray | None:
    """Probabilities (K, H, W) for one raw (H, W, C) plane; None when ``should_stop()`` turned true between two
    tiles (a plane of a large slide takes minutes)."""
    stopped = should_stop or (lambda: False)
    if stopped():
        return None
    segmenter.net.eval()
    norm = segmenter.normalizer
    h, w = plane.shape[:2]
    if h <= tile and w <= tile:
        image = norm(np.asarray(plane))
        padded = pad_to(image, _round_up(h, STRIDE), _round_up(w, STRIDE), "symmetric")
        return _run(segmenter, [padded])[0, :, :h, :w]
    if tile % STRIDE or overlap % STRIDE or tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) and overlap ({overlap}) must be multiples of {STRIDE}, tile > 2*overlap")
    core = tile - 2 * overlap
    out = np.empty((segmenter.n_classes, h, w), np.float32)
    for y in range(0, h, core):
        for x in range(0, w, core):
            if stopped():
                return None
            window = norm(_read(plane, y - overlap, x - overlap, tile))
            probs = _run(segmenter, [window])[0]
            ch, cw = min(core, h - y), min(core, w - x)
            out[:, y:y + ch, x:x + cw] = probs[:, overlap:overlap + ch, overlap:overlap + cw]
    return out


def predict_window(segmenter: Segmenter, plane, window: tuple[slice, slice], tile: int = TILE,
                   overlap: int = 64) -> np.ndarray:
    """Probabilities (K, h, w) of the ``window`` (rows, columns) of a raw (H, W, C) plane, predicted with
    ``overlap`` pixels of the plane around it as context, as a tile's centre is: what scoring a few strokes
    on a large slide needs, at the cost of their region instead of the slide."""
    h, w = plane.shape[:2]
    (y0, y1, _), (x0, x1, _) = (s.indices(n) for s, n in zip(window, (h, w)))
    ya, xa = max(0, y0 - overlap), max(0, x0 - overlap)
    context = plane[ya:min(h, y1 + overlap), xa:min(w, x1 + overlap)]
    return predict_plane(segmenter, context, tile, overlap)[:, y0 - ya:y1 - ya, x0 - xa:x1 - xa]


def iter_predict(
    segmenter: Segmenter, image, tile: int = TILE, overlap: int = 64, rgb: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (plane index, number of planes, probabilities (K, H, W)) plane by plane, until ``should_stop()``
    (checked between tiles). ``rgb``: the last axis is colour (as_planes)."""
    planes, _ = as_planes(image, n_channels=segmenter.config.in_channels, rgb=rgb)
    n = planes.shape[0]
    for i in range(n):
        probabilities = predict_plane(segmenter, planes[i], tile, overlap, should_stop)
        if probabilities is None:
            return
        yield i, n, probabilities


def labels_dtype(n_classes: int):
    return np.uint8 if n_classes < 255 else np.uint16


def class_labels(probabilities: np.ndarray) -> np.ndarray:
    """Labels 1..K of (K, H, W) probabilities, in bands: no plane-sized int64 argmax next to them."""
    k, h = probabilities.shape[:2]
    labels = np.empty(probabilities.shape[1:], labels_dtype(k))
    for y in range(0, h, 256):
        labels[y:y + 256] = probabilities[:, y:y + 256].argmax(0) + 1
    return labels


def predict(
    segmenter: Segmenter,
    image,
    tile: int = TILE,
    overlap: int = 64,
    probabilities: bool = True,
    should_stop: Callable[[], bool] | None = None,
    rgb: bool = False,
) -> Prediction:
    """Predict a 2D image, RGB/multichannel image, stack or time series (numpy or dask)."""
    planes, lead = as_planes(image, n_channels=segmenter.config.in_channels, rgb=rgb)
    n, h, w = planes.shape[:3]
    labels = np.zeros((n, h, w), labels_dtype(segmenter.n_classes))
    probs = np.zeros((segmenter.n_classes, n, h, w), np.float32) if probabilities else None
    for i, _, p in iter_predict(segmenter, image, tile, overlap, rgb, should_stop):
        labels[i] = class_labels(p)
        if probs is not None:
            probs[:, i] = p
    shape = tuple(lead) + (h, w)
    return Prediction(labels.reshape(shape), None if probs is None else probs.reshape((-1,) + shape))


def uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """1 - the winning class's probability per pixel (class axis first): 0 = sure, 1 - 1/K = no idea."""
    return 1.0 - np.asarray(probabilities).max(0)
