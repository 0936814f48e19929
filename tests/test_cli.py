"""The pixrel command end to end on real files."""

import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_pixrel.cli import build_parser, format_iou_table, main, train_config
from napari_pixrel.modelfile import load_model, save_model
from napari_pixrel.trainer import TrainConfig


def test_train_then_predict_on_tifs(tmp_path, sample, capsys):
    images, labels, scribbles = sample
    for i in range(3):
        tifffile.imwrite(tmp_path / f"img{i}.tif", images[i])
        tifffile.imwrite(tmp_path / f"lab{i}.tif", scribbles[i])
    tifffile.imwrite(tmp_path / "stack.tif", images[3:6])
    model = tmp_path / "model.pt"
    rc = main(["train", "--images", *(str(tmp_path / f"img{i}.tif") for i in range(2)),
               "--labels", *(str(tmp_path / f"lab{i}.tif") for i in range(2)),
               "--val-images", str(tmp_path / "img2.tif"), "--val-labels", str(tmp_path / "lab2.tif"),
               "--class-names", "background", "membrane", "mitochondria",
               "--loss", "intra", "--steps", "3", "--patch-size", "64", "--embed-dim", "2", "--keep", "last",
               "--no-warp", "--ema", "0.9", "--smoothness", "0.5",
               "--out", str(model)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "membrane" in out and "validation" in out and "model written" in out
    seg = load_model(model)
    assert seg.class_names == ["background", "membrane", "mitochondria"] and seg.config.embed_dim == 2
    assert (seg.training["config"]["loss"], seg.training["config"]["schedule"]) == ("intra", "cosine")
    assert seg.training["config"]["keep"] == "last" and not seg.training["config"]["warp"]
    assert seg.training["config"]["ema"] == 0.9 and seg.training["config"]["smoothness"] == 0.5
    assert main(["predict", "--model", str(model), "--images", str(tmp_path / "stack.tif"),
                 "--out", str(tmp_path / "pred"), "--probabilities"]) == 0
    pred = tifffile.imread(tmp_path / "pred" / "stack_labels.tif")
    assert pred.shape == (3, 256, 256) and set(np.unique(pred)) <= {1, 2, 3}
    assert tifffile.imread(tmp_path / "pred" / "stack_probabilities.tif").shape == (3, 3, 256, 256)


def test_bad_input_gives_a_message_not_a_traceback(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((32, 32), np.uint8))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((32, 33), np.uint8))
    proc = subprocess.run([sys.executable, "-m", "napari_pixrel.cli", "train", "--images", str(tmp_path / "a.tif"),
                           "--labels", str(tmp_path / "b.tif"), "--out", str(tmp_path / "m.pt")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "does not match image shape" in proc.stderr and "Traceback" not in proc.stderr


def test_predict_refuses_an_rgb_file_for_a_grayscale_model_and_clashing_output_names(tmp_path, tiny_segmenter):
    model = str(save_model(tiny_segmenter, tmp_path / "gray.pt"))
    tifffile.imwrite(tmp_path / "colour.tif", np.zeros((40, 48, 3), np.uint8), photometric="rgb")
    with pytest.raises(SystemExit, match="the model expects 1 channels .* an RGB image with 3 channels"):
        main(["predict", "--model", model, "--images", str(tmp_path / "colour.tif"), "--out", str(tmp_path / "o")])
    assert not list((tmp_path / "o").glob("*.tif"))  # nothing written as if it were 40 slices
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        tifffile.imwrite(tmp_path / folder / "cells.tif", np.zeros((40, 48), np.uint8))
    with pytest.raises(SystemExit, match="several images would be written to cells_labels.tif"):
        main(["predict", "--model", model, "--images", str(tmp_path / "a/cells.tif"), str(tmp_path / "b/cells.tif"),
              "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("painted, message", [(0, "nothing is painted"), (1, "only one class is painted")])
def test_train_with_too_little_painted_names_the_fix(tmp_path, painted, message):
    labels = np.zeros((32, 32), np.uint8)
    labels[:4, :4] = painted
    tifffile.imwrite(tmp_path / "a.tif", np.arange(32 * 32, dtype=np.uint16).reshape(32, 32))
    tifffile.imwrite(tmp_path / "b.tif", labels)
    with pytest.raises(SystemExit, match=message):
        main(["train", "--images", str(tmp_path / "a.tif"), "--labels", str(tmp_path / "b.tif"),
              "--out", str(tmp_path / "m.pt")])


def test_demo_prints_the_iou_table_and_writes_the_overlay(tmp_path, capsys):
    png = tmp_path / "demo.png"
    assert main(["demo", "--steps", "3", "--patch-size", "64", "--quiet", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    for name in ("background", "membrane", "mitochondria", "mIoU"):
        assert name in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_time_budget_alone_lifts_the_step_limit():
    parse = build_parser().parse_args
    files = ["train", "--images", "a.tif", "--labels", "a_labels.tif", "--out", "model.pt"]
    assert train_config(parse(files)).steps == TrainConfig.steps
    timed = train_config(parse(files + ["--minutes", "5"]))
    assert timed.steps is None and timed.minutes == 5  # not cut at 600 steps, about 2.5 minutes on 2 cores
    assert train_config(parse(files + ["--minutes", "5", "--steps", "100"])).steps == 100


def test_iou_table_formatting():
    table = format_iou_table({"val": {"a": 0.5, "b": float("nan"), "mIoU": 0.5}})
    assert "50.0" in table and "-" in table.splitlines()[2]
