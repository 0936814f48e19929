"""The "auto" decoder: smp's U-Net decoder, or its widths halved on a CPU that computes bf16 only by emulation.

Such a CPU (AVX2 only: most laptops and older servers) trains in fp32, where the decoder's full-resolution
layers run far below the matmul rate, and halving the decoder's widths made a training step 0.63 times as long
on a 2-core AVX2 EPYC (1.033 against 1.650 s; benchmarks/light_model.py). Within the same 5 minutes it fits
about 1.5 times as many steps, and on the paper's EM tiles (seed 0, five 4-tile subsets each, paired runs) it
scored +2.6 val / +2.8 test mIoU with scribbles (4 of 5 subsets) and +0.8 val / -1.4 test with full masks (3 of
5 on val, 1 of 5 on test): 7 of 10 pairs above 0 on val and a positive val mean with each kind of labels, the
rule set before the runs (docs/relation-loss.md, "On a CPU without native bf16"); a second seed with full
masks then gave +3.5 val / +3.1 test (over both seeds +2.2 val, 6 of 10 pairs), and with scribbles +1.5 val /
+1.8 test (over both seeds +2.1 val, +2.3 test, 7 of 10 pairs each). At the default budget of 600 steps
(fp32, seed 0) the two scored about the same: with scribbles +0.5 val (4 of 5), -0.8 test (a second seed
-0.4 val / -0.9 test, a third on three subsets +2.1 / +1.4; over the 13 pairs +0.5 val, -0.3 test); with full masks
-0.9 +- 4.0 val (2 of 5), -1.0 test, inside the 1 point the rule set before the runs allowed, by 0.1, and a
second seed gave +2.3 val / +2.6 test (over both seeds +0.7 +- 4.6 val, +0.8 test, 5 of 10 pairs). Where
bf16 is native (a GPU, an AVX-512 BF16 or AMX CPU) a step is several times shorter, both decoders fit over 1000
steps in 5 minutes on the AVX-512 BF16 CPU measured, and the halved one scored the same within the noise, so
smp's decoder stays there.
"""

from __future__ import annotations

from dataclasses import replace

from .model import AUTO_DECODER, DECODER_CHANNELS, ModelConfig

LIGHT_DECODER = (128, 64, 32, 16, 16)  # smp's widths halved, the last kept at 16: the class groups' input
DECODERS = {"auto": AUTO_DECODER, "standard": DECODER_CHANNELS, "light": LIGHT_DECODER}


def choose_decoder(config: ModelConfig, emulated_bf16: bool) -> tuple[ModelConfig, str]:
    """(``config`` with an "auto" decoder resolved, a sentence for the user; "" when it was not "auto").
    ``emulated_bf16``: training runs on a CPU without native bf16 (trainer.native_bf16)."""
    if config.decoder_channels != AUTO_DECODER:
        return config, ""
    if emulated_bf16:
        return replace(config, decoder_channels=LIGHT_DECODER), (
            "auto decoder: light (this CPU has no native bf16, so training runs in fp32, where the light "
            "decoder's steps take about 0.6 times as long: in the same minutes it scored higher with scribbles and "
            "about the same with full masks, in the same number of steps the same)")
    return replace(config, decoder_channels=DECODER_CHANNELS), ""
