"""Is channels_last still the faster layout for training and inference on a CPU that computes in fp32?

The trainer and the predictor keep the network and its input channels_last, chosen where bf16 autocast ran on
an AVX-512 BF16 CPU. On an AVX2-only CPU the step runs in fp32 and oneDNN's fp32 weight gradients were slower
channels_last than in the default layout for the decoder's full-resolution layers
(results/cpu-avx2/profile-step.txt). This times the product's training step (the U-Net, cross-entropy, fused
Adam, batch 4 of 256 x 256 random data; a step's time does not depend on the values), in both layouts,
interleaved step by step after warm-up, with bf16 autocast only where the CPU computes bf16 natively; then
``predict`` of a 1024 x 1024 image (its input always channels_last) by the network with its weights in each
layout (a model file loaded before the nineteenth session had them in the default layout), interleaved.
Writes the medians and their ratios to one JSON file.

    .venv/bin/python benchmarks/memory_format_step.py [--steps 10]
        [--out benchmarks/results/cpu-avx2/memory-format-step.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from napari_pixrel.bench import environment
from napari_pixrel.data import Normalizer
from napari_pixrel.losses import cross_entropy
from napari_pixrel.model import ModelConfig, PixRelNet, Segmenter
from napari_pixrel.predict import predict
from napari_pixrel.trainer import native_bf16

LAYOUTS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
WARMUP = 2
PREDICTIONS = 5  # timed predictions per layout, after one each


def step_function(layout: torch.memory_format, bf16: bool):
    """One training step of a fresh network in ``layout``, as the trainer takes it."""
    torch.manual_seed(0)
    net = PixRelNet(ModelConfig(n_classes=3)).train().to(memory_format=layout)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    x = torch.randn(4, 1, 256, 256).contiguous(memory_format=layout)
    target = torch.randint(0, 3, (4, 256, 256))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, _ = net(x)
        loss = cross_entropy(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def interleaved(functions: dict, warmup: int, count: int) -> dict[str, list[float]]:
    """Seconds of ``count`` calls of each function after ``warmup``, alternating which goes first."""
    seconds = {name: [] for name in functions}
    for i in range(warmup + count):
        for name in (list(functions) if i % 2 else list(functions)[::-1]):
            start = time.perf_counter()
            functions[name]()
            if i >= warmup:
                seconds[name].append(time.perf_counter() - start)
    return seconds


def predict_function(layout: torch.memory_format, image):
    """One prediction of ``image`` by a fresh network whose weights are in ``layout``."""
    torch.manual_seed(0)
    net = PixRelNet(ModelConfig(n_classes=3)).eval().to(memory_format=layout)
    segmenter = Segmenter(net, Normalizer.fit([image[..., None]]), ["a", "b", "c"])  # fit on (H, W, C) planes
    return lambda: predict(segmenter, image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per layout")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cpu-avx2" /
                                             "memory-format-step.json"))
    args = parser.parse_args()
    cpu = torch.device("cpu")
    bf16 = native_bf16(cpu)
    seconds = interleaved({name: step_function(layout, bf16) for name, layout in LAYOUTS.items()}, WARMUP,
                          args.steps)
    median = {name: round(statistics.median(s), 4) for name, s in seconds.items()}
    image = torch.rand(1024, 1024, generator=torch.Generator().manual_seed(0)).numpy()
    inference = interleaved({name: predict_function(layout, image) for name, layout in LAYOUTS.items()}, 1,
                            PREDICTIONS)
    inference_median = {name: round(statistics.median(s), 3) for name, s in inference.items()}
    result = {**environment(cpu), "bf16_autocast": bf16, "batch": [4, 1, 256, 256], "warmup": WARMUP,
              "seconds_per_step": {name: [round(t, 4) for t in s] for name, s in seconds.items()},
              "median_seconds_per_step": median,
              "step_contiguous_over_channels_last": round(median["contiguous"] / median["channels_last"], 3),
              "seconds_per_1024_prediction": {name: [round(t, 3) for t in s] for name, s in inference.items()},
              "median_seconds_per_1024_prediction": inference_median,
              "prediction_contiguous_over_channels_last": round(
                  inference_median["contiguous"] / inference_median["channels_last"], 3),
              "command": f"python benchmarks/memory_format_step.py --steps {args.steps}"}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(median, result["step_contiguous_over_channels_last"], inference_median,
          result["prediction_contiguous_over_channels_last"])


if __name__ == "__main__":
    main()
