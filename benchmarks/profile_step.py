"""Where does a training step's time go? (issue 4: the step is 1.6x the matmul-bound estimate)

Profiles the product's Trainer (cross-entropy, batch 4 of 256 x 256, bf16 autocast, the warp on; optionally
the weights' moving average, the smoothness loss) on subset 0 of the EM tiles with torch.profiler, after a
few warm-up steps, and writes the operators that took the most time, and the share of convolutions, to a
text file.

    .venv/bin/python benchmarks/profile_step.py [--ema 0.99] [--smoothness 3]
                                                [--out benchmarks/results/cpu/profile-step.txt]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from napari_pixrel.bench import data_path, load_data
from napari_pixrel.model import ModelConfig
from napari_pixrel.trainer import TrainConfig, Trainer

WARMUP, STEPS = 5, 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ema", type=float, default=0.0)
    parser.add_argument("--loss", default="none")
    parser.add_argument("--smoothness", type=float, default=0.0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cpu" / "profile-step.txt"))
    args = parser.parse_args()
    data = load_data(str(data_path(None)))
    names = data.class_names
    config = TrainConfig(loss=args.loss, steps=WARMUP + STEPS, eval_every=0, ema=args.ema, keep="last",
                         smoothness=args.smoothness)
    run = Trainer(data.planes(data.train_ids(0)), config, ModelConfig(n_classes=len(names)),
                  class_names=names).run()
    for _ in range(WARMUP):
        start = next(run).elapsed
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(STEPS):
            report = next(run)
    averages = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in averages)
    conv = sum(e.self_cpu_time_total for e in averages if "conv" in e.key or "mkldnn" in e.key)
    lines = [f"loss {args.loss}, ema {args.ema}, smoothness {args.smoothness}, {STEPS} steps after {WARMUP}; "
             f"{torch.get_num_threads()} threads",
             f"seconds per step on the trainer's clock (under the profiler): {(report.elapsed - start) / STEPS:.3f}; "
             f"profiled self time per step: {total / STEPS / 1e6:.3f} s, convolution kernels "
             f"{100 * conv / total:.0f}% of it", "",
             averages.table(sort_by="self_cpu_time_total", row_limit=30)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:2]))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
