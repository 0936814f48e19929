"""What bf16 autocast does to a training step on this CPU: the default U-Net's forward and backward (batch 4
of 256 x 256, Adam, cross-entropy), in fp32 and under bf16 autocast, median of ``--steps`` after one warm-up.

On a CPU with AVX-512 BF16 or AMX, autocast was about 2 times faster (the cost files before the eighteenth
session); on one without (AVX2 only) oneDNN emulates bf16, so the Trainer autocasts only where
``trainer.native_bf16`` says the device computes it natively (the result's ``device.bf16``). Writes one
JSON file of both medians and their ratio.

    .venv/bin/python benchmarks/bf16_step.py [--steps 3] [--out benchmarks/results/cpu/bf16-step.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from napari_pixrel.bench import environment
from napari_pixrel.model import ModelConfig, PixRelNet


def step_seconds(bf16: bool, steps: int) -> float:
    torch.manual_seed(0)
    net = PixRelNet(ModelConfig(n_classes=3)).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), 1e-3, fused=True)
    x = torch.randn(4, 1, 256, 256).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 3, (4, 256, 256))
    times = []
    for _ in range(1 + steps):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, _ = net(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/cpu/bf16-step.json")
    args = parser.parse_args()
    fp32, bf16 = step_seconds(False, args.steps), step_seconds(True, args.steps)
    result = {**environment(torch.device("cpu")), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "step_seconds": {"fp32": round(fp32, 3), "bf16_autocast": round(bf16, 3)},
              "bf16_over_fp32": round(bf16 / fp32, 2),
              "command": f"python benchmarks/bf16_step.py --steps {args.steps}"}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(result["step_seconds"], result["bf16_over_fp32"])


if __name__ == "__main__":
    main()
