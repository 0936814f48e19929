"""Synthetic EM-like few-shot data set (ssTEM of neural tissue look-alike).

Gives the plugin, the tests and the benchmark a small, license-free,
deterministic data set that is hard enough to be meaningful: membranes and
mitochondria are equally dark and differ only in shape and texture, and the
cytoplasm contains dark vesicles, so an intensity threshold cannot solve it.
Labels use the napari convention (0 = unlabeled, never used in the full
ground truth): 1 = background, 2 = membrane, 3 = mitochondria.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from napari_pixrel.scribbles import make_scribbles

CLASS_NAMES = ("background", "membrane", "mitochondria")
BACKGROUND, MEMBRANE, MITOCHONDRIA = 1, 2, 3
DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "sample_data"
_FILES = ("images", "labels", "scribbles")


def make_em_like(n_images: int = 6, size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)``, both ``(n_images, size, size)`` uint8.

    Each image gets its own child seed, so the first k images of a larger set
    equal the images of a set of k.
    """
    children = np.random.SeedSequence(seed).spawn(n_images)
    pairs = [_make_one(size, np.random.default_rng(s)) for s in children]
    images = np.stack([p[0] for p in pairs])
    labels = np.stack([p[1] for p in pairs])
    return images, labels


def _smooth(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Zero-mean, unit-std smooth random field."""
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return (field - field.mean()) / field.std()


def _cells(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Curvy cells of varied size: power diagram of jittered seeds in a warped space.

    Returns the cell id map and each pixel's distance to the nearest cell
    boundary, measured in image space so membrane width does not follow the warp.
    """
    spacing = rng.uniform(28, 34)
    grid = np.arange(-spacing, size + spacing, spacing)
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    seeds = np.stack([gy.ravel(), gx.ravel()], axis=1)
    seeds += rng.uniform(-0.45, 0.45, seeds.shape) * spacing
    weights = (0.4 * spacing * rng.lognormal(0, 0.5, len(seeds))) ** 2
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    warp = 0.25 * spacing
    wy = yy + warp * _smooth(rng, (size, size), spacing / 2)
    wx = xx + warp * _smooth(rng, (size, size), spacing / 2)
    nearest = np.full((size, size), np.inf)
    cell = np.zeros((size, size), dtype=int)
    for i, ((sy, sx), weight) in enumerate(zip(seeds, weights, strict=True)):
        power = (wy - sy) ** 2 + (wx - sx) ** 2 - weight
        closer = power < nearest
        nearest[closer] = power[closer]
        cell[closer] = i
    interface = find_boundaries(cell, mode="inner")
    return cell, ndi.distance_transform_edt(~interface) + 0.5


def _mitochondria(cell, to_boundary, half_width, rng):
    """Place bent ellipses well inside cells until a random area target is met.

    Returns the mitochondria mask and an intensity texture (cristae stripes
    across the long axis, darker outer membrane) defined on that mask.
    """
    size = cell.shape[0]
    target = rng.uniform(0.04, 0.07) * cell.size
    mask = np.zeros(cell.shape, dtype=bool)
    texture = np.zeros(cell.shape)
    clearance = to_boundary - half_width
    for _ in range(400):
        if mask.sum() >= target:
            break
        a, b = rng.uniform(7, 16), rng.uniform(4.0, 7.0)
        candidates = np.flatnonzero((clearance > b + 2) & ~ndi.binary_dilation(mask, iterations=int(b) + 3))
        if candidates.size == 0:
            break
        cy, cx = np.array(np.unravel_index(rng.choice(candidates), cell.shape)) + rng.uniform(-0.5, 0.5, 2)
        angle, bend = rng.uniform(0, np.pi), rng.uniform(-0.03, 0.03)
        r = int(a + 3)
        window = tuple(slice(max(int(c) - r, 0), min(int(c) + r + 1, size)) for c in (cy, cx))
        yy, xx = np.mgrid[window]
        u = (yy - cy) * np.cos(angle) + (xx - cx) * np.sin(angle)
        v = -(yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle) - bend * u**2
        rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        body = rho <= 1
        grown = ndi.binary_dilation(body, iterations=2)
        touches_edge = body[0].any() or body[-1].any() or body[:, 0].any() or body[:, -1].any()
        if (
            touches_edge
            or len(np.unique(cell[window][grown])) > 1
            or clearance[window][grown].min() < 1
            or mask[window][grown].any()
        ):
            continue
        cristae = 0.5 + 0.5 * np.cos(2 * np.pi * u / rng.uniform(5.0, 7.0) + rng.uniform(0, 6))
        rim = np.clip((rho - 0.7) / 0.3, 0, 1)
        local = 0.26 + 0.22 * cristae * (1 - rim) - 0.04 * rim
        mask[window] |= body
        texture[window] = np.where(body, local, texture[window])
    return mask, texture


def _vesicles(size, forbidden, rng):
    """Clusters of small dark rings in the cytoplasm: distractors labeled background."""
    ink = np.zeros((size, size))
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(rng.poisson(6 * (size / 256) ** 2)):
        centre, spread = rng.uniform(0, size, 2), rng.uniform(5, 12)
        for _ in range(rng.integers(6, 20)):
            cy, cx = centre + spread * rng.standard_normal(2)
            radius = rng.uniform(1.8, 3.2)
            ring = np.clip(1 - np.abs(np.hypot(yy - cy, xx - cx) - radius) / 1.2, 0, 1)
            if not (ring > 0)[forbidden].any():
                ink = np.maximum(ink, 0.4 * ring)
    return ink


def _make_one(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    cell, to_boundary = _cells(size, rng)
    half_width = 1.0 + 0.5 * (1 + np.tanh(_smooth(rng, (size, size), 12)))
    membrane = to_boundary < half_width
    mito, mito_texture = _mitochondria(cell, to_boundary, half_width, rng)
    labels = np.full((size, size), BACKGROUND, dtype=np.uint8)
    labels[membrane] = MEMBRANE
    labels[mito] = MITOCHONDRIA

    cytoplasm = 0.68 + 0.05 * _smooth(rng, (size, size), 6) + 0.04 * _smooth(rng, (size, size), 1.2)
    cytoplasm -= _vesicles(size, membrane | ndi.binary_dilation(mito, iterations=2), rng)
    membrane_ink = 0.30 + 0.04 * _smooth(rng, (size, size), 8)
    clean = np.where(membrane, membrane_ink, np.where(mito, mito_texture, cytoplasm))
    illumination = 1 + 0.08 * _smooth(rng, (size, size), size / 4)
    blurred = ndi.gaussian_filter(clean * illumination, 1.0)

    photons = 100.0
    noisy = rng.poisson(np.clip(blurred, 0, None) * photons) / photons
    noisy += 0.02 * rng.standard_normal((size, size))
    image = np.clip(np.round(noisy * 255), 0, 255).astype(np.uint8)
    return image, labels


def _shipped_set() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one definition of the shipped set, so files and in-memory fallback agree."""
    images, labels = make_em_like(6, 256, seed=0)
    return images, labels, make_scribbles(labels, fraction=0.02, seed=0)


def write_sample_data(folder) -> dict[str, Path]:
    """Write the shipped sample set (images, full labels, scribbles) as zlib TIFFs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, array in zip(_FILES, _shipped_set(), strict=True):
        paths[name] = folder / f"{name}.tif"
        tifffile.imwrite(paths[name], array, compression="zlib")
    return paths


def load_sample_data(folder=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(images, labels, scribbles)``.

    Reads the repository's ``sample_data/`` by default; an installed wheel
    does not ship it, so then the identical set is generated in memory.
    """
    if folder is None and not all((DEFAULT_FOLDER / f"{n}.tif").exists() for n in _FILES):
        return _shipped_set()
    folder = DEFAULT_FOLDER if folder is None else Path(folder)
    images, labels, scribbles = (tifffile.imread(folder / f"{n}.tif") for n in _FILES)
    return images, labels, scribbles


if __name__ == "__main__":
    for path in write_sample_data(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_FOLDER).values():
        print(path, path.stat().st_size, "bytes")
