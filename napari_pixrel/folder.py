"""Label TIFFs: apply a model to every TIFF in a folder, and write one label image.

Each input ``name.tif`` gives ``name_labels.tif`` (napari convention: 1..K,
zlib-compressed) in the output folder; an image is written only once fully
predicted, so a stop never leaves a half-filled file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import tifffile

from .model import Segmenter
from .predict import TILE, predict

TIF_SUFFIXES = (".tif", ".tiff")
OUTPUT_SUBFOLDER = "pixrel_labels"


def write_tif(path, array: np.ndarray) -> Path:
    """Write labels or probabilities as a zlib-compressed grayscale TIFF (readable by napari, Fiji, tifffile):
    a stack of 3 or 4 slices would otherwise be written as one colour image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.asarray(array), compression="zlib", photometric="minisblack")
    return path


def read_tif(path, channels: int | None = None, labels_shape: tuple | None = None) -> tuple[np.ndarray, bool]:
    """(pixels, whether their last axis holds channels, as the file says): a grayscale model must refuse a
    colour file rather than read its colour axis as a stack of slices. Contiguous samples (RGB and other
    colour) are the last axis already. An ImageJ or OME channel axis ("C", stored first) is moved last only
    where the use calls for it: its length is a model's channel count (``channels`` > 1), or the labels have
    the image's shape without it (``labels_shape``); tifffile also labels a plain stack "C" (ImageJ files
    without axes metadata, OME's default order). Samples stored first (planar) stay a stack of planes, as
    older tifffile wrote a 3-slice array."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        pixels, axes = series.asarray(), series.axes
    if axes.endswith("S"):
        return pixels, True
    if "C" in axes:
        c = axes.index("C")
        without = pixels.shape[:c] + pixels.shape[c + 1:]
        if ((channels is not None and channels > 1 and pixels.shape[c] == channels)
                or (labels_shape is not None and tuple(labels_shape) == without)):
            return np.moveaxis(pixels, c, -1), True
    return pixels, False


def output_file_name(path, kind: str = "labels") -> str:
    """``name.tif`` (or ``name.ome.tif``) -> ``name_<kind>.tif``."""
    return f"{Path(path).stem.removesuffix('.ome')}_{kind}.tif"


def check_output_names(paths, kind: str = "labels") -> list[str]:
    """The output file name of each input; refused when two inputs (``a.tif`` and ``a.tiff``) would write one."""
    names = [output_file_name(path, kind) for path in paths]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"several images would be written to {', '.join(twice)}: predict files with the same "
                         "name into separate output folders")
    return names


def tif_files(folder) -> list[Path]:
    """The folder's TIFFs, hidden files left out: a Mac writes a "._name.tif" beside each file on a shared
    drive, which is no image."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in TIF_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise ValueError(f"no .tif/.tiff files in {folder}: choose the folder that holds the images")
    return files


def output_folder(folder, out_folder=None) -> Path:
    """The folder the label files go to (``out_folder``, by default ``folder/pixrel_labels``), made and tried
    with a temporary file: an images folder on a read-only share is found before the first image is predicted,
    not after it, and the dock can then ask where the files should go."""
    out = Path(out_folder) if out_folder is not None else Path(folder) / OUTPUT_SUBFOLDER
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise ValueError(f"the label files cannot be written to {out} ({err.strerror or err})") from None
    return out


def predict_folder(
    segmenter: Segmenter,
    folder,
    out_folder=None,
    tile: int = TILE,
    overlap: int = 64,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[tuple[int, int, Path]]:
    """Yield (images done, number of images, written label file) image by image.

    ``out_folder`` defaults to ``folder/pixrel_labels``.
    """
    files = tif_files(folder)
    names = check_output_names(files)
    out = output_folder(folder, out_folder)
    for i, (path, name) in enumerate(zip(files, names)):
        try:
            image, channels = read_tif(path, segmenter.config.in_channels)
            labels = predict(segmenter, image, tile, overlap, probabilities=False, should_stop=should_stop,
                             rgb=channels).labels
        except (ValueError, OSError, MemoryError) as err:
            raise ValueError(f"{path.name}: {err} ({i} of {len(files)} images done)") from None
        if should_stop is not None and should_stop():
            return
        try:
            written = write_tif(out / name, labels)
        except OSError as err:
            raise ValueError(f"{name} could not be written to {out} ({err.strerror or err}; {i} of "
                             f"{len(files)} images done)") from None
        yield i + 1, len(files), written
