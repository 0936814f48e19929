"""Model files: round trip, atomic writes, and refusal of anything that is not a model."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile
import torch

from napari_pixrel import modelfile
from napari_pixrel.model import resolve_device
from napari_pixrel.modelfile import ModelFileError, load_model, save_model
from napari_pixrel.predict import predict


def test_round_trip_gives_the_same_prediction(tmp_path, sample, tiny_segmenter):
    path = save_model(tiny_segmenter, tmp_path / "m.pt")
    loaded = load_model(path)
    assert loaded.class_names == tiny_segmenter.class_names
    assert loaded.config == tiny_segmenter.config
    assert loaded.normalizer == tiny_segmenter.normalizer
    assert loaded.training["config"]["loss"] == "none" and loaded.training["config"]["steps"] == 4
    a = predict(tiny_segmenter, sample[0][5]).probabilities
    b = predict(loaded, sample[0][5]).probabilities
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind
    convolutions = [w for w in loaded.net.parameters() if w.dim() == 4 and w.shape[1] > 1]
    assert convolutions and all(w.is_contiguous(memory_format=torch.channels_last) for w in convolutions)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_model_loads_where_training_would_run_unless_told(tmp_path, tiny_segmenter, monkeypatch):
    """Like the trainer, load_model defaults to auto (CUDA when there is one), so the README's
    ``predict(load_model(path), stack)`` uses a GPU where one is; device names are checked as the trainer's."""
    path = save_model(tiny_segmenter, tmp_path / "m.pt")
    asked = []
    monkeypatch.setattr(modelfile, "resolve_device", lambda name: asked.append(name) or resolve_device(name))
    assert load_model(path).device == resolve_device("auto") and asked == ["auto"]
    assert load_model(path, device=torch.device("cpu")).device == torch.device("cpu")
    with pytest.raises(ValueError, match="not a device name"):
        load_model(path, device="gpu")

def test_pickled_code_is_refused_without_running_it(tmp_path, tiny_segmenter, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "napari-pixrel-model", "payload": Evil()}, path)
    with pytest.raises(ModelFileError, match="refused"):
        load_model(path)
    assert not (tmp_path / "pwned").exists()
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "plain.pkl")
    assert not (tmp_path / "pwned").exists()


def test_a_model_that_cannot_be_saved_is_named_with_the_reason(tmp_path, tiny_segmenter):
    (tmp_path / "notes").write_text("a file where a folder would be")
    with pytest.raises(OSError, match=r"the model could not be saved to .*notes/m.pt \("):
        save_model(tiny_segmenter, tmp_path / "notes" / "m.pt")
    (tmp_path / "taken.pt").mkdir()
    with pytest.raises(OSError, match=r"the model could not be saved to .*taken.pt \("):
        save_model(tiny_segmenter, tmp_path / "taken.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "taken.pt"]  # no temporary file left


def test_truncated_corrupted_and_foreign_files(tmp_path, tiny_segmenter):
    good = save_model(tiny_segmenter, tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        load_model(tmp_path / "cut.pt")
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "noise.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a napari-pixrel model"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="no model file"):
        load_model(tmp_path / "missing.pt")
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((4, 4), np.uint8))  # an image given for the model
    with pytest.raises(ModelFileError, match="is not a napari-pixrel model file") as refused:
        load_model(tmp_path / "stack.tif")
    assert "code" not in str(refused.value)


def test_a_killed_save_leaves_the_previous_file_intact(tmp_path, tiny_segmenter):
    path = save_model(tiny_segmenter, tmp_path / "model.pt")
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, signal, torch
        import napari_pixrel.modelfile as mf
        from napari_pixrel.modelfile import load_model
        seg = load_model({str(path)!r})
        real_save = torch.save
        def save_then_die(obj, f):
            real_save(obj, f)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)  # killed after writing, before the rename
        mf.torch.save = save_then_die
        mf.save_model(seg, {str(path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert path.read_bytes() == before
    load_model(path)


@pytest.mark.parametrize("change", ["unknown encoder", "missing names", "unknown setting", "other weights"])
def test_a_model_file_this_version_cannot_rebuild_is_refused_with_the_reason(tmp_path, tiny_segmenter, change):
    payload = torch.load(save_model(tiny_segmenter, tmp_path / "good.pt"), weights_only=True)
    if change == "unknown encoder":
        payload["config"]["encoder"] = "no-such-encoder"
    elif change == "missing names":
        del payload["class_names"]
    elif change == "unknown setting":
        payload["config"]["attention"] = True
    else:
        payload["state_dict"] = {k: v[..., :1] if v.ndim else v for k, v in payload["state_dict"].items()}
    torch.save(payload, tmp_path / "changed.pt")
    with pytest.raises(ModelFileError, match="changed.pt cannot be rebuilt by this napari-pixrel"):
        load_model(tmp_path / "changed.pt")
