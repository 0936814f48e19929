"""Benchmark harness (``pixrel bench``): the paper's table on the Drosophila EM tiles, the random-forest
peer, learning speed, step cost and the full-data ceiling, in one resumable tool.

Every run is a ``RunSpec`` whose name is derived from all its fields; its result is one JSON file of that
name, and a run whose file exists is skipped, so the long benchmark can be run in parts, across sessions
and in parallel workers. ``bench_report.report`` turns the folder into RESULTS.md and the plot.
The data is read from the shared folder and never copied (its licence is non-commercial share-alike).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch

from . import bench_report
from .data import PatchSampler, Plane
from .losses import MODES, RelationSettings, relation_loss
from .metrics import iou_table
from .model import ModelConfig, Segmenter, resolve_device
from .predict import predict, predict_plane
from .scribbles import make_patches, make_scribbles
from .trainer import TrainConfig, Trainer, native_bf16

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/drosophila_vnc"
DEFAULT_OUT = REPO / "benchmarks/results"
RUN_MODES = MODES + ("forest",)
PARTS = ("table", "scribbles", "forest", "cost", "ceiling", "all")
SCRIBBLE_FRACTION = 0.02
PATCH_FRACTION = 0.5
# each partial label kind: its generator (full mask, fraction, seed) and its default painted fraction;
# "patches" paints whole 64 x 64 squares; smaller squares draw less of the class boundaries, larger ones more
PARTIAL_LABELS = {"scribbles": (make_scribbles, SCRIBBLE_FRACTION), "patches": (make_patches, PATCH_FRACTION),
                  **{f"patches{size}": (partial(make_patches, size=size), PATCH_FRACTION) for size in (32, 128)}}
LABEL_KINDS = ("full", *PARTIAL_LABELS)
DEFAULT_MINUTES = 5.0
CEILING_MINUTES = 10.0
EVAL_SCHEDULE = (15, 30, 60, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 2400, 3600)
HARNESS_TRAIN_FIELDS = {"loss", "steps", "minutes", "seed"}
TRAIN_OVERRIDES = {f.name for f in fields(TrainConfig)} - HARNESS_TRAIN_FIELDS
# a run's baseline is the paper's setting at a constant learning rate, keeping its last weights, with flips
# and rot90 but without the warp, the weights' moving average or the smoothness loss: not the product's
# defaults. A spec asks for those, e.g. {"warp": true, "ema": 0.99, "smoothness": 3.0}, or
# the trainer's own evaluation (off by default) to keep the best weights on the val tiles
# ({"keep": "best", "eval_every": 50})
PAPER_TRAIN = {"relation_weight": 1.0, "schedule": "constant", "keep": "last", "eval_every": 0, "warp": False,
               "ema": 0.0, "smoothness": 0.0}
MODEL_OVERRIDES = {f.name for f in fields(ModelConfig)} - {"n_classes", "in_channels"}
FOREST_DEFAULTS = {"n_estimators": 100, "max_depth": None, "max_pixels": 100_000, "sigma_min": 1.0,
                   "sigma_max": 16.0}
RESULT_KEYS = {"name", "spec", "device", "versions", "wall_seconds", "train_seconds", "val", "test", "curve"}
NET_KEYS = {"steps", "step_seconds_median", "losses", "train_painted"}
CHECKED_KEYS = ("wall_seconds", "train_seconds", "val", "test", "curve", "steps", "step_seconds_median",
                "losses", "forest")

_THREADS: int | None = None  # set by use_threads; the Trainer would otherwise claim every core


# ---------------------------------------------------------------- data


class BenchData:
    """The EM stack and its split, read once; tiles are cut on demand and never written anywhere."""

    def __init__(self, path):
        import tifffile

        self.path = Path(path)
        self.split = json.loads((self.path / "split.json").read_text())
        self.images = tifffile.imread(self.path / "images.tif")
        self.labels = tifffile.imread(self.path / "labels.tif")
        self.class_names = list(self.split["class_names"])
        self.tile = int(self.split["tile_size"])

    def _cut(self, array: np.ndarray, tile_id: str) -> np.ndarray:
        s, r, c = map(int, tile_id.split(":"))
        t = self.tile
        return array[s, r * t:(r + 1) * t, c * t:(c + 1) * t]

    def planes(self, tile_ids, labels: str = "full", painted: float | None = None) -> list[Plane]:
        """Tiles as Planes (image (T, T, 1) float32, labels + 1 = napari convention), with full masks, or
        with scribbles or fully painted squares (``labels``) covering the fraction ``painted`` of each tile.

        The partial labels are fixed per tile (seed = the tile's index in the train list), so every mode
        and seed sees the same annotation, as if a person had painted it once.
        """
        partial = PARTIAL_LABELS[labels][0] if labels != "full" else None
        train_ids = self.split["tiles"]["train"]
        out = []
        for tid in tile_ids:
            mask = self._cut(self.labels, tid).astype(np.int64) + 1
            if partial:
                mask = partial(mask, painted, seed=train_ids.index(tid))
            out.append(Plane(self._cut(self.images, tid)[..., None].astype(np.float32), mask))
        return out

    def train_ids(self, subset: int | str) -> list[str]:
        return list(self.split["tiles"]["train"] if subset == "all" else self.split["few_shot"][subset])

    def eval_ids(self, split: str, n: int | None = None) -> list[str]:
        """All tiles of ``split``, or ``n`` evenly spaced ones (spread over its sections)."""
        ids = list(self.split["tiles"][split])
        return ids if n is None or n >= len(ids) else ids[:: len(ids) // n][:n]

    def section(self, split: str) -> np.ndarray:
        """The first whole section of ``split`` (1024 x 1024), for timing inference."""
        return self.images[self.split["sections"][split][0]]


@lru_cache(maxsize=2)
def load_data(path: str) -> BenchData:
    return BenchData(path)


def data_path(arg: str | None) -> Path:
    """--data, else $PIXREL_BENCH_DATA, else the shared folder beside the repository."""
    return Path(arg or os.environ.get("PIXREL_BENCH_DATA") or DEFAULT_DATA)


# ---------------------------------------------------------------- run specs


def _typed(overrides: dict, defaults) -> dict:
    """Overrides with numbers cast to the type of the default, so 1 and 1.0 name the same run."""
    out = {}
    for key, value in sorted(overrides.items()):
        default = getattr(defaults, key) if not isinstance(defaults, dict) else defaults[key]
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


@dataclass(frozen=True)
class RunSpec:
    """One benchmark run. ``train``/``model`` override TrainConfig/ModelConfig fields (for mode
    "forest", ``train`` overrides FOREST_DEFAULTS); None tile counts mean the whole split. ``painted``
    is the share of the pixels that scribbles or patches cover when it is not their default
    (SCRIBBLE_FRACTION, PATCH_FRACTION; left out of the name and the result file otherwise, so runs
    written before it existed keep their names)."""

    subset: int | str
    labels: str = "full"
    mode: str = "none"
    seed: int = 0
    steps: int | None = None
    minutes: float | None = None
    eval_seconds: tuple[float, ...] = ()
    eval_steps: tuple[int, ...] = ()
    test_tiles: int | None = None
    val_tiles: int | None = None
    train: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    painted: float | None = None

    def __post_init__(self):
        if not (self.subset == "all" or (isinstance(self.subset, int) and self.subset >= 0)):
            raise ValueError(f"subset {self.subset!r} is not a few-shot subset index or 'all'")
        if self.labels not in LABEL_KINDS:
            raise ValueError(f"labels {self.labels!r} is not one of {LABEL_KINDS}")
        if self.mode not in RUN_MODES:
            raise ValueError(f"mode {self.mode!r} is not one of {RUN_MODES}")
        if self.painted is not None and not (self.labels != "full" and 0 < self.painted < 1):
            raise ValueError(f"painted={self.painted!r}: a fraction between 0 and 1, for partial labels only")
        set_ = object.__setattr__
        set_(self, "minutes", None if self.minutes is None else float(self.minutes))
        set_(self, "eval_seconds", tuple(sorted(float(s) for s in self.eval_seconds)))
        set_(self, "eval_steps", tuple(sorted(int(s) for s in self.eval_steps)))
        forest = self.mode == "forest"
        if forest and (self.steps or self.minutes or self.eval_seconds or self.eval_steps or self.model):
            raise ValueError("a forest run has no training budget, eval points or model overrides")
        unknown = (set(self.train) - (set(FOREST_DEFAULTS) if forest else TRAIN_OVERRIDES)) | (
            set(self.model) - MODEL_OVERRIDES)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)} for mode {self.mode!r}")
        set_(self, "train", _typed(self.train, FOREST_DEFAULTS if forest else TrainConfig()))
        set_(self, "model", _typed(self.model, ModelConfig(n_classes=2)))
        if not forest:  # fail now, not hours into a sweep
            self.train_config()
            ModelConfig(n_classes=2, **self.model)

    @property
    def name(self) -> str:
        """"<labels>-s<subset>-<mode>-seed<seed>-<hash of every other field>"."""
        rest = {k: v for k, v in self.to_dict().items() if k not in ("subset", "labels", "mode", "seed")}
        digest = hashlib.sha1(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.labels}-s{self.subset}-{self.mode}-seed{self.seed}-{digest}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eval_seconds"], d["eval_steps"] = list(self.eval_seconds), list(self.eval_steps)
        if self.painted is None:
            del d["painted"]
        return d

    @property
    def painted_fraction(self) -> float | None:
        """The painted fraction to train on, None for full masks."""
        return (self.painted or PARTIAL_LABELS[self.labels][1]) if self.labels != "full" else None

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        return cls(**{k: v for k, v in d.items() if k != "name"})

    def train_config(self) -> TrainConfig:
        return TrainConfig(loss=self.mode, steps=self.steps, minutes=self.minutes, seed=self.seed,
                           **{**PAPER_TRAIN, **self.train})


# ---------------------------------------------------------------- results on disk


def _plain(obj):
    """JSON-safe copy: numpy -> Python, tuples -> lists, NaN/inf -> None (flagged by check_result)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json(path: Path, obj: dict) -> None:
    """Write atomically (temporary file + rename): an interrupted run leaves no half file to skip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
        json.dump(_plain(obj), f, indent=1, allow_nan=False)
    os.replace(f.name, path)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def environment(device: torch.device) -> dict:
    """Where and with what a result was produced."""
    import segmentation_models_pytorch as smp
    import skimage

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    git = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                         text=True, check=False)
    return {
        "device": {"type": device.type, "name": name, "threads": torch.get_num_threads(),
                   "bf16": native_bf16(device)},
        "versions": {"torch": torch.__version__, "smp": smp.__version__, "skimage": skimage.__version__,
                     "numpy": np.__version__, "python": platform.python_version(),
                     "commit": git.stdout.strip() or None},
    }


def device_slug(device: torch.device) -> str:
    """"cpu-<threads the Trainer uses>threads" or "cuda-<gpu name>", for the cost file's name."""
    if device.type == "cpu":
        return f"cpu-{_THREADS or os.cpu_count()}threads"
    name = torch.cuda.get_device_name(device).lower()
    return "cuda-" + "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")


def _non_finite(obj, where: str) -> list[str]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _non_finite(v, f"{where}.{k}")]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _non_finite(v, f"{where}[{i}]")]
    if obj is None or (isinstance(obj, float) and not math.isfinite(obj)):
        return [f"{where} is not a finite number"]
    return []


def check_result(result: dict, class_names: list[str]) -> list[str]:
    """Problems with one run's result: missing keys, wrong IoU keys, any non-finite measured number."""
    mode = result.get("spec", {}).get("mode")
    required = RESULT_KEYS | (NET_KEYS if mode in MODES else {"forest"})
    problems = [f"missing {k}" for k in sorted(required - set(result))]
    for split in ("val", "test"):
        if split in result and set(result[split]) != set(class_names) | {"mIoU"}:
            problems.append(f"{split} has keys {sorted(result[split])}")
    if not result.get("curve"):
        problems.append("empty curve")
    for key in CHECKED_KEYS:
        if key in result:
            problems += _non_finite(result[key], key)
    return [f"{result.get('name', '?')}: {p}" for p in problems]


def check_cost(cost: dict) -> list[str]:
    skip = {"device", "versions", "command", "model"}
    return [f"cost: {p}" for k, v in cost.items() if k not in skip for p in _non_finite(v, k)]


def check_results(out_dir, specs: list[RunSpec], class_names: list[str], cost: bool) -> list[str]:
    """Problems with the result files of ``specs`` (and the cost file of this device when ``cost``)."""
    out_dir, problems = Path(out_dir), []
    for spec in specs:
        path = out_dir / f"{spec.name}.json"
        problems += check_result(json.loads(path.read_text()), class_names) if path.exists() else \
            [f"{spec.name}: no result file"]
    if cost:
        path = cost_path(out_dir)
        problems += check_cost(json.loads(path.read_text())) if path.exists() else ["no cost file"]
    return problems


# ---------------------------------------------------------------- runs


def score(segmenter: Segmenter, planes: list[Plane], class_names: list[str]) -> dict:
    """Per-class IoU and mIoU, accumulated over every pixel of ``planes``."""
    pairs = ((predict_plane(segmenter, p.image).argmax(0) + 1, p.labels) for p in planes)
    return iou_table(pairs, len(class_names), class_names)


class EvalPoints:
    """The spec's eval points not yet reached; a report may cross several at once."""

    def __init__(self, spec: RunSpec):
        self.steps, self.seconds = list(spec.eval_steps), list(spec.eval_seconds)

    def crossed(self, step: int, seconds: float) -> list[str]:
        hit = [f"{s}steps" for s in self.steps if s <= step]
        hit += [f"{s:g}s" for s in self.seconds if s <= seconds]
        self.steps = [s for s in self.steps if s > step]
        self.seconds = [s for s in self.seconds if s > seconds]
        return hit


def run_one(spec: RunSpec, data: BenchData, out_dir, command: str = "") -> dict:
    """Run ``spec`` and write ``out_dir/<name>.json``; an existing file is returned without running."""
    path = Path(out_dir) / f"{spec.name}.json"
    if path.exists():
        return json.loads(path.read_text())
    start = time.perf_counter()
    result = _run_forest(spec, data) if spec.mode == "forest" else _run_net(spec, data)
    result = {"name": spec.name, "spec": spec.to_dict(), "command": command, **result,
              "wall_seconds": time.perf_counter() - start}
    write_json(path, result)
    return json.loads(path.read_text())


def _run_net(spec: RunSpec, data: BenchData) -> dict:
    """Train with the product's Trainer; evaluate val and test at the eval points (off the clock). With
    ``eval_every`` the trainer also scores the val tiles itself (and, with keep="best", ends on the best)."""
    names = data.class_names
    train = data.planes(data.train_ids(spec.subset), spec.labels, spec.painted_fraction)
    val = data.planes(data.eval_ids("val", spec.val_tiles))
    test = data.planes(data.eval_ids("test", spec.test_tiles))
    model = ModelConfig(n_classes=len(names), **spec.model)
    config = spec.train_config()
    trainer = Trainer(train, config, model, val=val if config.eval_every else (), class_names=names)
    if _THREADS:
        torch.set_num_threads(_THREADS)
    segmenter, points = trainer.segmenter, EvalPoints(spec)
    curve, step_seconds, before, last = [], [], 0.0, None

    def curve_point(point: str, report, scores: tuple[dict, dict]) -> dict:
        return {"point": point, "step": report.step, "seconds": report.elapsed, "loss": report.loss,
                "ce": report.ce, "relation": report.relation, "relation_weight": report.relation_weight,
                "val": scores[0], "test": scores[1]}

    for report in trainer.run():
        last = report
        if report.finished:
            break
        step_seconds.append(report.elapsed - before)
        before = report.elapsed
        crossed = points.crossed(report.step, report.elapsed)
        if crossed:
            scores = score(segmenter, val, names), score(segmenter, test, names)
            trainer.net.train()  # scoring put the scored net in eval mode: without ema, the net in training
            curve += [curve_point(p, report, scores) for p in crossed]
    kept_earlier = last.kept_step != last.step
    if not curve or curve[-1]["step"] != last.step or kept_earlier:
        scores = score(segmenter, val, names), score(segmenter, test, names)
        curve.append(curve_point("final", last, scores))
    return {
        **environment(trainer.device),
        "train_seconds": last.elapsed,
        "steps": last.step,
        "kept_step": last.kept_step,  # the step whose weights "val" and "test" score (keep="best": maybe earlier)
        "step_seconds_median": statistics.median(step_seconds) if step_seconds else None,
        "val": curve[-1]["val"],
        "test": curve[-1]["test"],
        "train_painted": last.train_iou,
        "losses": {"loss": last.loss, "ce": last.ce, "relation": last.relation},
        "message": last.message,
        "curve": curve,
    }


def forest_features(image: np.ndarray, settings: dict) -> np.ndarray:
    """(H, W, F) scikit-image features of a (H, W, 1) uint8-range tile (ilastik's kind of features)."""
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(image[..., 0] / 255.0, sigma_min=settings["sigma_min"],
                                     sigma_max=settings["sigma_max"])


def _run_forest(spec: RunSpec, data: BenchData) -> dict:
    """The peer: a random forest on painted pixels of the subset's tiles (subsampled for full masks)."""
    import sklearn
    from sklearn.ensemble import RandomForestClassifier

    settings, names = {**FOREST_DEFAULTS, **spec.train}, data.class_names
    train = data.planes(data.train_ids(spec.subset), spec.labels, spec.painted_fraction)
    t0 = time.perf_counter()
    features = [forest_features(p.image, settings) for p in train]
    x = np.concatenate([f[p.labels > 0] for f, p in zip(features, train, strict=True)])
    y = np.concatenate([p.labels[p.labels > 0] for p in train])
    if len(y) > settings["max_pixels"]:
        keep = np.random.default_rng(spec.seed).choice(len(y), settings["max_pixels"], replace=False)
        x, y = x[keep], y[keep]
    t1 = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=settings["n_estimators"], max_depth=settings["max_depth"],
                                    n_jobs=_THREADS or -1, random_state=spec.seed).fit(x, y)
    t2 = time.perf_counter()

    def evaluate(planes):
        pairs = []
        for p in planes:
            f = forest_features(p.image, settings)
            pairs.append((forest.predict(f.reshape(-1, f.shape[-1])).reshape(p.labels.shape), p.labels))
        return iou_table(pairs, len(names), names)

    val = evaluate(data.planes(data.eval_ids("val", spec.val_tiles)))
    test_planes = data.planes(data.eval_ids("test", spec.test_tiles))
    t3 = time.perf_counter()
    test = evaluate(test_planes)
    per_tile = (time.perf_counter() - t3) / len(test_planes)
    env = environment(torch.device("cpu"))
    env["versions"]["sklearn"] = sklearn.__version__
    return {
        **env,
        "train_seconds": t2 - t0,
        "forest": {"train_pixels": len(y), "feature_seconds": t1 - t0, "fit_seconds": t2 - t1,
                   "predict_seconds_per_tile": per_tile},
        "forest_settings": settings,
        "val": val,
        "test": test,
        "curve": [{"point": "final", "step": 0, "seconds": t2 - t0, "val": val, "test": test}],
    }


# ---------------------------------------------------------------- step cost


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn, warmup: int, reps: int) -> float:
    """Median wall time of ``fn()`` (which must synchronise its device) after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_gflops(dtype: torch.dtype, device: torch.device, n: int = 2048) -> float:
    """Measured n x n matmul rate; products are timed in batches of >= 0.1 s so that a GPU's launch and
    synchronisation overheads do not count."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))

    def products(count: int) -> None:
        for _ in range(count):
            torch.mm(a, b)
        _sync(device)

    products(1)
    count = 1
    while median_seconds(partial(products, count), 0, 1) < 0.1 and count < 4096:
        count *= 4
    return 2 * n**3 * count / median_seconds(partial(products, count), 0, 3) / 1e9


def _matmul_rates(device: torch.device, bf16: bool) -> dict:
    """GFLOP/s of fp32 matmul, and of bf16 where the steps run in it (emulated, bf16 is slow and unused:
    2.4 s per 1024 x 1024 product on an AVX2 core)."""
    rate = {"fp32": matmul_gflops(torch.float32, device)}
    if bf16:
        rate["bf16"] = matmul_gflops(torch.bfloat16, device)
    return rate


def cost_path(out_dir) -> Path:
    return Path(out_dir) / f"cost-{device_slug(resolve_device('auto'))}.json"


def _step_times(train: list[Plane], names: list[str], model: ModelConfig, steps: int):
    """Seconds of every training step of each loss mode (interleaved_step_times); also the peak CUDA memory
    of each mode and the trainers."""
    trainers = {m: Trainer(train, TrainConfig(loss=m, steps=steps, eval_every=0), model, class_names=names)
                for m in MODES}
    times, peak_cuda = interleaved_step_times(trainers, steps)
    return times, peak_cuda, trainers


def interleaved_step_times(trainers: dict, steps: int) -> tuple[dict, dict]:
    """Seconds of every training step of each trainer, run step by step in turn so that they see the same
    machine conditions, and each one's peak CUDA memory; the trainers are run to their end."""
    device = next(iter(trainers.values())).device
    runs = {k: t.run() for k, t in trainers.items()}
    times = {k: [] for k in runs}
    elapsed = dict.fromkeys(runs, 0.0)
    peak_cuda = dict.fromkeys(runs, 0)
    for _ in range(steps):
        for m, run in runs.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            report = next(run)
            times[m].append(report.elapsed - elapsed[m])
            elapsed[m] = report.elapsed
            if device.type == "cuda":
                peak_cuda[m] = max(peak_cuda[m], torch.cuda.max_memory_allocated(device))
    for run in runs.values():
        for _ in run:
            pass
    return times, peak_cuda


def measure_cost(data: BenchData, out_dir, steps: int = 10, warmup: int = 3, command: str = "") -> dict:
    """Seconds per training step of each loss mode (the product's Trainer, batch 4 of 256 x 256, the modes
    interleaved step by step in one process), the relation term's own cost, FLOPs against the machine's
    matmul rate, inference time per 1024 x 1024 section and peak memory. Skipped if its file exists."""
    path = cost_path(out_dir)
    if path.exists():
        return json.loads(path.read_text())
    names, start = data.class_names, time.perf_counter()
    train = data.planes(data.train_ids(0))
    model = ModelConfig(n_classes=len(names))
    if _THREADS:
        torch.set_num_threads(_THREADS)
    times, peak_cuda, trainers = _step_times(train, names, model, warmup + steps)
    step = {m: statistics.median(t[warmup:]) for m, t in times.items()}
    device, config = trainers["none"].device, trainers["none"].config
    bf16 = config.mixed_precision and native_bf16(device)  # what the Trainer's steps ran in
    rates = [_matmul_rates(device, bf16)]
    scribbled = data.planes(data.train_ids(0), "scribbles", SCRIBBLE_FRACTION)
    scribbles, _, _ = _step_times(scribbled, names, model, warmup + steps)
    step_scribbles = {m: statistics.median(t[warmup:]) for m, t in scribbles.items()}

    segmenter = trainers["none"].segmenter
    sampler = PatchSampler(train, segmenter.normalizer, config.patch_size, np.random.default_rng(0))
    x, y = sampler.batch(config.batch_size)
    x = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
    target = torch.from_numpy(y).to(device) - 1
    shape = (config.batch_size, model.n_classes, model.embed_dim, config.patch_size, config.patch_size)
    dtype = torch.bfloat16 if bf16 else torch.float32
    generator = torch.Generator(device=device).manual_seed(0)
    relation = {}
    flat = (shape[0], shape[1] * shape[2], *shape[3:])
    for m in ("intra", "inter"):  # laid out like the network's output (channels last): it costs twice a dense one
        out = torch.randn(flat, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        out.requires_grad_()

        def once(mode=m, out=out):
            relation_loss(out.reshape(shape), target, RelationSettings(mode), None, generator).backward()
            _sync(device)

        relation[m] = median_seconds(once, warmup, steps)

    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        segmenter.net(x)
    flops = counter.get_total_flops()
    rates.append(_matmul_rates(device, bf16))
    # the machine's rate is the best of the two: on a shared machine one measurement fell to 233 GFLOP/s
    # against 424-429 in the runs before and after it, which read as a step below its bound
    rate = {k: max(r[k] for r in rates) for k in rates[0]}
    bound = 3 * flops / (rate["bf16" if bf16 else "fp32"] * 1e9)
    section = data.section("test")
    inference = median_seconds(lambda: predict(segmenter, section, probabilities=False), 1,
                               max(1, steps // 3))
    env = environment(device)
    result = {
        **env,
        "command": command,
        "batch_size": config.batch_size,
        "patch_size": config.patch_size,
        "mixed_precision": bf16,
        "model": model.to_dict(),
        "warmup_steps": warmup,
        "timed_steps": steps,
        "step_seconds": step,
        "step_seconds_all": times,
        "step_seconds_scribbles": step_scribbles,
        "step_vs_ce": {m: step[m] / step["none"] for m in MODES},
        "relation_seconds": relation,
        "relation_share": {m: relation[m] / step[m] for m in relation},
        "forward_gflop_per_batch": flops / 1e9,
        "forward_gflop_per_image": flops / 1e9 / config.batch_size,
        "matmul_gflops": rate,
        "matmul_gflops_each": {k: [r[k] for r in rates] for k in rate},  # after the full-mask steps, at the end
        "matmul_bound_step_seconds": bound,
        "step_vs_matmul_bound": {m: step[m] / bound for m in MODES},
        "inference_seconds_1024": inference,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wall_seconds": time.perf_counter() - start,
    }
    if device.type == "cuda":
        result["peak_cuda_mib"] = {m: v / 2**20 for m, v in peak_cuda.items()}
    write_json(path, result)
    return json.loads(path.read_text())


# ---------------------------------------------------------------- planning and the command line


def eval_schedule(minutes: float | None) -> list[float]:
    """The default eval points of a minutes budget (EVAL_SCHEDULE up to the budget)."""
    return [s for s in EVAL_SCHEDULE if minutes and s <= 60 * minutes]


def plan(args) -> tuple[list[RunSpec], bool]:
    """The runs (and whether to measure step cost) that the command line asks for, in the order to run
    them: the modes of one subset and seed side by side, so they see the same machine conditions."""
    if args.quick:
        common = {"subset": args.subsets[0], "seed": args.seeds[0], "test_tiles": args.test_tiles or 16,
                  "val_tiles": args.val_tiles or 8}
        steps = args.steps or 20
        specs = [RunSpec(mode=m, steps=steps, minutes=args.minutes, **common) for m in MODES]
        return specs + [RunSpec(labels="scribbles", mode="forest", **common)], True
    steps, minutes = args.steps, args.minutes
    if steps is None and minutes is None:
        minutes = DEFAULT_MINUTES
    if args.eval_seconds is None and args.eval_steps is None:  # defaults: a curve over the budget
        evals = {"eval_seconds": eval_schedule(minutes),
                 "eval_steps": [] if minutes else [s for s in (steps // 4, steps // 2) if s > 0]}
    else:
        evals = {"eval_seconds": args.eval_seconds or [], "eval_steps": args.eval_steps or []}
    tiles = {"test_tiles": args.test_tiles, "val_tiles": args.val_tiles}
    parts = set(PARTS[:-1]) if args.part == "all" else {args.part} if args.part else set()
    specs = [RunSpec.from_dict(d) for d in json.loads(Path(args.specs).read_text())] if args.specs else []
    for labels, part in (("full", "table"), ("scribbles", "scribbles")):
        if part in parts:
            specs += [RunSpec(subset=s, labels=labels, mode=m, seed=seed, steps=steps, minutes=minutes,
                              **evals, **tiles) for s in args.subsets for seed in args.seeds for m in MODES]
    if "forest" in parts:
        specs += [RunSpec(subset=s, labels=labels, mode="forest", seed=seed, **tiles)
                  for labels in ("full", "scribbles") for s in args.subsets for seed in args.seeds]
    if "ceiling" in parts:
        specs.append(RunSpec(subset="all", mode="none", seed=args.seeds[0], minutes=args.ceiling_minutes,
                             eval_seconds=eval_schedule(args.ceiling_minutes), **tiles))
    return specs, "cost" in parts


def use_threads(threads: int) -> None:
    """Limit this process (torch, the forest, every Trainer it builds) to ``threads`` CPU threads."""
    global _THREADS
    _THREADS = threads
    torch.set_num_threads(threads)


@contextmanager
def threads_limited(threads: int | None):
    """Within the block this process uses ``threads`` CPU threads (None: unchanged); restored after, so
    an in-process caller such as a test keeps its own settings."""
    global _THREADS
    before = _THREADS, torch.get_num_threads()
    if threads:
        use_threads(threads)
    try:
        yield
    finally:
        _THREADS = before[0]
        torch.set_num_threads(before[1])


def _run_in_worker(spec: dict, data: str, out_dir: str, command: str) -> dict:
    return run_one(RunSpec.from_dict(spec), load_data(data), out_dir, command)


def _summary(result: dict) -> str:
    test, val = result["test"]["mIoU"], result["val"]["mIoU"]
    pct = "n/a" if test is None or val is None else f"test mIoU {100 * test:.1f}, val {100 * val:.1f}"
    return f"{pct}, {result.get('steps', 0)} steps, {result['wall_seconds']:.0f} s"


def _outcomes(todo: list[RunSpec], data: Path, out_dir: Path, workers: int, command: str):
    """Yield (spec, its result or the exception it raised) as runs finish, in this process or in
    ``workers`` spawned processes with ``_THREADS`` (default cores/workers) threads each."""
    if workers <= 1:
        for spec in todo:
            try:
                yield spec, run_one(spec, load_data(str(data)), out_dir, command)
            except Exception as e:  # reported; the remaining runs go on
                yield spec, e
        return
    threads = _THREADS or max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
    with ProcessPoolExecutor(workers, mp_context=context, initializer=use_threads,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(_run_in_worker, s.to_dict(), str(data), str(out_dir), command): s
                   for s in todo}
        for future in as_completed(futures):
            yield futures[future], future.exception() or future.result()


def run_all(specs: list[RunSpec], data: Path, out_dir: Path, workers: int, command: str) -> list[str]:
    """Run every spec whose result file is missing; return the failures (a failure does not stop the rest)."""
    todo = [s for s in specs if not (out_dir / f"{s.name}.json").exists()]
    print(f"{len(specs)} runs, {len(specs) - len(todo)} already done, {len(todo)} to run", flush=True)
    failures = []
    for i, (spec, outcome) in enumerate(_outcomes(todo, data, out_dir, workers, command), 1):
        if isinstance(outcome, Exception):
            failures.append(f"{spec.name}: {type(outcome).__name__}: {outcome}")
            print(f"[{i}/{len(todo)}] {spec.name} FAILED: {outcome}", flush=True)
        else:
            print(f"[{i}/{len(todo)}] {spec.name}: {_summary(outcome)}", flush=True)
    return failures


def _numbers(kind):
    return lambda text: [kind(v) for v in text.split(",") if v.strip()]


def _subset(text: str):
    return [v if v == "all" else int(v) for v in text.split(",")]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pixrel bench",
        description="Benchmark on the Drosophila EM tiles (paper protocol). Resumable: a run whose result "
                    "file exists is skipped. Writes JSON per run, RESULTS.md and learning_speed.png.")
    p.add_argument("--quick", action="store_true",
                   help="CI check: one subset, the 3 loss modes for 20 steps, forest on scribbles, step "
                        "cost; 16 test / 8 val tiles; into a temporary folder unless --out; then validate")
    p.add_argument("--part", choices=PARTS, help="which part of the benchmark to run")
    p.add_argument("--specs", help="JSON file with a list of RunSpec dicts to run (settings sweeps)")
    p.add_argument("--report", action="store_true", help="only aggregate the result files of --out")
    p.add_argument("--subsets", type=_subset, default=[0, 1, 2, 3, 4], help="comma-separated, e.g. 0,1,2")
    p.add_argument("--seeds", type=_numbers(int), default=[0], help="comma-separated, e.g. 0,1")
    p.add_argument("--minutes", type=float, help=f"training budget per run (default {DEFAULT_MINUTES:g} "
                                                  "unless --steps)")
    p.add_argument("--steps", type=int, help="training steps per run (with --minutes: whichever ends first)")
    p.add_argument("--eval-seconds", type=_numbers(float),
                   help="training seconds at which val and test are measured (default: 15, 30, 60, 120, ... "
                        "up to the budget; with --steps alone: a quarter and half of the steps)")
    p.add_argument("--eval-steps", type=_numbers(int),
                   help="training steps at which val and test are measured")
    p.add_argument("--ceiling-minutes", type=float, default=CEILING_MINUTES,
                   help="budget of the CE run on all 192 train tiles")
    p.add_argument("--test-tiles", type=int, help="evaluate on N evenly spaced test tiles (default all 80)")
    p.add_argument("--val-tiles", type=int, help="evaluate on N evenly spaced val tiles (default all 48)")
    p.add_argument("--cost-steps", type=int, help="timed steps per mode for step cost (default 10, quick 3)")
    p.add_argument("--workers", type=int, default=1,
                   help="parallel processes, each with cores/N threads (on CUDA all share the GPU)")
    p.add_argument("--threads", type=int,
                   help="CPU threads per process (default: all cores, or cores/N with --workers)")
    p.add_argument("--data", help=f"data folder (default $PIXREL_BENCH_DATA or {DEFAULT_DATA})")
    p.add_argument("--out", help=f"results folder (default {DEFAULT_OUT}; --quick: a temporary folder)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.quick:
        args.subsets = [s for s in args.subsets if s != "all"] or [0]
    if args.out:
        out = Path(args.out)
    else:
        out = Path(tempfile.mkdtemp(prefix="pixrel-bench-quick-")) if args.quick else DEFAULT_OUT
    if args.report:
        print(f"wrote {bench_report.report(out)}")
        return 0
    specs, cost = plan(args)
    if not specs and not cost:
        parser().error("nothing to run: give --quick, --part, --specs or --report")
    data = data_path(args.data)
    if not (data / "split.json").exists():
        print(f"no benchmark data in {data}: pass --data or set PIXREL_BENCH_DATA", file=sys.stderr)
        return 2
    command = "pixrel bench " + " ".join(argv if argv is not None else sys.argv[1:])
    with threads_limited(args.threads):
        problems = _run_and_check(args, specs, cost, data, out, command)
    return 1 if problems else 0


def _run_and_check(args, specs: list[RunSpec], cost: bool, data: Path, out: Path, command: str) -> list[str]:
    """Measure cost and run the specs, write the report, and return every problem found."""
    start = time.perf_counter()
    failures = []
    if cost:  # before any parallel runs, so the timings see a quiet machine
        cost_steps = args.cost_steps or (3 if args.quick else 10)
        try:
            measure_cost(load_data(str(data)), out, cost_steps, min(3, cost_steps), command)
        except Exception as e:  # reported; the runs go on
            failures.append(f"cost: {type(e).__name__}: {e}")
    failures += run_all(specs, data, out, args.workers, command)
    print(f"wrote {bench_report.report(out)}")
    problems = failures + check_results(out, specs, load_data(str(data)).class_names, cost)
    for problem in problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    status = "FAILED" if problems else "ok"
    print(f"{status}: {len(specs)} runs in {out} ({time.perf_counter() - start:.0f} s)")
    return problems


if __name__ == "__main__":
    sys.exit(main())
