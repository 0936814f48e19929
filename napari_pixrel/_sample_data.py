"""napari sample data: ready-to-train layers for File > Open Sample.

Labels layers carry their class names in ``metadata["class_names"]``; the
trainer dock picks them up when the layer is chosen.
"""

from __future__ import annotations

import numpy as np

from .sample_data import CLASS_NAMES, load_sample_data


def few_shot_sample():
    """Six synthetic EM-like images, their full ground truth (hidden) and sparse scribbles to train on."""
    images, labels, scribbles = load_sample_data()
    names = {"class_names": list(CLASS_NAMES)}
    return [
        (images, {"name": "pixrel sample"}, "image"),
        (labels, {"name": "ground truth", "metadata": names, "visible": False, "opacity": 0.5}, "labels"),
        (scribbles, {"name": "scribbles", "metadata": names}, "labels"),
    ]


def cell_sample():
    """scikit-image's light-microscopy cell (ships with it, no download) and an empty labels layer."""
    from skimage.data import cell

    image = cell()
    return [
        (image, {"name": "cell"}, "image"),
        (np.zeros(image.shape, np.uint8),
         {"name": "cell labels", "metadata": {"class_names": ["background", "cell"]}}, "labels"),
    ]
