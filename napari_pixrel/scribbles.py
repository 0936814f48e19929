"""Synthetic partial annotations derived from full label maps: the two ways a person paints in napari.

Scribbles: the benchmark and the shipped sample data must simulate the *same* sparse
annotation, so both call this one generator: thin brush strokes along the medial lines of each class
region, with a roughly equal pixel budget per class so that small classes are not starved.
Patches: some squares of each image painted completely (every pixel, boundaries included) and the rest
left blank, the other common way to annotate part of an image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import disk, skeletonize

_EIGHT = np.ones((3, 3), dtype=bool)


def brush_width(fraction: float) -> int:
    """The brush a person would use to paint ``fraction`` of an image: 3 pixels up to ~10%, then wider
    (thin strokes along the medial lines cannot cover more than ~15% of an EM tile)."""
    return max(3, round(30 * fraction)) | 1


def make_scribbles(labels: np.ndarray, fraction: float = 0.02, seed: int = 0, width: int | None = None) -> np.ndarray:
    """Keep only thin stroke pixels of ``labels`` (napari convention, 0 = unlabeled).

    ``labels`` is a 2D plane or an (N, H, W) stack; each plane is processed
    independently with its own generator ``default_rng([seed, plane_index])``
    so a plane's strokes do not depend on the rest of the stack.  About
    ``fraction`` of each plane ends up labeled, split evenly between the
    classes present (a class with too few stroke pixels gives its share to the
    others).  Strokes are ``width`` pixels wide (default: ``brush_width(fraction)``) and never leave
    their region.
    """
    width = brush_width(fraction) if width is None else width
    return _per_plane(labels, seed, lambda plane, rng: _scribble_plane(plane, fraction, rng, width))


def _per_plane(labels, seed: int, paint) -> np.ndarray:
    """``paint(plane, rng)`` on a 2D plane, or on each plane of an (N, H, W) stack with generator
    ``default_rng([seed, plane_index])``, so a plane's annotation does not depend on the rest of the stack."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return paint(labels, np.random.default_rng([seed, 0]))
    if labels.ndim != 3:
        raise ValueError(f"labels must be 2D or a 3D stack, got shape {labels.shape}")
    return np.stack([paint(plane, np.random.default_rng([seed, i])) for i, plane in enumerate(labels)])


def _scribble_plane(labels: np.ndarray, fraction: float, rng: np.random.Generator, width: int) -> np.ndarray:
    out = np.zeros_like(labels)
    classes = [c for c in np.unique(labels) if c != 0]
    brush = disk(max(width // 2, 0)).astype(bool)
    candidates = {}
    for c in classes:
        region = labels == c
        skeleton = skeletonize(region)
        if not skeleton.any():
            skeleton = region
        candidates[c] = (region, skeleton)
    budgets = _split_budget(
        fraction * labels.size,
        {c: int((ndi.binary_dilation(s, brush) & r).sum()) for c, (r, s) in candidates.items()},
    )
    for c in classes:
        region, skeleton = candidates[c]
        stroke = _paint_class(skeleton, region, budgets[c], brush, width, rng)
        out[stroke] = c
    return out


def _split_budget(total: float, available: dict) -> dict:
    """Water-fill: equal share per class, capped by what the class can hold."""
    budgets = {}
    remaining = total
    order = sorted(available, key=available.get)
    for i, c in enumerate(order):
        share = remaining / (len(order) - i)
        budgets[c] = min(share, available[c])
        remaining -= budgets[c]
    return budgets


def _paint_class(skeleton, region, budget, brush, width, rng) -> np.ndarray:
    """Add stroke pieces along the skeleton until the budget is met (at least one)."""
    painted = np.zeros_like(region)
    free = skeleton.copy()
    count = 0
    while free.any() and (count == 0 or count < budget):
        ys, xs = np.nonzero(free)
        k = rng.integers(len(ys))
        half_len = rng.uniform(8, 20)
        half_len = min(half_len, max(2.0, (budget - count) / (2 * width)))
        piece = _skeleton_piece(skeleton, ys[k], xs[k], half_len)
        stroke = ndi.binary_dilation(piece, brush) & region
        count += int((stroke & ~painted).sum())
        painted |= stroke
        free &= ~ndi.binary_dilation(piece, iterations=2)
    return painted


def _skeleton_piece(skeleton, y, x, radius) -> np.ndarray:
    """Connected part of the skeleton within ``radius`` of (y, x): one brush stroke."""
    r = int(np.ceil(radius))
    y0, x0 = max(y - r, 0), max(x - r, 0)
    window = skeleton[y0 : y + r + 1, x0 : x + r + 1]
    yy, xx = np.ogrid[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]]
    near = window & ((yy - y) ** 2 + (xx - x) ** 2 <= radius**2)
    components, _ = ndi.label(near, structure=_EIGHT)
    piece = np.zeros_like(skeleton)
    piece[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]] = components == components[y - y0, x - x0]
    return piece


def make_patches(labels: np.ndarray, fraction: float = 0.5, seed: int = 0, size: int = 64) -> np.ndarray:
    """Keep ``labels`` (napari convention, 0 = unlabeled) inside randomly chosen squares of a ``size`` grid
    until about ``fraction`` of each plane is painted; the rest becomes 0.

    ``labels`` is a 2D plane or an (N, H, W) stack; plane i draws its squares with
    ``default_rng([seed, i])``, as in ``make_scribbles``. At least one square is painted.
    """
    return _per_plane(labels, seed, lambda plane, rng: _patch_plane(plane, fraction, rng, size))


def _patch_plane(labels: np.ndarray, fraction: float, rng: np.random.Generator, size: int) -> np.ndarray:
    keep = np.zeros(labels.shape, dtype=bool)
    cells = [(y, x) for y in range(0, labels.shape[0], size) for x in range(0, labels.shape[1], size)]
    for k in rng.permutation(len(cells)):
        y, x = cells[k]
        keep[y:y + size, x:x + size] = True
        if keep.mean() >= fraction - 0.5 * size * size / labels.size:  # nearest whole square
            break
    return np.where(keep, labels, 0).astype(labels.dtype)
