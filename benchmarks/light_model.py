"""Would a lighter network train faster per step on this CPU? (issue 4: "a lighter default model if it
learns as well")

Times the product's Trainer (cross-entropy, batch 4 of 256 x 256, bf16 autocast, the warp on) for a few
ModelConfigs, their steps interleaved one by one so that they see the same machine conditions, and counts
each network's forward FLOPs (torch.utils.flop_counter). A network that is not faster per step cannot fit
more steps into a minutes budget, so only the faster ones are worth a quality run
(``RunSpec.model`` in a specs file). Writes a JSON file of medians.

    .venv/bin/python benchmarks/light_model.py [--steps 10] [--out benchmarks/results/cpu/light-model.json]

``--specs PATH`` instead writes the quality runs of the halved decoder: the product's scribble defaults
(cpu_scribbles.py phase "minutes5-smoothness", pairs with ``scribbles-s*-none-seed0-356ab1a5.json``) and CE
with full masks (cpu_warp.py phase "full", pairs with ``full-s*-none-seed0-3a3f4bce.json``), subset by subset:

    .venv/bin/python benchmarks/light_model.py --specs specs.json
    pixrel bench --specs specs.json --out benchmarks/results/cpu

``--cpu-pairs scribbles|full`` with ``--specs``: both decoders' runs, for a CPU without native bf16
(``cpu_pairs``; twentieth session: ``--out benchmarks/results/cpu-avx2``); ``--pair-steps 600`` compares them at
the product's default step budget instead of equal minutes, in fp32 (twenty-third session, on the AVX-512 CPU:
``--out benchmarks/results/cpu``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from cpu_scribbles import minutes5_smoothness
from cpu_warp import full
from torch.utils.flop_counter import FlopCounterMode

from napari_pixrel.bench import data_path, environment, interleaved_step_times, load_data
from napari_pixrel.model import ModelConfig
from napari_pixrel.trainer import TrainConfig, Trainer

WARMUP = 3
HALVED = (128, 64, 32, 16, 16)
CANDIDATES = {  # name: ModelConfig overrides
    "resnet18 (default)": {},
    "resnet18, decoder halved": {"decoder_channels": HALVED},
    "resnet18, decoder quartered": {"decoder_channels": (64, 32, 16, 16, 16)},
    "mobilenet_v2": {"encoder": "mobilenet_v2"},
}


def quality_specs() -> list[dict]:
    scribbles = minutes5_smoothness()
    full_masks = [r for r in full() if r["mode"] == "none"]
    return [{**r, "model": {"decoder_channels": list(HALVED)}} for pair in zip(scribbles, full_masks) for r in pair]


def cpu_pairs(labels: str, seed: int = 0, steps: int | None = None) -> list[dict]:
    """The halved decoder's runs of ``quality_specs`` for ``labels`` ("scribbles" or "full"), each after the
    default decoder's of the same subset, evaluated at 60 and 300 s only: on a CPU without native bf16 (fp32)
    an evaluation of the 128 val and test tiles takes about half a minute. The rule, set before the runs
    (twentieth session, AVX2 CPU): the halved decoder is worth the full-mask runs there if its val mean with
    scribbles is above the default's with at least 4 of 5 pairs above 0; a default that depends on the CPU
    needs the tenth session's rule over both label kinds (a positive val mean for each, at least 7 of 10 pairs
    above 0). ``seed`` other than 0: the same pairs with another seed, to check what the rule found (the
    twenty-first session ran seed 1 with full masks, where seed 0 was closest to a tie, the twenty-second with
    scribbles). ``steps``: the same pairs with this many steps instead of 5 minutes, evaluated on test at half
    and at the end, in fp32 as on a CPU without native bf16 whatever CPU runs them (a step budget's result
    does not depend on speed). The product's default budget is 600 steps, not minutes; twenty-third session's
    rule, set before the runs: the light decoder stands for step budgets if its val mean at 600 steps is at
    most 1 point below the default's."""
    budget = {"minutes": None, "steps": steps, "eval_seconds": [], "eval_steps": [steps // 2]} if steps else {
        "eval_seconds": [60, 300]}
    runs = [{**r, "seed": seed, **budget, "train": {**r["train"], **({"mixed_precision": False} if steps else {})}}
            for r in quality_specs() if r["labels"] == labels]
    return [x for r in runs for x in ({k: v for k, v in r.items() if k != "model"}, r)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cpu" / "light-model.json"))
    parser.add_argument("--specs", help="write the quality runs' specs here instead of timing")
    parser.add_argument("--cpu-pairs", choices=["scribbles", "full"],
                        help="with --specs: the default and halved decoders' runs with these labels (cpu_pairs)")
    parser.add_argument("--seed", type=int, default=0, help="with --cpu-pairs: the runs' seed")
    parser.add_argument("--pair-steps", type=int, help="with --cpu-pairs: a budget of steps instead of 5 minutes")
    args = parser.parse_args()
    if args.specs:
        specs = cpu_pairs(args.cpu_pairs, args.seed, args.pair_steps) if args.cpu_pairs else quality_specs()
        Path(args.specs).write_text(json.dumps(specs, indent=1))
        print(f"{len(specs)} runs written to {args.specs}")
        return
    start = time.perf_counter()
    data = load_data(str(data_path(None)))
    names, planes = data.class_names, data.planes(data.train_ids(0))
    config = TrainConfig(loss="none", steps=WARMUP + args.steps, eval_every=0, keep="last")
    trainers = {name: Trainer(planes, config, ModelConfig(n_classes=len(names), **overrides), class_names=names)
                for name, overrides in CANDIDATES.items()}
    times, _ = interleaved_step_times(trainers, WARMUP + args.steps)
    x = torch.randn(config.batch_size, 1, config.patch_size, config.patch_size)
    rows = {}
    for name, trainer in trainers.items():
        net = trainer.segmenter.net.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(x)
        step = statistics.median(times[name][WARMUP:])
        rows[name] = {"model": CANDIDATES[name], "step_seconds": step,
                      "forward_gflop_per_batch": counter.get_total_flops() / 1e9,
                      "parameters_m": sum(p.numel() for p in net.parameters()) / 1e6,
                      "step_seconds_all": times[name]}
    default = rows["resnet18 (default)"]["step_seconds"]
    for row in rows.values():
        row["step_vs_default"] = row["step_seconds"] / default
    result = {**environment(trainers["resnet18 (default)"].device), "warmup_steps": WARMUP,
              "timed_steps": args.steps, "candidates": rows, "wall_seconds": time.perf_counter() - start}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for name, row in rows.items():
        print(f"{name:30s} {row['step_seconds']:.3f} s/step (x{row['step_vs_default']:.2f}), "
              f"{row['forward_gflop_per_batch']:.1f} GFLOP fwd, {row['parameters_m']:.1f} M params")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
