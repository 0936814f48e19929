#!/usr/bin/env bash
# The relation-loss study and step cost on a lent GPU machine (one prepared call; see benchmarks/README.md).
# Expects: .whl/ (segmentation-models-pytorch wheel) and .bench-data/ (images.tif, labels.tif, split.json
# from ../shared/data/drosophila_vnc, carried, never committed) in the repo root; $OUT for what comes back.
# Usage: bash benchmarks/gpu_run.sh SWEEP_SECONDS WORKERS [STUDY (full|scribbles|painted|painted-seed1|smoothness|smoothness-more)] [COST (1|0)] [RESULTS_DIR]
set -u
sweep_seconds=${1:-420}
workers=${2:-12}
study=${3:-full}
cost=${4:-1}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, segmentation_models_pytorch as s; print(torch.__version__, s.__version__, torch.cuda.get_device_name())"
results=${5:-benchmarks/results/gpu}
python3 benchmarks/relation_sweep.py /tmp/specs.json "$study"
[ "$cost" = 1 ] && timeout 100 python3 -m napari_pixrel.cli bench --part cost --data .bench-data --out $results 2>&1 | tail -20
timeout --kill-after=10 "$sweep_seconds" python3 -m napari_pixrel.cli bench --specs /tmp/specs.json \
    --workers "$workers" --data .bench-data --out $results > "$OUT/sweep.log" 2>&1
pkill -f multiprocessing.spawn
python3 -m napari_pixrel.cli bench --report --out $results 2>&1 | tail -3
tail -5 "$OUT/sweep.log"
ls $results | wc -l
tar czf "$OUT/gpu-results.tgz" $results
