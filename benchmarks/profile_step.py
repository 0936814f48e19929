"""Where does a training step's time go? (issue 4: the step is 1.6x the matmul-bound estimate)

Profiles the product's Trainer (cross-entropy, batch 4 of 256 x 256, bf16 autocast where the CPU computes
bf16 natively, the warp on; optionally the weights' moving average, the smoothness loss) on subset 0 of the EM
tiles with torch.profiler, after a few warm-up steps, and writes the operators that took the most time, and
the share of convolutions, to a text file. Then it accounts for each convolution (grouped by shapes): its
forward and backward time against what the machine's matmul rate (bf16 where used, else fp32) allows for its
FLOPs (the bound issue 4 measures the step against), so the file shows which layers run below that rate and
how much time they lose there.

    .venv/bin/python benchmarks/profile_step.py [--ema 0.99] [--smoothness 3]
                                                [--out benchmarks/results/cpu/profile-step.txt]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from napari_pixrel.bench import data_path, load_data, matmul_gflops
from napari_pixrel.model import ModelConfig
from napari_pixrel.trainer import TrainConfig, Trainer, native_bf16

WARMUP, STEPS = 5, 10


def convolution_account(by_shape, rate: float) -> list[str]:
    """Per convolution shape (batch, channels in -> out, size, kernel): milliseconds per step forward and
    backward, the rate reached (3 x forward FLOPs over both), and the milliseconds above ``rate`` GFLOP/s.

    The backward's shapes give the output size (grad_output, input, weight); the forward is matched to it by
    its input and weight shapes.
    """
    forward = {(str(e.input_shapes[0]), str(e.input_shapes[1])): e for e in by_shape
               if e.key == "aten::mkldnn_convolution"}
    rows, total_ms, total_bound = [], 0.0, 0.0
    for e in by_shape:
        if e.key != "aten::convolution_backward":
            continue
        out, inp, weight = e.input_shapes[:3]
        fwd = forward.get((str(inp), str(weight)))
        calls = e.count / STEPS
        flop = 2 * out[0] * out[1] * out[2] * out[3] * weight[1] * weight[2] * weight[3] * calls
        fwd_ms = fwd.self_cpu_time_total / 1e3 / STEPS if fwd else float("nan")
        bwd_ms = e.self_cpu_time_total / 1e3 / STEPS
        bound_ms = 3 * flop / rate / 1e6
        total_ms, total_bound = total_ms + fwd_ms + bwd_ms, total_bound + bound_ms
        rows.append((fwd_ms + bwd_ms - bound_ms, f"{out[0]} x {inp[1]:>3} -> {out[1]:>3} at {out[2]:>3}^2, "
                     f"{weight[2]}x{weight[3]}, x{calls:.0f}   {fwd_ms:6.1f} {bwd_ms:6.1f} "
                     f"{3 * flop / (fwd_ms + bwd_ms) / 1e6:7.0f} {fwd_ms + bwd_ms - bound_ms:6.1f}"))
    rows.sort(reverse=True)
    return [f"Convolutions against the matmul rate ({rate:.0f} GFLOP/s now): per step, by shape, most time "
            "lost first", "shape                                   fwd ms bwd ms GFLOP/s  ms over",
            *(line for _, line in rows),
            f"all convolutions: {total_ms:.1f} ms per step, {total_bound:.1f} ms at the matmul rate "
            f"({total_ms / total_bound:.2f}x)"]


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
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(STEPS):
            report = next(run)
    cpu = torch.device("cpu")
    dtype = torch.bfloat16 if native_bf16(cpu) else torch.float32
    averages = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in averages)
    conv = sum(e.self_cpu_time_total for e in averages if "conv" in e.key or "mkldnn" in e.key)
    lines = [f"loss {args.loss}, ema {args.ema}, smoothness {args.smoothness}, {STEPS} steps after {WARMUP}; "
             f"{dtype} convolutions; "
             f"{torch.get_num_threads()} threads",
             f"seconds per step on the trainer's clock (under the profiler): {(report.elapsed - start) / STEPS:.3f}; "
             f"profiled self time per step: {total / STEPS / 1e6:.3f} s, convolution kernels "
             f"{100 * conv / total:.0f}% of it", "",
             averages.table(sort_by="self_cpu_time_total", row_limit=30), "",
             *convolution_account(prof.key_averages(group_by_input_shape=True), matmul_gflops(dtype, cpu))]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:2]))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
