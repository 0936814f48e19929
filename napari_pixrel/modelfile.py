"""One model file: weights plus everything needed to use the model.

Saved with ``torch.save`` of plain tensors, numbers, strings, lists and dicts,
and loaded with ``torch.load(weights_only=True)``, so opening a model file can
never execute code from it. Writes go to a temporary file in the same folder
that is then renamed over the target: a crash mid-save leaves the previous
file intact.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import segmentation_models_pytorch as smp
import torch

from .data import Normalizer
from .model import ModelConfig, PixRelNet, Segmenter, resolve_device

FORMAT = "napari-pixrel-model"
VERSION = 1


class ModelFileError(ValueError):
    """A file that is not a usable napari-pixrel model."""


def save_model(segmenter: Segmenter, path) -> Path:
    """Atomically write ``segmenter`` to ``path``; an OSError names ``path`` (not the temporary file)."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": segmenter.config.to_dict(),
        "normalizer": segmenter.normalizer.to_dict(),
        "class_names": list(segmenter.class_names),
        "training": segmenter.training,
        "state_dict": {k: v.detach().cpu() for k, v in segmenter.net.state_dict().items()},
    }
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):  # e.g. no such folder, a full disk; a file already at path is left as it was
            raise OSError(f"the model could not be saved to {path} ({err.strerror or err})") from None
        raise
    return path


def load_model(path, device: str | torch.device = "auto") -> Segmenter:
    """Read a model file safely; raise ModelFileError with a plain reason if it is not one. ``device``: auto
    (CUDA when there is one, as training) or a device name or torch device."""
    path, device = Path(path), resolve_device(str(device))  # a bad device name is refused before any reading
    if not path.is_file():
        raise ModelFileError(f"no model file at {path}")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as err:
        raise ModelFileError(f"{path.name} cannot be read ({err.strerror or err})") from None
    if head != b"PK\x03\x04":  # save_model writes a zip archive (a cut one still starts so: damaged, below)
        raise ModelFileError(f"{path.name} is not a napari-pixrel model file (not the zip archive training saves)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ModelFileError(
            f"{path.name} was refused: it contains objects other than weights and settings "
            f"(possibly code), and is not loaded for safety ({str(err).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise ModelFileError(f"{path.name} is damaged or truncated and cannot be read ({err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path.name} is not a napari-pixrel model file")
    if payload.get("version", 0) > VERSION:
        raise ModelFileError(f"{path.name} was written by a newer napari-pixrel; upgrade to read it")
    try:
        net = PixRelNet(ModelConfig(**payload["config"]))
        net.load_state_dict(payload["state_dict"])
        normalizer = Normalizer.from_dict(payload["normalizer"])
        class_names = list(payload["class_names"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # missing or unknown fields, other weights
        raise ModelFileError(f"{path.name} cannot be rebuilt by this napari-pixrel and "
                             f"segmentation-models-pytorch {smp.__version__} ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else err!r})") from None
    # channels_last as the trainer keeps it: predicting a 1024 x 1024 image in fp32 took 1.055 times as long
    # with the weights in the default layout (benchmarks/memory_format_step.py)
    net = net.to(device, memory_format=torch.channels_last).eval()
    return Segmenter(net=net, normalizer=normalizer, class_names=class_names,
                     training=payload.get("training", {}))
