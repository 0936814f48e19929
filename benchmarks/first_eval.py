"""When does the dock's first prediction come, and what does an earlier one cost, where steps are slow?

On a CPU without native bf16 a training step takes seconds (fp32 on a 2-core AVX2 EPYC: about 4 s on the
dock's one thread), so evaluating every 10 steps put the first prediction 45 s after Train
(results/cpu-avx2/responsiveness.json). ``first_eval_seconds`` (the dock's ``FIRST_EVAL_SECONDS``) brings the
first evaluation forward. This trains as the dock does on the shipped sample (its scribbles, the whole stack
previewed, one CPU thread fewer than the cores) for ``--steps`` steps, without and with it, in alternating
order ``--rounds`` times (the machine is shared: both see the same load), and writes the seconds from the
start to the first prediction, the evaluated steps and the wall time of each run to one JSON file.

    .venv/bin/python benchmarks/first_eval.py [--steps 20] [--rounds 2]
        [--out benchmarks/results/cpu-avx2/first-eval.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from napari_pixrel._widget import EVAL_EVERY, EVAL_SHARE, FIRST_EVAL_SECONDS, ui_spare_threads
from napari_pixrel.bench import environment
from napari_pixrel.data import painted_planes
from napari_pixrel.model import ModelConfig, resolve_device
from napari_pixrel.sample_data import CLASS_NAMES, load_sample_data
from napari_pixrel.trainer import TrainConfig, Trainer


def run(first_eval_seconds: float, steps: int) -> dict:
    """One dock-like run; seconds are wall time from the start, evaluations and the consumer included."""
    images, _, scribbles = load_sample_data()
    config = TrainConfig(steps=steps, eval_every=EVAL_EVERY, first_eval_seconds=first_eval_seconds,
                         eval_share=EVAL_SHARE, cpu_threads=ui_spare_threads())
    trainer = Trainer(painted_planes(images, scribbles), config, ModelConfig(n_classes=len(CLASS_NAMES)),
                      class_names=list(CLASS_NAMES), preview=images)
    started, first, evaluated = time.perf_counter(), None, []
    for report in trainer.run():
        if report.prediction is not None and not report.finished:
            first = first or time.perf_counter() - started
            evaluated.append(report.step)
    wall = time.perf_counter() - started
    return {"first_eval_seconds": first_eval_seconds, "first_prediction_s": round(first, 2),
            "evaluated_steps": evaluated, "wall_s": round(wall, 1), "training_s": round(report.elapsed, 1),
            "evaluation_s": round(wall - report.elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/cpu-avx2/first-eval.json")
    args = parser.parse_args()
    settings = (0.0, FIRST_EVAL_SECONDS)
    runs = []
    for i in range(args.rounds):
        for seconds in settings[::-1] if i % 2 else settings:
            runs.append(run(seconds, args.steps))
            print(runs[-1], flush=True)
    median = {f"{s:g}": {key: statistics.median(r[key] for r in runs if r["first_eval_seconds"] == s)
                         for key in ("first_prediction_s", "wall_s", "training_s", "evaluation_s")}
              for s in settings}
    result = {**environment(resolve_device("auto")), "threads": ui_spare_threads(), "eval_every": EVAL_EVERY,
              "eval_share": EVAL_SHARE, "steps": args.steps, "runs": runs, "median_by_first_eval_seconds": median,
              "command": f"python benchmarks/first_eval.py --steps {args.steps} --rounds {args.rounds}"}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(median, indent=1))


if __name__ == "__main__":
    main()
