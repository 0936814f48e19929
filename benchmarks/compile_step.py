"""Does torch.compile, or dropping autocast's casts, bring the CPU training step nearer the matmul bound?
(issue 4's 1.3x target)

The step's convolutions already run at about the machine's bf16 matmul rate (profile_step.py); what is left
is element-wise work (BatchNorm, ReLU, autocast's weight casts, Adam) that a compiler could fuse. This times
the product's network (resnet18 U-Net, batch 4 of 256 x 256, channels-last, bf16 autocast, fused Adam, CE)
eager, under ``torch.compile`` (inductor, default mode), and with bf16 master weights: the convolutions'
weights stored in bf16 (no autocast, so no cast of each weight in the forward and of its gradient in the
backward), fp32 copies of them updated by Adam and copied back after each step, BatchNorm in fp32. The
three are interleaved step by step after the compile, on random data (a step's time does not depend on the
pixels), and the medians written.

    TORCHINDUCTOR_FORCE_DISABLE_CACHES=1 .venv/bin/python benchmarks/compile_step.py [--steps 10] \
        [--out benchmarks/results/cpu/compile-step.txt]

(without that variable a second run reuses inductor's cache, and its compile time is not a first run's)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from napari_pixrel.model import ModelConfig, PixRelNet

VARIANTS = ("eager", "compiled", "bf16 weights")


def training(variant: str):
    torch.manual_seed(0)
    net = PixRelNet(ModelConfig(n_classes=3)).train().to(memory_format=torch.channels_last)
    x = torch.randn(4, 1, 256, 256).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 3, (4, 256, 256))
    model = torch.compile(net) if variant == "compiled" else net
    live, master = [], []
    if variant == "bf16 weights":
        for conv in (m for m in net.modules() if isinstance(m, torch.nn.Conv2d)):
            conv.to(torch.bfloat16)
            live += conv.parameters(recurse=False)
        master = [p.detach().float().requires_grad_() for p in live]
        x = x.to(torch.bfloat16)
    in_bf16 = {id(p) for p in live}
    opt = torch.optim.Adam(master + [p for p in net.parameters() if id(p) not in in_bf16], lr=1e-3, fused=True)

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not master):
            logits, _ = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        net.zero_grad(set_to_none=True)
        loss.backward()
        for m, p in zip(master, live):
            m.grad = p.grad.float()
        opt.step()
        if master:
            with torch.no_grad():
                torch._foreach_copy_(live, master)
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cpu" / "compile-step.txt"))
    args = parser.parse_args()
    steps = {v: training(v) for v in VARIANTS}
    start = time.perf_counter()
    steps["compiled"](), steps["compiled"]()
    compile_seconds = time.perf_counter() - start
    for step in steps.values():
        for _ in range(3):
            step()
    times = {v: [] for v in VARIANTS}
    for _ in range(args.steps):
        for v, step in steps.items():
            times[v].append(step())
    median = {v: statistics.median(t) for v, t in times.items()}
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps each, interleaved",
             f"compile and the first 2 steps: {compile_seconds:.1f} s",
             "seconds per step, median: " + ", ".join(
                 f"{v} {median[v]:.3f} ({median[v] / median['eager']:.2f} x eager)" for v in VARIANTS)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
