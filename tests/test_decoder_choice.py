"""The "auto" decoder: chosen for the device where training runs, recorded as widths in the model file."""

import pytest

import napari_pixrel.trainer as trainer_module
from napari_pixrel.data import painted_planes
from napari_pixrel.decoder_choice import LIGHT_DECODER, choose_decoder
from napari_pixrel.model import AUTO_DECODER, DECODER_CHANNELS, ModelConfig, PixRelNet
from napari_pixrel.modelfile import load_model, save_model
from napari_pixrel.sample_data import CLASS_NAMES
from napari_pixrel.trainer import TrainConfig, Trainer

AUTO = ModelConfig(n_classes=3, decoder_channels=AUTO_DECODER)


def test_auto_is_light_where_bf16_is_emulated_and_smps_decoder_elsewhere():
    light, said = choose_decoder(AUTO, emulated_bf16=True)
    assert light.decoder_channels == LIGHT_DECODER and "light" in said and "bf16" in said
    standard, said = choose_decoder(AUTO, emulated_bf16=False)
    assert standard.decoder_channels == DECODER_CHANNELS and said == ""


def test_widths_given_are_kept_on_every_device():
    given = ModelConfig(n_classes=3, decoder_channels=(64, 32, 16, 16, 8))
    for emulated in (True, False):
        assert choose_decoder(given, emulated) == (given, "")


def test_an_unresolved_decoder_builds_no_network_and_other_words_are_refused():
    with pytest.raises(ValueError, match="resolve it first"):
        PixRelNet(AUTO)
    with pytest.raises(ValueError, match="neither widths nor 'auto'"):
        ModelConfig(n_classes=3, decoder_channels="small")


@pytest.mark.parametrize("native", [True, False])
def test_the_trainers_own_network_gets_the_decoder_of_its_device_and_says_so(sample, tmp_path, monkeypatch,
                                                                           native):
    """Both kinds of CPU on this one: the trainer is told whether its CPU computes bf16 natively."""
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: native)
    images, _, scribbles = sample
    trainer = Trainer(painted_planes(images[0], scribbles[0]),
                      TrainConfig(steps=1, patch_size=64, batch_size=2, eval_every=0, device="cpu"),
                      class_names=list(CLASS_NAMES))
    first = next(trainer.run())
    expected = DECODER_CHANNELS if native else LIGHT_DECODER
    assert trainer.segmenter.config.decoder_channels == expected
    assert ("auto decoder: light" in first.message) == (not native)
    save_model(trainer.segmenter, tmp_path / "model.pt")
    assert load_model(tmp_path / "model.pt").config.decoder_channels == expected
