"""napari-pixrel: few-shot semantic segmentation with a U-Net and the pixel-relation loss.

The core (``data``, ``model``, ``losses``, ``metrics``, ``predict``, ``modelfile``,
``trainer``, ``study``, ``cli`` and the rest without a leading underscore) imports no Qt;
the napari widgets (``_widget``, ``_plots``, ``_iou_table``, ``_sample_data``) build on it.
"""

from . import _triton_guard  # noqa: F401 - first, before any module imports torch (see its docstring)

__version__ = "0.1.0"
