"""The network: an smp U-Net with a per-class embedding head, and the bundle
(network + everything needed to apply it) that training produces.

``head="groups"`` is the paper's design: the U-Net's last layer gives K groups
of D channels (one group per class) and a 1x1 convolution over the
concatenated groups gives the K logits, so the relation loss shapes the very
features that classify. ``head="projection"`` keeps a plain logit head and
gives the relation loss its own projection head (used only in training).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import segmentation_models_pytorch as smp
import torch
from torch import nn

from .data import Normalizer

HEADS = ("groups", "projection")
DECODER_CHANNELS = (256, 128, 64, 32, 16)  # smp's U-Net decoder
AUTO_DECODER = "auto"  # chosen for the device by the Trainer (decoder_choice.py)
STRIDE = 32  # every smp encoder used here downsamples 5 times


@dataclass(frozen=True)
class ModelConfig:
    """Architecture; stored in the model file so the network can be rebuilt."""

    n_classes: int
    in_channels: int = 1
    encoder: str = "resnet18"
    embed_dim: int = 8
    head: str = "groups"
    decoder_channels: tuple[int, ...] | str = DECODER_CHANNELS  # or AUTO_DECODER, resolved before building

    def __post_init__(self):
        if self.n_classes < 2:
            raise ValueError("segmentation needs at least 2 classes")
        if self.head not in HEADS:
            raise ValueError(f"head {self.head!r} is not one of {HEADS}")
        if self.embed_dim < 1:
            raise ValueError(f"embed_dim is at least 1 (channels per class), not {self.embed_dim}")
        if not (self.encoder.startswith("tu-") or self.encoder in smp.encoders.get_encoder_names()):  # tu-: timm's
            raise ValueError(f"encoder {self.encoder!r} is not one segmentation-models-pytorch "
                             f"{smp.__version__} has (e.g. resnet18, resnet34, mobilenet_v2, efficientnet-b0)")
        if self.decoder_channels != AUTO_DECODER:
            if isinstance(self.decoder_channels, str):
                raise ValueError(f"decoder_channels {self.decoder_channels!r} is neither widths nor {AUTO_DECODER!r}")
            object.__setattr__(self, "decoder_channels", tuple(int(c) for c in self.decoder_channels))

    def to_dict(self) -> dict:
        d = asdict(self)
        if isinstance(self.decoder_channels, tuple):
            d["decoder_channels"] = list(self.decoder_channels)
        return d


class PixRelNet(nn.Module):
    """U-Net returning (logits (B, K, H, W), embeddings (B, K, D, H, W))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.decoder_channels == AUTO_DECODER:
            raise ValueError("an 'auto' decoder is chosen for a device: resolve it first (decoder_choice.py)")
        self.config = config
        k, d = config.n_classes, config.embed_dim
        last = config.decoder_channels[-1]
        self.unet = smp.Unet(
            config.encoder,
            encoder_weights=None,
            in_channels=config.in_channels,
            classes=k * d,
            decoder_channels=config.decoder_channels,
        )
        if config.head == "groups":
            self.logit_head = nn.Conv2d(k * d, k, kernel_size=1)
        else:
            self.unet.segmentation_head = nn.Identity()
            self.embed_head = nn.Conv2d(last, k * d, kernel_size=3, padding=1)
            self.logit_head = nn.Conv2d(last, k, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.unet(x)
        b, _, h, w = features.shape
        k, d = self.config.n_classes, self.config.embed_dim
        if self.config.head == "groups":
            embeddings = features
        else:
            embeddings = self.embed_head(features)
        return self.logit_head(features), embeddings.reshape(b, k, d, h, w)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Inference path: logits only (the projection head is skipped)."""
        features = self.unet(x)
        return self.logit_head(features)


@dataclass
class Segmenter:
    """A trained network plus everything needed to apply and describe it."""

    net: PixRelNet
    normalizer: Normalizer
    class_names: list[str]
    training: dict = field(default_factory=dict)  # loss settings and history

    @property
    def config(self) -> ModelConfig:
        return self.net.config

    @property
    def n_classes(self) -> int:
        return self.net.config.n_classes

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device


def default_class_names(n_classes: int) -> list[str]:
    return [f"class {i}" for i in range(1, n_classes + 1)]


def resolve_device(device: str) -> torch.device:
    """The device of a name: auto (CUDA when there is one, else the CPU) or a torch device name; a name torch
    does not know, or a device this machine lacks, is refused here rather than at the first step."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r} is not a device name: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not (torch.cuda.is_available()
                                         and (resolved.index or 0) < torch.cuda.device_count()):
        raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s); "
                         "use auto or cpu")
    return resolved
