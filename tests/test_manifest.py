"""The npe2 manifest: napari finds the dock and the sample data through it."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from npe2 import PluginManager, PluginManifest

from napari_pixrel._sample_data import cell_sample, few_shot_sample

ROOT = Path(__file__).resolve().parent.parent


def test_manifest_is_valid_and_the_package_copy_is_the_same_file():
    manifest = PluginManifest.from_file(ROOT / "napari.yaml")
    assert (ROOT / "napari_pixrel" / "napari.yaml").resolve() == (ROOT / "napari.yaml").resolve()
    assert [w.display_name for w in manifest.contributions.widgets] == ["pixrel: few-shot trainer"]
    assert {s.key for s in manifest.contributions.sample_data} == {"few_shot", "cell"}


def test_a_built_wheel_ships_the_manifest_and_its_entry_point(tmp_path):
    """napari finds plugins installed from wheels through this entry point and the packaged manifest."""
    src = tmp_path / "src"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(src)], check=True)  # committed files only, no build/
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(src)], check=True, capture_output=True)
    wheel = zipfile.ZipFile(next(tmp_path.glob("napari_pixrel-*.whl")))
    packaged = wheel.read("napari_pixrel/napari.yaml").decode()
    entry_points = next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))
    assert packaged == (src / "napari.yaml").read_text()
    assert "[napari.manifest]\nnapari-pixrel = napari_pixrel:napari.yaml" in wheel.read(entry_points).decode()
    (tmp_path / "napari.yaml").write_text(packaged)
    assert PluginManifest.from_file(tmp_path / "napari.yaml").name == "napari-pixrel"


def test_installed_plugin_is_discovered():
    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-pixrel")
    assert manifest.contributions.widgets[0].display_name == "pixrel: few-shot trainer"


def test_sample_data_layers():
    image, truth, scribbles = few_shot_sample()
    assert [kind for *_, kind in (image, truth, scribbles)] == ["image", "labels", "labels"]
    assert image[0].shape == truth[0].shape == scribbles[0].shape
    assert truth[1]["metadata"]["class_names"] == ["background", "membrane", "mitochondria"]
    assert 0 < np.count_nonzero(scribbles[0]) < 0.2 * scribbles[0].size
    cell, labels = cell_sample()
    assert cell[0].ndim == 2 and labels[0].shape == cell[0].shape and not labels[0].any()


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X server (run under xvfb-run)")
def test_dock_opens_from_the_plugins_menu_path_in_a_fresh_napari():
    """As a user does it: napari (and its OpenGL context) first, then the plugin is imported by napari.

    Guards against the triton/llvmpipe crash (see napari_pixrel/_triton_guard.py), which a test process
    that imported the package before creating a viewer would never see.
    """
    script = (
        "import napari\n"
        "v = napari.Viewer(show=False)\n"
        "v.open_sample('napari-pixrel', 'few_shot')\n"
        "_, w = v.window.add_plugin_dock_widget('napari-pixrel', 'pixrel: few-shot trainer')\n"
        "print(type(w).__name__, w.labels.value.name)\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["PixrelWidget", "scribbles"]
