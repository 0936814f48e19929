"""Arrays -> training samples.

Everything napari can hand us (2D, RGB/multichannel, stacks, time series,
dask arrays) is seen as planes of shape (H, W, C) with labels (H, W) in the
napari convention: 0 = not painted (ignored everywhere), k >= 1 = class k.
Checks here raise ``ValueError`` with a message that names the problem and the
fix, before anything is trained or changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Plane:
    """One 2D training or validation image: raw pixels (H, W, C) and labels (H, W)."""

    image: np.ndarray
    labels: np.ndarray


def as_planes(image, n_channels: int | None = None, labels_shape: tuple | None = None, rgb: bool = False):
    """View ``image`` as (N, H, W, C) planes; return it and the leading shape to restore.

    The channel axis is found from the labels' shape when given (labels have
    no channel axis), else from the model's channel count: a last axis of
    length ``n_channels`` > 1 is channels. ``rgb`` says the last axis is
    colour (napari knows it), so a grayscale model is refused rather than
    reading an RGB image as a stack. Leading axes (Z, T, ...) become N.
    Works lazily on dask arrays (only reshapes).
    """
    shape = tuple(image.shape)
    if labels_shape is not None:
        labels_shape = tuple(labels_shape)
        if shape == labels_shape:
            has_channels = False
        elif shape[:-1] == labels_shape:
            has_channels = True
        else:
            raise ValueError(
                f"labels shape {labels_shape} does not match image shape {shape}: paint into a Labels "
                "layer created for this image (same height, width and slices)"
            )
    else:
        # a grayscale image saved with a channel axis of 1 (H, W, 1) is one plane, not H one-row planes
        single = n_channels == 1 and len(shape) >= 3 and shape[-1] == 1
        has_channels = rgb or single or (n_channels is not None and n_channels > 1)
        if has_channels and n_channels is not None and shape[-1] != n_channels:
            kind = f"has {shape[-1]} colour channels" if rgb else f"has shape {shape}"
            raise ValueError(
                f"the model expects {n_channels} channels (last axis), the image {kind}: "
                "apply a model trained on images like this one, or train one on it"
            )
    spatial = shape[:-1] if has_channels else shape
    if len(spatial) < 2:
        raise ValueError(f"image of shape {shape} is not an image: it needs at least 2 spatial axes")
    lead = spatial[:-2]
    n = int(np.prod(lead)) if lead else 1
    c = shape[-1] if has_channels else 1
    return image.reshape((n, spatial[-2], spatial[-1], c)), lead


def check_labels(labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Validate a label array (whole numbers, none negative, none above ``n_classes``); returned as it is, not
    converted: a stack's unpainted slices need no int64 copy."""
    labels = np.asarray(labels)
    if labels.dtype == bool:
        return labels
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels have dtype {labels.dtype}; labels must be whole numbers (0 = not painted, 1, 2, ... = "
            "classes): paint into a napari Labels layer or convert with labels.astype(int)"
        )
    if labels.size and labels.min() < 0:
        raise ValueError("labels contain negative values; use 0 for unpainted pixels and 1, 2, ... for classes")
    if n_classes is not None and labels.size and labels.max() > n_classes:
        raise ValueError(
            f"labels contain class {int(labels.max())} but only {n_classes} classes are configured: "
            f"give class names up to class {int(labels.max())}, or repaint those pixels"
        )
    return labels


def check_image(image) -> None:
    """Refuse images that cannot be normalised (NaN/inf); integer images cannot hold them."""
    if not np.issubdtype(image.dtype, np.integer) and not np.isfinite(image).all():
        raise ValueError(
            "the image contains NaN or infinite values: replace them first (e.g. with numpy.nan_to_num)"
        )


def painted_planes(image, labels, n_classes: int | None = None) -> list[Plane]:
    """The planes of ``image`` that have at least one painted pixel (stacks: painted slices only), each a copy
    (float32 pixels, int64 labels), so that unpainted slices are never converted and no plane keeps the whole
    stack alive; a lazy (dask) image is read for its painted planes only."""
    labels = check_labels(labels, n_classes)
    planes, _ = as_planes(image if hasattr(image, "reshape") else np.asarray(image), labels_shape=labels.shape)
    lab = labels.reshape((planes.shape[0],) + labels.shape[-2:])
    out = []
    for i in range(planes.shape[0]):
        if lab[i].any():
            img = np.array(planes[i], dtype=np.float32)
            check_image(img)
            out.append(Plane(img, lab[i].astype(np.int64)))
    return out


def same_pixels(planes: list[Plane], image, n_channels: int) -> list[int | None]:
    """For each plane, the index of a plane of ``image`` with the same pixels (as float32, what the normaliser
    reads), or None. Prediction depends on the pixels only, so a training plane found in the live preview is
    scored on the preview's prediction instead of being predicted a second time at each evaluation."""
    stack, _ = as_planes(image, n_channels=n_channels)

    def key(pixels) -> bytes:
        digest = hashlib.blake2b(digest_size=16)
        for y in range(0, pixels.shape[0], 256):  # in bands: no plane-sized copy beside the image
            digest.update(np.ascontiguousarray(pixels[y:y + 256], np.float32))
        return digest.digest()

    shape = tuple(stack.shape[1:])
    found = {}
    if any(p.image.shape == shape for p in planes):
        for j in range(stack.shape[0]):
            found.setdefault(key(stack[j]), j)
    return [found.get(key(p.image)) if p.image.shape == shape else None for p in planes]


def painted_indices(labels) -> list[int]:
    """Indices of the planes (leading axes flattened, as in ``as_planes``) that have painted pixels."""
    labels = np.asarray(labels)
    planes = labels.reshape((-1, labels.shape[-2] * labels.shape[-1]))
    return [int(i) for i in np.flatnonzero(planes.any(1))]


def painted_box(labels, margin: int = 0, min_side: int = 0) -> tuple[slice, slice] | None:
    """Rows and columns that hold every painted pixel of (..., H, W) labels (all planes together), grown by
    ``margin`` within the image, then to at least ``min_side`` around their centre (slid back inside the image
    where they would leave it); None if nothing is painted.
    A slide painted in one corner is scored and previewed there, not over its whole area."""
    labels = np.asarray(labels)
    painted = labels.reshape((-1,) + labels.shape[-2:]).any(0)
    rows, cols = np.flatnonzero(painted.any(1)), np.flatnonzero(painted.any(0))
    if not len(rows):
        return None

    def span(first: int, last: int, size: int) -> slice:
        start, stop = max(0, first - margin), min(size, last + 1 + margin)
        short = max(0, min_side - (stop - start))
        start, stop = start - short // 2, stop + short - short // 2
        shift = max(0, -start) - max(0, stop - size)  # slid back inside the image, then cut to it
        return slice(int(max(0, start + shift)), int(min(size, stop + shift)))

    return span(rows[0], rows[-1], painted.shape[0]), span(cols[0], cols[-1], painted.shape[1])


def split_labels(labels, val_indices) -> tuple[np.ndarray, np.ndarray]:
    """(training labels, validation labels): copies with the other set's planes zeroed, so both feed
    ``painted_planes`` and a plane is never in both sets."""
    labels = np.asarray(labels)
    planes = labels.reshape((-1,) + labels.shape[-2:])
    is_val = np.zeros(len(planes), bool)
    is_val[list(val_indices)] = True
    train = np.where(is_val[:, None, None], 0, planes).astype(labels.dtype)
    val = np.where(is_val[:, None, None], planes, 0).astype(labels.dtype)
    return train.reshape(labels.shape), val.reshape(labels.shape)


@dataclass(frozen=True)
class Normalizer:
    """Per-channel percentile scaling to about [0, 1]; stored in the model file so
    prediction sees intensities exactly as training did."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def fit(cls, images: list[np.ndarray], percentiles=(1.0, 99.8)) -> Normalizer:
        """Fit on (H, W, C) images; pixels are subsampled so large images stay cheap. Each channel on its
        own: one whose percentiles coincide falls back to its min and max, and a constant one (the empty
        blue of a two-colour RGB image) maps to 0, so it neither blocks training nor swamps the others."""
        c = images[0].shape[-1]
        pooled = np.concatenate([im.reshape(-1, c)[:: max(1, im.size // (c * 200_000))] for im in images])
        low = np.percentile(pooled, percentiles[0], axis=0)
        high = np.percentile(pooled, percentiles[1], axis=0)
        flat = high <= low
        low, high = np.where(flat, pooled.min(0), low), np.where(flat, pooled.max(0), high)
        constant = high <= low
        if constant.all():
            raise ValueError(
                "the training images are constant (every pixel has the same value): "
                "there is nothing to learn from; check the image layer"
            )
        high = np.where(constant, low + 1.0, high)
        return cls(tuple(float(v) for v in low), tuple(float(v) for v in high))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(..., C) raw -> float32 normalised."""
        low = np.asarray(self.low, np.float32)
        high = np.asarray(self.high, np.float32)
        return (np.asarray(image, np.float32) - low) / (high - low)

    def to_dict(self) -> dict:
        return {"low": list(self.low), "high": list(self.high)}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        return cls(tuple(d["low"]), tuple(d["high"]))


def pad_to(array: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    """Pad the first two axes up to (height, width) at the bottom/right, never cropping."""
    ph, pw = max(0, height - array.shape[0]), max(0, width - array.shape[1])
    if ph == 0 and pw == 0:
        return array
    pad = [(0, ph), (0, pw)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad, mode=mode)


class PatchSampler:
    """Draws augmented training batches of square patches.

    Planes are visited in shuffled rounds (so a batch of 4 from 4 tiles sees
    every tile, as in the paper). Each patch is centred on a painted pixel of a
    class drawn uniformly from the classes painted in that plane, so sparse
    scribbles and small classes are found. Augmentation: flips, rot90 and a
    mild gain/offset on intensities (the trainer adds the elastic warp, warp.py).
    """

    def __init__(self, planes: list[Plane], normalizer: Normalizer, patch: int, rng: np.random.Generator,
                 augment: bool = True):
        self.patch = patch
        self.rng = rng
        self.augment = augment
        self.images = [pad_to(normalizer(p.image), patch, patch, "symmetric") for p in planes]
        self.labels = [pad_to(p.labels, patch, patch, "constant") for p in planes]
        self.painted = [
            [np.flatnonzero(lab == k) for k in np.unique(lab[lab > 0])] for lab in self.labels
        ]
        self._order: list[int] = []

    def _next_plane(self) -> int:
        if not self._order:
            self._order = list(self.rng.permutation(len(self.images)))
        return int(self._order.pop())

    def _patch(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        img, lab, p = self.images[i], self.labels[i], self.patch
        h, w = lab.shape
        by_class = self.painted[i]
        flat = by_class[self.rng.integers(len(by_class))]
        cy, cx = divmod(int(flat[self.rng.integers(len(flat))]), w)
        y0 = int(np.clip(cy - p // 2, 0, h - p))
        x0 = int(np.clip(cx - p // 2, 0, w - p))
        x = img[y0:y0 + p, x0:x0 + p]
        y = lab[y0:y0 + p, x0:x0 + p]
        if self.augment:
            k = int(self.rng.integers(4))
            x, y = np.rot90(x, k), np.rot90(y, k)
            if self.rng.random() < 0.5:
                x, y = x[:, ::-1], y[:, ::-1]
            x = x * self.rng.uniform(0.9, 1.1) + self.rng.uniform(-0.1, 0.1)
        return np.ascontiguousarray(np.moveaxis(x, -1, 0), np.float32), np.ascontiguousarray(y)

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, C, P, P) float32 images and (n, P, P) int64 labels."""
        xs, ys = zip(*(self._patch(self._next_plane()) for _ in range(n)))
        return np.stack(xs), np.stack(ys)
