"""Issue 5 at the engine level: bad input is refused with the problem and the fix, odd but valid input
works, faults become messages, and big inputs are predicted in bounded memory. No viewer involved."""

import re
import tracemalloc

import dask.array as da
import numpy as np
import pytest
import tifffile
import torch
from conftest import TINY, noise, scribbles

from napari_pixrel.data import Normalizer, as_planes, painted_indices, painted_planes
from napari_pixrel.folder import predict_folder
from napari_pixrel.model import ModelConfig, PixRelNet, Segmenter, resolve_device
from napari_pixrel.modelfile import load_model, save_model
from napari_pixrel.predict import iter_predict, predict
from napari_pixrel.trainer import TrainConfig, Trainer

SMALL = ModelConfig(n_classes=2, embed_dim=4, decoder_channels=(32, 16, 16, 8, 8))
QUICK = TrainConfig(steps=2, patch_size=64, batch_size=2, eval_every=0, mixed_precision=False, device="cpu",
                    cpu_threads=1)
NAMES = ["background", "cells"]


def train(image, labels, names=NAMES, val_labels=None, model=SMALL):
    """What the dock and the CLI do: cut painted planes (checking labels against the class count), train."""
    train_planes = painted_planes(image, labels, len(names))
    val = painted_planes(image, val_labels, len(names)) if val_labels is not None else []
    trainer = Trainer(train_planes, QUICK, model, val=val, class_names=names, preview=image)
    return trainer, list(trainer.run())[-1]


def with_inf_in_an_unpainted_slice():
    image, labels = noise((3, 40, 40)), scribbles((3, 40, 40), painted=[0, 1])
    image[2, 5, 5] = np.inf
    return image, labels


BAD = {
    "labels of another shape": (lambda: (noise((64, 64)), scribbles((64, 60))),
                                ["labels shape (64, 60) does not match image shape (64, 64)",
                                 "paint into a Labels layer created for this image"]),
    "labels from another stack": (lambda: (noise((3, 64, 64)), scribbles((5, 64, 64))),
                                  ["does not match", "same height, width and slices"]),
    "nothing painted": (lambda: (noise((40, 40)), np.zeros((40, 40), np.uint8)),
                        ["nothing is painted", "paint some pixels of each class first"]),
    "one class painted": (lambda: (noise((40, 40)), np.minimum(scribbles((40, 40)), 1)),
                          ["only one class is painted (background)", "paint at least two classes"]),
    "float labels": (lambda: (noise((40, 40)), scribbles((40, 40)).astype(np.float32)),
                     ["dtype float32", "labels.astype(int)"]),
    "negative labels": (lambda: (noise((40, 40)), -scribbles((40, 40)).astype(np.int8)),
                        ["negative values", "use 0 for unpainted pixels"]),
    "class above the class count": (lambda: (noise((40, 40)), scribbles((40, 40)) * 2),
                                    ["class 4 but only 2 classes", "give class names up to class 4"]),
    "constant image": (lambda: (np.full((40, 40), 7, np.uint16), scribbles((40, 40))),
                       ["constant", "check the image layer"]),
    "NaN in a painted plane": (lambda: (np.where(scribbles((40, 40)) == 1, np.nan, 0.5), scribbles((40, 40))),
                               ["NaN or infinite", "numpy.nan_to_num"]),
    "inf in an unpainted slice": (with_inf_in_an_unpainted_slice, ["NaN or infinite", "numpy.nan_to_num"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_naming_problem_and_fix_and_left_alone(case):
    make, expected = BAD[case]
    image, labels = make()
    before = image.copy(), labels.copy()
    with pytest.raises(ValueError) as err:
        train(image, labels)
    for text in expected:
        assert text in str(err.value)
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(labels, before[1])


def test_a_class_painted_only_in_validation_is_refused_with_the_fix():
    image, train_labels, val_labels = noise((2, 40, 40)), scribbles((2, 40, 40), [0]), scribbles((2, 40, 40), [1])
    val_labels[1, 20, 20] = 3
    with pytest.raises(ValueError, match="nuclei is painted only in the validation images: paint it in a training"):
        train(image, train_labels, [*NAMES, "nuclei"], val_labels=val_labels)


def test_a_validation_class_beyond_the_names_is_refused_not_a_crash():
    image, train_labels, val_labels = noise((2, 40, 40)), scribbles((2, 40, 40), [0]), scribbles((2, 40, 40), [1])
    val_labels[1, 20, 20] = 3  # two names given, a third class only in validation
    train_planes, val = painted_planes(image, train_labels), painted_planes(image, val_labels)  # as the CLI reads
    with pytest.raises(ValueError, match="class 3 is painted only in the validation images"):
        Trainer(train_planes, QUICK, val=val, class_names=NAMES)


VALID = {
    "RGB": (noise((48, 56, 3), np.uint8, 255), scribbles((48, 56))),
    "two channels": (noise((48, 56, 2)), scribbles((48, 56))),
    "smaller than the stride": (noise((20, 24)), scribbles((20, 24))),
    "7x9": (noise((7, 9)), scribbles((7, 9))),
    "stack with two painted slices": (noise((5, 48, 56)), scribbles((5, 48, 56), painted=[1, 3])),
    "time series T,Y,X": (noise((4, 48, 56)), scribbles((4, 48, 56))),
    "time series T,Z,Y,X": (noise((2, 3, 40, 48)), scribbles((2, 3, 40, 48), painted=[0, 4])),
    "16-bit": (noise((48, 56), np.uint16, 65535), scribbles((48, 56))),
    "float with a tiny range": (noise((48, 56), np.float64, 1e-4) - 5e-5, scribbles((48, 56))),
}


@pytest.mark.parametrize("case", list(VALID))
def test_these_images_train_and_predict_with_labels_of_the_labels_shape(case):
    image, labels = VALID[case]
    before = image.copy(), labels.copy()
    trainer, final = train(image, labels)
    assert final.finished and final.step == 2 and not final.message and np.isfinite(final.loss)
    assert len(trainer.train_planes) == len(painted_indices(labels))  # painted planes only
    assert final.prediction.labels.shape == labels.shape
    result = predict(trainer.segmenter, image)
    assert result.labels.shape == labels.shape and set(np.unique(result.labels)) <= {1, 2}
    assert np.isfinite(result.probabilities).all()
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(labels, before[1])


def test_8_bit_16_bit_and_float_copies_of_an_image_train_the_same(sample):
    """Normalisation makes the intensity type and scale irrelevant: the same losses, the same prediction."""
    images, labels, _ = sample
    names = ["background", "membrane", "mitochondria"]
    runs = []
    for image in (images[0], images[0].astype(np.uint16) * 257, images[0] / 255.0):
        trainer, final = train(image, labels[0], names, model=TINY)
        runs.append((final.loss, final.prediction.labels))
    for loss, prediction in runs[1:]:
        assert loss == pytest.approx(runs[0][0], rel=1e-3)
        assert (prediction == runs[0][1]).mean() > 0.99


def test_prediction_refuses_nan_whole_or_tiled_and_copes_with_constant_images(tiny_segmenter):
    for size, tile in ((100, 512), (600, 256)):
        image = np.zeros((size, size), np.float32)
        image[-1, -1] = np.nan  # in the last tile
        with pytest.raises(ValueError, match="NaN or infinite values: replace them first"):
            predict(tiny_segmenter, image, tile=tile)
    result = predict(tiny_segmenter, np.full((50, 60), 42, np.uint8))
    assert np.isfinite(result.probabilities).all() and set(np.unique(result.labels)) <= {1, 2, 3}


def test_a_model_file_of_another_channel_or_class_count_is_refused_with_the_fix(tmp_path, tiny_segmenter):
    rgb = noise((48, 56, 3), np.uint8, 255)
    trainer, _ = train(rgb, scribbles((48, 56)))
    colour = load_model(save_model(trainer.segmenter, tmp_path / "rgb.pixrel"))
    gray = load_model(save_model(tiny_segmenter, tmp_path / "gray.pixrel"))
    with pytest.raises(ValueError, match=r"expects 3 channels.*apply a model trained on images like this"):
        predict(colour, noise((48, 56)))
    with pytest.raises(ValueError, match=r"expects 1 channels.*has 3 colour channels"):
        as_planes(rgb, n_channels=gray.config.in_channels, rgb=True)
    gray_planes = painted_planes(noise((48, 56)), scribbles((48, 56)))
    with pytest.raises(ValueError, match="2 class names given for a model of 3 classes: give 3 names, or train a new"):
        Trainer(gray_planes, QUICK, class_names=NAMES, start_from=gray)
    with pytest.raises(ValueError, match="class 4 but the model has 3 classes: train a new model"):
        Trainer(painted_planes(noise((48, 56)), scribbles((48, 56)) * 2), QUICK, start_from=gray)
    with pytest.raises(ValueError, match=r"takes 1 channels, the images have 3: train a new model"):
        Trainer(painted_planes(rgb, scribbles((48, 56))), QUICK, start_from=gray)


def test_out_of_memory_names_patch_batch_or_tile_and_holds_no_tensors(monkeypatch):
    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    trainer = Trainer(painted_planes(noise((64, 64)), scribbles((64, 64))), QUICK, SMALL, class_names=NAMES)
    monkeypatch.setattr(PixRelNet, "forward", exhausted)
    with pytest.raises(MemoryError) as err:
        list(trainer.run())
    assert str(err.value) == "out of memory on cpu: lower the patch size (now 64) or the batch size (now 2)"
    assert err.value.__context__ is None  # the failed step's frames (and tensors) are not kept alive
    monkeypatch.setattr(PixRelNet, "logits", exhausted)
    with pytest.raises(MemoryError, match="out of memory on cpu predicting a 384x384 window: use a smaller tile") \
            as err:
        predict(untrained(), noise((1000, 1000)), tile=384)
    assert err.value.__context__ is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_memory_goes_back_to_the_device_when_training_ends_or_runs_out():
    planes = painted_planes(noise((256, 256)), scribbles((256, 256)))
    torch.cuda.empty_cache()
    before = torch.cuda.memory_reserved()
    trainer = Trainer(planes, TrainConfig(steps=3, patch_size=128, eval_every=0, device="cuda"), SMALL,
                      class_names=NAMES)
    list(trainer.run())
    model_bytes = torch.cuda.memory_allocated()  # the trained weights stay on the device for Apply
    assert torch.cuda.memory_reserved() - model_bytes < 32 * 2**20  # no cached batches, optimiser or eval
    huge = TrainConfig(steps=1, patch_size=8192, batch_size=8, eval_every=0, device="cuda")  # >150 GB of activations
    with pytest.raises(MemoryError, match=r"lower the patch size \(now 8192\) or the batch size \(now 8\)"):
        list(Trainer(planes, huge, SMALL, class_names=NAMES).run())
    assert torch.cuda.memory_reserved() < before + 3 * model_bytes + 256 * 2**20


def _proc_status(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+) kB", f.read()).group(1)) * 1024


def peak_rss_growth(fn) -> int:
    """Bytes of resident memory added at the peak while ``fn`` runs (the kernel's high-water mark, reset)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _proc_status("VmRSS")
    fn()
    return _proc_status("VmHWM") - base


def untrained(n_classes=2) -> Segmenter:
    net = PixRelNet(ModelConfig(n_classes=n_classes, embed_dim=4, decoder_channels=(32, 16, 16, 8, 8))).eval()
    return Segmenter(net, Normalizer((0.0,), (255.0,)), [f"c{i}" for i in range(n_classes)])


def test_a_4096_square_image_is_predicted_tile_by_tile_in_bounded_memory():
    """Whole-image inference at 4096x4096 needs about 4 GB here; tiles keep the peak near the result's size."""
    segmenter = untrained()
    image = noise((4096, 4096), np.uint8, 255)
    predict(segmenter, image[:600, :600], tile=512, overlap=32)  # warm up torch's allocator and threads
    result = {}
    growth = peak_rss_growth(lambda: result.update(p=predict(segmenter, image, tile=512, overlap=32,
                                                             probabilities=False)))
    plane_probabilities = 2 * 4096 * 4096 * 4  # float32 (K, H, W): what one plane's result needs anyway
    assert growth < 2.5 * plane_probabilities, growth / 2**20
    assert result["p"].labels.shape == (4096, 4096) and set(np.unique(result["p"].labels)) <= {1, 2}


def _traced_peak(fn) -> int:
    """Peak bytes of Python/numpy memory while ``fn`` runs (torch's own allocations are not traced)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_lazy_stack_is_read_plane_by_plane_in_memory_that_does_not_grow_with_its_length():
    segmenter = untrained()

    def stream(n):
        stack = da.random.default_rng(0).random((n, 200, 200), chunks=(1, 200, 200), dtype=np.float32) * 255
        fractions = [float((p.argmax(0) == 0).mean()) for _, _, p in iter_predict(segmenter, stack, 192, 32)]
        assert len(fractions) == n

    short, long = _traced_peak(lambda: stream(4)), _traced_peak(lambda: stream(32))
    assert long < 1.25 * short + 2**20, (short, long)
    assert long < 32 * 200 * 200 * 4 / 2  # well under the stack's own size


def test_a_folder_is_labelled_image_by_image_in_memory_that_does_not_grow_with_its_size(tmp_path):
    segmenter = untrained()
    peaks = {}
    for n in (2, 8):
        folder = tmp_path / f"f{n}"
        folder.mkdir()
        for i in range(n):
            tifffile.imwrite(folder / f"im{i}.tif", noise((300, 300), np.uint8, 255))
        peaks[n] = _traced_peak(lambda folder=folder: list(predict_folder(segmenter, folder, tile=192, overlap=32)))
        assert len(list((folder / "pixrel_labels").glob("*_labels.tif"))) == n
    assert peaks[8] < 1.25 * peaks[2] + 2**20, peaks


def test_a_grayscale_image_with_a_channel_axis_of_one_is_one_plane(tiny_segmenter):
    image = noise((48, 56), np.uint8, 255)
    with_axis = predict(tiny_segmenter, image[..., None], probabilities=False).labels
    assert with_axis.shape == (48, 56)  # not 48 planes of 56 x 1
    np.testing.assert_array_equal(with_axis, predict(tiny_segmenter, image, probabilities=False).labels)


def test_devices_this_machine_lacks_or_torch_does_not_know_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="'gpu' is not a device name: use auto, cpu, cuda"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="this machine has 0 CUDA GPU"):
            resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


def test_class_names_given_set_the_class_count_and_label_values_that_are_not_classes_are_refused():
    planes = painted_planes(noise((64, 64)), scribbles((64, 64)))  # classes 1 and 2
    assert Trainer(planes, QUICK, class_names=["a", "b", "c"]).segmenter.n_classes == 3  # 3 not painted yet
    instance = painted_planes(noise((64, 64)), scribbles((64, 64)) * 20)  # values 20 and 40
    with pytest.raises(ValueError, match="values up to 40 but only 2 different ones .20, 40.: number the classes"):
        Trainer(instance, QUICK)


def test_a_folder_names_the_file_it_cannot_predict_and_refuses_clashing_output_names(tmp_path, tiny_segmenter):
    tifffile.imwrite(tmp_path / "a_gray.tif", noise((40, 48), np.uint8, 255))
    tifffile.imwrite(tmp_path / "b_colour.tif", noise((40, 48, 3), np.uint8, 255), photometric="rgb")
    with pytest.raises(ValueError, match=r"b_colour.tif: the model expects 1 channels.*\(1 of 2 images done\)"):
        list(predict_folder(tiny_segmenter, tmp_path))
    (tmp_path / "b_colour.tif").unlink()
    tifffile.imwrite(tmp_path / "a_gray.tiff", noise((40, 48), np.uint8, 255))
    with pytest.raises(ValueError, match="several images would be written to a_gray_labels.tif"):
        list(predict_folder(tiny_segmenter, tmp_path))


def test_a_folder_skips_hidden_files_and_names_what_it_cannot_write(tmp_path, tiny_segmenter):
    tifffile.imwrite(tmp_path / "a.tif", noise((40, 48), np.uint8, 255))
    tifffile.imwrite(tmp_path / "b.tif", noise((40, 48), np.uint8, 255))
    (tmp_path / "._a.tif").write_bytes(b"\x00\x05\x16\x07 a Mac's resource fork")
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(ValueError, match="the label files cannot be written to .*taken"):
        next(predict_folder(tiny_segmenter, tmp_path, tmp_path / "taken"))
    (tmp_path / "out" / "b_labels.tif").mkdir(parents=True)  # where b's labels would go
    done = []
    with pytest.raises(ValueError, match=r"b_labels.tif could not be written to .*out .*1 of 2 images done"):
        for item in predict_folder(tiny_segmenter, tmp_path, tmp_path / "out"):
            done.append(item)
    assert [(i, n, p.name) for i, n, p in done] == [(1, 2, "a_labels.tif")]  # the hidden file is no image


def test_a_stack_with_one_painted_slice_is_cut_without_copying_the_others():
    image = noise((40, 256, 256), np.uint8, 255)
    labels = np.zeros(image.shape, np.uint8)
    labels[7] = scribbles((256, 256))
    planes = []
    peak = _traced_peak(lambda: planes.extend(painted_planes(image, labels)))
    assert len(planes) == 1 and planes[0].labels.dtype == np.int64
    np.testing.assert_array_equal(planes[0].labels, labels[7])
    assert peak < 4 * 256 * 256 * (4 + 8), peak  # a few planes' worth, not the stack's 21 MB of int64 labels
    lazy = painted_planes(da.from_array(image, chunks=(1, 256, 256)), labels)  # read for the painted slice only
    np.testing.assert_array_equal(lazy[0].image[..., 0], image[7])
