"""Label TIFFs: apply a model to every TIFF in a folder, and write one label image.

Each input ``name.tif`` gives ``name_labels.tif`` (napari convention: 1..K,
zlib-compressed) in the output folder; an image is written only once fully
predicted, so a stop never leaves a half-filled file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import tifffile

from .model import Segmenter
from .predict import predict

TIF_SUFFIXES = (".tif", ".tiff")
OUTPUT_SUBFOLDER = "pixrel_labels"


def write_labels(path, labels: np.ndarray) -> Path:
    """Write a label image as a zlib-compressed TIFF (readable by napari, Fiji, tifffile)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.asarray(labels), compression="zlib")
    return path


def read_tif(path) -> tuple[np.ndarray, bool]:
    """(pixels, whether their last axis is RGB colour, as the file says): a grayscale model must refuse an
    RGB file rather than read its colour axis as a stack of slices. Colour stored first (planar) stays a
    stack of planes, as tifffile writes a 3-slice array by default."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        rgb = series.keyframe.photometric == tifffile.PHOTOMETRIC.RGB and series.axes.endswith("S")
        return series.asarray(), rgb


def output_file_name(path, kind: str = "labels") -> str:
    """``name.tif`` (or ``name.ome.tif``) -> ``name_<kind>.tif``."""
    return f"{Path(path).stem.removesuffix('.ome')}_{kind}.tif"


def tif_files(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TIF_SUFFIXES)
    if not files:
        raise ValueError(f"no .tif/.tiff files in {folder}: choose the folder that holds the images")
    return files


def predict_folder(
    segmenter: Segmenter,
    folder,
    out_folder=None,
    tile: int = 512,
    overlap: int = 64,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[tuple[int, int, Path]]:
    """Yield (images done, number of images, written label file) image by image.

    ``out_folder`` defaults to ``folder/pixrel_labels``.
    """
    files = tif_files(folder)
    out = Path(out_folder) if out_folder is not None else Path(folder) / OUTPUT_SUBFOLDER
    for i, path in enumerate(files):
        image, rgb = read_tif(path)
        labels = predict(segmenter, image, tile, overlap, probabilities=False, should_stop=should_stop, rgb=rgb).labels
        if should_stop is not None and should_stop():
            return
        yield i + 1, len(files), write_labels(out / output_file_name(path), labels)
