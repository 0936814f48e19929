"""The core imports no Qt and nothing from the napari layer: the plugin builds on the core, never the reverse."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "napari_pixrel"
CORE = sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_"))
GUI_ROOTS = {"qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "superqt", "vispy"}


def test_core_modules_import_no_qt_when_loaded():
    code = (f"import sys\nfor m in {CORE!r}: __import__('napari_pixrel.' + m)\n"
            f"print(sorted(k for k in sys.modules if k.split('.')[0] in {sorted(GUI_ROOTS)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_core_sources_never_import_the_widget_modules():
    for name in CORE:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").lstrip(".").startswith(("_widget", "_plots", "_iou_table",
                                                                         "_throttle", "_sample_data")), name
                assert (node.module or "").split(".")[0] not in GUI_ROOTS, name
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & GUI_ROOTS, name
