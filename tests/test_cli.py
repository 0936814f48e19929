"""The pixrel command end to end on real files."""

import dataclasses
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_pixrel.cli import ProgressLine, build_parser, format_iou_table, main, model_config, train_config
from napari_pixrel.decoder_choice import LIGHT_DECODER
from napari_pixrel.model import AUTO_DECODER, DECODER_CHANNELS
from napari_pixrel.modelfile import load_model, save_model
from napari_pixrel.trainer import TrainConfig, TrainReport


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
               "--no-warp", "--ema", "0.9", "--smoothness", "0.5", "--decoder", "light",
               "--out", str(model)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "membrane" in out and "validation" in out and "model written" in out
    seg = load_model(model)
    assert seg.class_names == ["background", "membrane", "mitochondria"] and seg.config.embed_dim == 2
    assert seg.config.decoder_channels == LIGHT_DECODER
    assert (seg.training["config"]["loss"], seg.training["config"]["schedule"]) == ("intra", "cosine")
    assert seg.training["config"]["keep"] == "last" and not seg.training["config"]["warp"]
    assert seg.training["config"]["ema"] == 0.9 and seg.training["config"]["smoothness"] == 0.5
    assert main(["predict", "--model", str(model), "--images", str(tmp_path / "stack.tif"),
                 "--out", str(tmp_path / "pred"), "--probabilities"]) == 0
    pred = tifffile.imread(tmp_path / "pred" / "stack_labels.tif")
    assert pred.shape == (3, 256, 256) and set(np.unique(pred)) <= {1, 2, 3}
    assert tifffile.imread(tmp_path / "pred" / "stack_probabilities.tif").shape == (3, 3, 256, 256)
    for name in ("stack_labels.tif", "stack_probabilities.tif"):  # stacks of 3, not colour images
        with tifffile.TiffFile(tmp_path / "pred" / name) as tif:
            assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.MINISBLACK


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
    with pytest.raises(SystemExit, match="the model expects 1 channels .* has 3 colour channels"):
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


@pytest.mark.parametrize("change, message", [
    (["--patch-size", "100"], "patch_size must be a multiple of 32"),
    (["--embed-dim", "-1"], "embed_dim is at least 1"),
    (["--out", "."], "is a folder: give a file name"),
])
def test_demo_refuses_unusable_flags_with_a_message_before_training(tmp_path, monkeypatch, change, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=message):
        main(["demo", "--steps", "1", "--quiet", *change])
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("out", [
    "taken",  # a file, not a folder
    pytest.param("/sys", marks=pytest.mark.skipif(not os.path.isdir("/sys"), reason="Linux's /sys")),  # no writes
])
def test_predict_refuses_an_output_folder_it_cannot_write_before_predicting(tmp_path, tiny_segmenter, out):
    """/sys exists and refuses new files even to root, so only a written test file finds it unwritable (an
    absolute ``out`` replaces tmp_path in the join)."""
    model = str(save_model(tiny_segmenter, tmp_path / "m.pt"))
    tifffile.imwrite(tmp_path / "cells.tif", np.zeros((40, 48), np.uint8))
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(SystemExit, match=f"--out: the label files cannot be written to .*{out}"):
        main(["predict", "--model", model, "--images", str(tmp_path / "cells.tif"), "--out", str(tmp_path / out)])


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


def _small_pair(tmp_path, labels=None):
    """One 64 x 64 image and its labels as files: (image path, labels path)."""
    if labels is None:
        labels = np.zeros((64, 64), np.uint8)
        labels[:8, :8], labels[-8:, -8:] = 1, 2
    tifffile.imwrite(tmp_path / "a.tif", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    tifffile.imwrite(tmp_path / "a_labels.tif", labels)
    return str(tmp_path / "a.tif"), str(tmp_path / "a_labels.tif")


@pytest.mark.parametrize("change, message", [
    ({"--images": "missing.tif"}, "missing.tif"),
    ({"--out": "FOLDER"}, "is a folder: give a file name"),
    ({"--batch-size": "0"}, "batch_size is at least 1"),
    ({"--patch-size": "0"}, "patch_size must be a multiple of 32"),
    ({"--encoder": "resnet81"}, "encoder 'resnet81' is not one segmentation-models-pytorch"),
    ({"--device": "gpu"}, "device 'gpu' is not a device name"),
    ({"--embed-dim": "0"}, "embed_dim is at least 1"),
])
def test_train_refuses_unusable_files_and_flags_with_a_message_before_training(tmp_path, change, message):
    image, labels = _small_pair(tmp_path)
    flags = {"--images": image, "--labels": labels, "--out": str(tmp_path / "m.pt"), "--steps": "1", **change}
    if flags["--out"] == "FOLDER":
        flags["--out"] = str(tmp_path)
    with pytest.raises(SystemExit, match=message):
        main(["train", *(part for flag, value in flags.items() for part in (flag, value))])
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("values, message", [((1, 255), "values up to 255 but only 2 different ones (1, 255)"),
                                             ((1,), "add 1 to a mask that numbers its classes from 0")])
def test_masks_not_numbered_as_classes_are_refused_with_the_fix(tmp_path, values, message):
    labels = np.zeros((64, 64), np.uint8)
    for i, v in enumerate(values):
        labels[i * 8:(i + 1) * 8] = v
    image, labels = _small_pair(tmp_path, labels)
    with pytest.raises(SystemExit, match=re.escape(message)):
        main(["train", "--images", image, "--labels", labels, "--out", str(tmp_path / "m.pt")])


def test_a_channel_first_imagej_file_trains_and_predicts_as_channels(tmp_path, tiny_segmenter):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (2, 64, 64), dtype=np.uint8)  # C, Y, X as Fiji saves two channels
    tifffile.imwrite(tmp_path / "two.tif", image, imagej=True, metadata={"axes": "CYX"})
    _, labels = _small_pair(tmp_path)
    model = tmp_path / "m.pt"
    model.write_bytes(b"an older model")  # overwritten, as users retrain into one file
    assert main(["train", "--images", str(tmp_path / "two.tif"), "--labels", labels, "--steps", "1",
                 "--patch-size", "64", "--quiet", "--out", str(model)]) == 0
    assert load_model(model).config.in_channels == 2
    assert main(["predict", "--model", str(model), "--images", str(tmp_path / "two.tif"),
                 "--out", str(tmp_path / "pred")]) == 0
    assert tifffile.imread(tmp_path / "pred" / "two_labels.tif").shape == (64, 64)
    # a plain stack saved for ImageJ without axes is labelled "C" by tifffile: a grayscale model predicts its slices
    tifffile.imwrite(tmp_path / "stack.tif", image[[0, 1, 0]], imagej=True)
    gray = str(save_model(tiny_segmenter, tmp_path / "gray.pt"))
    assert main(["predict", "--model", gray, "--images", str(tmp_path / "stack.tif"),
                 "--out", str(tmp_path / "g")]) == 0
    assert tifffile.imread(tmp_path / "g" / "stack_labels.tif").shape == (3, 64, 64)


def test_the_decoder_flag_is_auto_unless_given():
    parse = build_parser().parse_args
    files = ["train", "--images", "a.tif", "--labels", "a_labels.tif", "--out", "model.pt"]
    assert model_config(parse(files), 3).decoder_channels == AUTO_DECODER  # the Trainer chooses for its device
    assert model_config(parse(files + ["--decoder", "standard"]), 3).decoder_channels == DECODER_CHANNELS


@pytest.mark.parametrize("command", ["train", "predict", "demo", "bench"])
def test_every_command_prints_its_help(command, capsys):
    # argparse reads "%" in help texts as a format: the evidence quoted in --loss's help has percentages.
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--help" in help_text and ("under 95% painted" in help_text) == (command in ("train", "demo"))


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_overwrites_itself_on_a_terminal_and_writes_lines_to_a_log():
    reports = [TrainReport(step=i, max_steps=100, elapsed=float(i), progress=i / 100, loss=1.0, ce=1.0, relation=0.0,
                           relation_weight=0.0, val_iou={"mIoU": 0.5} if i % 25 == 0 else None)
               for i in range(1, 101)]
    reports.append(dataclasses.replace(reports[-1], finished=True))
    terminal, log = _Terminal(), io.StringIO()
    for stream in (terminal, log):
        progress = ProgressLine(stream)
        for report in reports:
            progress(report)
    assert terminal.getvalue().count("\r") == 101 and terminal.getvalue().count("\n") == 1
    steps = [int(re.search(r"step +(\d+)", line).group(1)) for line in log.getvalue().splitlines()]
    assert steps == [1, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100]  # tenths and evaluations, once each
    assert "\r" not in log.getvalue()
