"""Does torch.compile bring the CPU training step nearer the matmul bound? (issue 4's 1.3x target)

The step's convolutions already run at about the machine's bf16 matmul rate (profile_step.py); what is left
is element-wise work (BatchNorm, ReLU, autocast's weight casts, Adam) that a compiler could fuse. This times
the product's network (resnet18 U-Net, batch 4 of 256 x 256, channels-last, bf16 autocast, fused Adam, CE)
eager and under ``torch.compile`` (inductor, default mode), the two interleaved step by step after the
compile, on random data (a step's time does not depend on the pixels), and writes the medians.

    .venv/bin/python benchmarks/compile_step.py [--steps 10] [--out benchmarks/results/cpu/compile-step.txt]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from napari_pixrel.model import ModelConfig, PixRelNet


def training(compiled: bool):
    torch.manual_seed(0)
    net = PixRelNet(ModelConfig(n_classes=3)).train().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    model = torch.compile(net) if compiled else net
    x = torch.randn(4, 1, 256, 256).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 3, (4, 256, 256))

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, _ = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cpu" / "compile-step.txt"))
    args = parser.parse_args()
    eager, compiled = training(False), training(True)
    start = time.perf_counter()
    compiled(), compiled()
    compile_seconds = time.perf_counter() - start
    for _ in range(3):
        eager()
    times = {"eager": [], "compiled": []}
    for _ in range(args.steps):
        times["eager"].append(eager())
        times["compiled"].append(compiled())
    median = {k: statistics.median(v) for k, v in times.items()}
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps each, interleaved",
             f"compile and the first 2 steps: {compile_seconds:.1f} s",
             f"seconds per step, median: eager {median['eager']:.3f}, compiled {median['compiled']:.3f} "
             f"(compiled / eager {median['compiled'] / median['eager']:.2f})"]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
