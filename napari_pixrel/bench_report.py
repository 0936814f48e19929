"""RESULTS.md and learning_speed.png from a folder of benchmark result files.

Runs are grouped by device and by everything in their spec except subset and seed, so every settings
variant (issue 6) is a row of its own with mean ± sd over subsets and seeds; the headline table (issue 4)
uses the groups with the paper's settings (bench.PAPER_TRAIN, whatever the product's
defaults are). IoU is stored as a fraction and shown in percent.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

PAPER = {"none": (87.02, 54.98, 28.34, 56.78), "intra": (88.68, 62.17, 40.01, 63.41),
         "inter": (88.87, 63.45, 40.27, 64.20)}
PAPER_BEST = 64.20
NET_MODES = ("none", "intra", "inter")
MODE_NAMES = {"forest": "forest", "none": "CE", "intra": "within", "inter": "across"}
LABEL_NAMES = {"full": "Full masks", "scribbles": "Scribbles (~2% of pixels)",
               "patches": "Fully painted squares (~50% of pixels)",
               "patches32": "Fully painted 32-pixel squares (~50% of pixels)",
               "patches128": "Fully painted 128-pixel squares (~50% of pixels)"}
RELATION_ONLY = {"relation_weight", "warmup_steps", "ramp_steps", "relation_decay", "anchors_per_class",
                 "negative_target", "hard_anchors"}


def device_label(device: dict) -> str:
    n = device["threads"]
    threads = f" ({n} thread{'s' if n != 1 else ''})" if device["type"] == "cpu" else ""
    emulated = ", no native bf16" if device.get("bf16") is False else ""  # trains in fp32: not comparable
    return f"{device['type']}: {device['name']}{threads}{emulated}"


def mean_sd(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


@dataclass
class Group:
    """Runs that differ only in subset and seed."""

    device: str
    runs: list[dict]

    @property
    def spec(self) -> dict:
        return self.runs[0]["spec"]

    @property
    def mode(self) -> str:
        return self.spec["mode"]

    @property
    def labels(self) -> str:
        """"full", "scribbles" (~2%) or "scribbles 25%" for another painted fraction."""
        painted = self.spec.get("painted")
        return f"{self.spec['labels']} {painted:.0%}" if painted else self.spec["labels"]

    @property
    def few_shot(self) -> bool:
        return self.spec["subset"] != "all"

    @property
    def default(self) -> bool:
        return not self.spec["train"] and not self.spec["model"]

    @property
    def tiles(self) -> tuple:
        return self.spec["test_tiles"], self.spec["val_tiles"]

    @property
    def budget(self) -> str:
        parts = [f"{self.spec['minutes']:g} min" if self.spec["minutes"] else "",
                 f"{self.spec['steps']} steps" if self.spec["steps"] else ""]
        return " or ".join(p for p in parts if p) or "—"

    @property
    def settings(self) -> str:
        items = {**self.spec["train"], **self.spec["model"]}
        return ", ".join(f"{k}={v}" for k, v in sorted(items.items())) or "paper's"

    @property
    def data(self) -> str:
        return "4 tiles" if self.few_shot else "192 tiles"

    def context(self) -> tuple:
        """What must match for two groups to be compared."""
        return self.device, self.labels, self.few_shot, self.budget, self.tiles

    def values(self, split: str, key: str = "mIoU") -> list[float]:
        return [100 * r[split][key] for r in self.runs if r[split][key] is not None]

    def by_pair(self, split: str) -> dict:
        return {(r["spec"]["subset"], r["spec"]["seed"]): 100 * r[split]["mIoU"] for r in self.runs
                if r[split]["mIoU"] is not None}

    def steps(self) -> str:
        steps = [r["steps"] for r in self.runs if r.get("steps")]
        return f"{statistics.median(steps):.0f}" if steps else "—"

    @property
    def step_budget(self) -> bool:
        """Runs budgeted in steps only: their curves are compared at equal steps, not seconds."""
        return self.spec.get("minutes") is None and bool(self.spec.get("steps"))

    def curve(self, x: str = "seconds") -> list[tuple[float, float]]:
        """(mean training seconds or steps, mean test mIoU %) at the eval points every run reached (the live
        weights: a "final" point, which may score weights kept from an earlier step, stays out)."""
        points = [{p["point"]: p for p in r["curve"] if p["point"] != "final"} for r in self.runs]
        common = [k for k in points[0] if all(k in pts for pts in points)]
        out = []
        for k in common:
            xs = [pts[k][x] for pts in points]
            miou = [100 * pts[k]["test"]["mIoU"] for pts in points if pts[k]["test"]["mIoU"] is not None]
            if miou and None not in xs:
                out.append((statistics.mean(xs), statistics.mean(miou)))
        return sorted(out)


def is_run_file(path: Path) -> bool:
    """Whether ``path`` is named like a run's result file: RunSpec.name, "...-seed<N>-<8 hex digits>"."""
    return path.suffix == ".json" and re.search(r"-seed\d+-[0-9a-f]{8}$", path.stem) is not None


def load(out_dir: Path) -> tuple[list[Group], list[dict]]:
    """The folder's run results, grouped, and its step-cost results; other JSON files (a benchmark script's own
    results) are left out."""
    groups: dict[tuple, Group] = {}
    costs = []
    for path in sorted(out_dir.glob("*.json")):
        if path.name.startswith("cost-"):
            costs.append(json.loads(path.read_text()))
            continue
        if not is_run_file(path):
            continue
        result = json.loads(path.read_text())
        spec = {k: v for k, v in result["spec"].items() if k not in ("subset", "seed")}
        device = device_label(result["device"])
        key = (device, result["spec"]["subset"] == "all", json.dumps(spec, sort_keys=True))
        groups.setdefault(key, Group(device, [])).runs.append(result)
    order = {m: i for i, m in enumerate(("forest",) + NET_MODES)}
    ordered = sorted(groups.values(), key=lambda g: (g.device, not g.few_shot, g.spec["labels"],
                                                     g.spec.get("painted") or 0, g.budget,
                                                     order[g.mode], g.settings))
    return ordered, costs


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(row) + " |" for row in rows]


def _forest_for(groups: list[Group], labels: str, tiles: tuple, device: str) -> Group | None:
    """The default forest on the same labels and test tiles, preferring the same machine."""
    forests = [g for g in groups if g.mode == "forest" and g.default and g.few_shot and g.labels == labels
               and g.tiles == tiles]
    return next((g for g in forests if g.device == device), forests[0] if forests else None)


def _headline(groups: list[Group]) -> list[str]:
    nets = [g for g in groups if g.default and g.few_shot and g.mode in NET_MODES]
    lines = []
    for device, budget, tiles in sorted({(g.device, g.budget, g.tiles) for g in nets}, key=str):
        for labels in LABEL_NAMES:
            here = (device, budget, tiles, labels)
            cols = {g.mode: g for g in nets if (g.device, g.budget, g.tiles, g.labels) == here}
            if not cols:
                continue
            forest = _forest_for(groups, labels, tiles, device)
            ours = ([("forest", forest)] if forest else []) + [(m, cols.get(m)) for m in NET_MODES]
            paper = [f"paper {MODE_NAMES[m]}" for m in NET_MODES] if labels == "full" else []
            class_names = [k for k in next(iter(cols.values())).runs[0]["test"] if k != "mIoU"]
            rows = []
            for i, name in enumerate(class_names + ["mIoU"]):
                cells = [f"{PAPER[m][i]:.2f}" for m in NET_MODES] if paper else []
                cells += [mean_sd(g.values("test", name)) if g else "—" for _, g in ours]
                rows.append([f"**{name}**" if name == "mIoU" else name] + cells)
            blank = ["—"] * len(paper)
            rows.append(["val mIoU"] + blank + [mean_sd(g.values("val")) if g else "—" for _, g in ours])
            rows.append(["n runs"] + blank + [str(len(g.runs)) if g else "0" for _, g in ours])
            rows.append(["steps (median)"] + blank + [g.steps() if g and g.mode != "forest" else "—"
                                                       for _, g in ours])
            test_tiles = tiles[0] or 80
            forest_note = f"; forest on {forest.device}" if forest and forest.device != device else ""
            lines += [f"**{LABEL_NAMES[labels]}** — device: {device}; budget: {budget} per run; test IoU % "
                      f"on {test_tiles} test tiles, mean ± sd over subsets and seeds{forest_note}.", ""]
            lines += _table([""] + paper + [MODE_NAMES[m] for m, _ in ours], rows) + [""]
    ceilings = [g for g in groups if not g.few_shot and g.mode == "none"]
    for ceiling in ceilings:
        top = statistics.mean(ceiling.values("test"))
        lines.append(f"Ceiling: CE on all 192 train tiles ({ceiling.budget}, {ceiling.device}): test mIoU "
                     f"{top:.1f}.")
        for g in nets:
            if (g.mode, g.labels, g.device, g.tiles) == ("none", "full", ceiling.device, ceiling.tiles):
                share = 100 * statistics.mean(g.values("test")) / top
                lines.append(f"- CE on 4 tiles ({g.budget}) reaches {share:.0f}% of it.")
        lines.append("")
    return lines


def _reference(group: Group, groups: list[Group]) -> Group | None:
    """The CE group a relation variant is paired with: same context and settings minus relation-only ones."""
    train = {k: v for k, v in group.spec["train"].items() if k not in RELATION_ONLY}
    return next((g for g in groups if g.mode == "none" and g.context() == group.context()
                 and g.spec["train"] == train and g.spec["model"] == group.spec["model"]), None)


def _paired(group: Group, reference: Group | None, split: str) -> str:
    if reference is None or group is reference or group.mode == "forest":
        return "—"
    ref = reference.by_pair(split)
    diffs = [v - ref[k] for k, v in group.by_pair(split).items() if k in ref]
    return f"{mean_sd(diffs)} (n={len(diffs)})" if diffs else "—"


def _variants(groups: list[Group]) -> list[str]:
    lines = []
    for device in sorted({g.device for g in groups}):
        rows = []
        for g in (g for g in groups if g.device == device):
            ref = _reference(g, groups)
            step_s = [r["step_seconds_median"] for r in g.runs if r.get("step_seconds_median")]
            class_names = [k for k in g.runs[0]["test"] if k != "mIoU"]
            rows.append([g.data, g.labels, MODE_NAMES[g.mode], g.budget, g.settings, str(len(g.runs)),
                         mean_sd(g.values("val")), mean_sd(g.values("test"))]
                        + [mean_sd(g.values("test", c)) for c in class_names]
                        + [_paired(g, ref, "val"), _paired(g, ref, "test"), g.steps(),
                           f"{statistics.median(step_s):.3f}" if step_s else "—"])
        lines += [f"Device: {device}. Δ = paired difference to CE with the same settings (same subset and "
                  "seed), mIoU points.", ""]
        lines += _table(["data", "labels", "mode", "budget", "settings", "n", "val mIoU", "test mIoU"]
                        + class_names + ["Δ val vs CE", "Δ test vs CE", "steps", "s/step"], rows) + [""]
    return lines


def _speed(groups: list[Group], out_dir: Path) -> list[str]:
    """Plot test mIoU against training seconds; tabulate when each curve passes the forests and 64.2."""
    curves = {}  # (device, labels) -> [(name, curve)]
    for g in groups:
        if g.mode == "forest" or len(g.curve()) < 2:
            continue
        best_relation = max((h for h in groups if h.mode in ("intra", "inter") and h.context() == g.context()
                             and len(h.curve()) >= 2), key=lambda h: statistics.mean(h.values("val") or [0]),
                            default=None)
        if g.default or g is best_relation or not g.few_shot:
            name = f"{MODE_NAMES[g.mode]} ({g.budget}{'' if g.default else ', ' + g.settings})"
            if not g.few_shot:
                name = f"ceiling: {name}, 192 tiles"
            curves.setdefault((g.device, g.labels), []).append((name, g))
    if not curves:
        return ["No learning curves yet (runs need a time budget and eval points).", ""]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = sorted({d for d, _ in curves})
    kinds = [k for k in LABEL_NAMES if any(labels == k for _, labels in curves)]
    fig, axes = plt.subplots(len(devices), len(kinds), figsize=(6 * len(kinds), 4.5 * len(devices)),
                             squeeze=False)
    rows = []
    for i, device in enumerate(devices):
        for j, labels in enumerate(kinds):
            ax = axes[i, j]
            thresholds = [PAPER_BEST]
            panel = curves.get((device, labels), [])
            if any(not g.step_budget for _, g in panel):  # wall-clock curves: equal-step studies stay out
                panel = [(name, g) for name, g in panel if not g.step_budget]
            if not panel:  # this device has curves for the other kind of labels only
                ax.axis("off")
                continue
            tiles = next((g.tiles for _, g in panel), (None, None))
            x = "step" if all(g.step_budget for _, g in panel) else "seconds"
            unit = "steps" if x == "step" else "s"
            for forest_labels in LABEL_NAMES:
                forest = _forest_for(groups, forest_labels, tiles, device)
                level = statistics.mean(forest.values("test")) if forest else None
                thresholds.append(level)
                if level is not None:
                    color = "tab:brown" if forest_labels == "full" else "tab:olive"
                    label = f"forest, {forest_labels} ({level:.1f})"
                    ax.axhline(level, ls="--", lw=1, color=color, label=label)
            ax.axhline(PAPER_BEST, ls=":", color="k", lw=1, label="paper best (64.2)")
            for name, g in panel:
                curve = g.curve(x)
                ax.plot(*zip(*curve, strict=True), marker="o", ms=3, label=f"{name}, n={len(g.runs)}")
                passes = []
                for level in thresholds:
                    hit = next((s for s, m in curve if level is not None and m >= level), None)
                    passes.append("—" if level is None else f"{hit:.0f} {unit}" if hit is not None
                                  else f"not in {curve[-1][0]:.0f} {unit}")
                rows.append([device, labels, name, f"{curve[-1][1]:.1f}"] + passes)
            xlabel = "training steps" if x == "step" else "training seconds"
            ax.set(title=f"{LABEL_NAMES[labels]} — {device}", xlabel=xlabel,
                   ylabel="test mIoU % (mean over runs)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)  # below: curves stay clear
    fig.tight_layout()
    fig.savefig(out_dir / "learning_speed.png", dpi=110)
    plt.close(fig)
    header = ["device", "labels", "curve", "final test mIoU", "passes 64.2", "passes forest, full",
              "passes forest, scribbles"]
    return (["![learning speed](learning_speed.png)", "",
             "Time to pass (training seconds, or steps for step-budget runs; first eval point at or above the "
             "level; mean curve):", ""]
            + _table(header, rows) + [""])


def _last_weights(run: dict) -> dict | None:
    """The eval point that scored a run's last step on its live weights, if one did."""
    live = [p for p in run["curve"] if p["point"] != "final" and p["step"] == run["steps"]]
    return live[-1] if live else None


def _kept(groups: list[Group]) -> list[str]:
    """Runs that keep the weights best on val (keep="best"): those weights against the last step's."""
    rows = []
    for g in groups:
        pairs = [(_last_weights(r), r) for r in g.runs if g.spec["train"].get("keep") == "best"]
        pairs = [(last, r) for last, r in pairs if last is not None]
        if not pairs:
            continue
        scores = {split: ([100 * last[split]["mIoU"] for last, _ in pairs], [100 * r[split]["mIoU"] for _, r in pairs])
                  for split in ("val", "test")}
        gain = [k - w for w, k in zip(*scores["test"], strict=True)]
        earlier = sum(r["kept_step"] < r["steps"] for _, r in pairs)
        rows.append([g.device, g.labels, f"{MODE_NAMES[g.mode]} ({g.budget}, {g.settings})", str(len(pairs)),
                     mean_sd(scores["val"][0]), mean_sd(scores["val"][1]), mean_sd(scores["test"][0]),
                     mean_sd(scores["test"][1]), mean_sd(gain), f"{earlier}/{len(pairs)}"])
    if not rows:
        return []
    return ["## Kept weights (best on val) against the last step's", "",
            "Runs with keep=best: the trainer scores the val tiles every eval_every steps and ends on the best "
            "evaluation; \"last\" is the eval point at the run's last step, on its live weights.", ""] + _table(
        ["device", "labels", "runs", "n", "val, last", "val, kept", "test, last", "test, kept", "Δ test",
         "kept an earlier step"], rows) + [""]


def _cost(costs: list[dict]) -> list[str]:
    lines = []
    for c in costs:
        rate, model, each = c["matmul_gflops"], c["model"], c.get("matmul_gflops_each", {})
        best_of = {k: f" (best of {', '.join(f'{v:.0f}' for v in each[k])})" if k in each else "" for k in rate}
        lines += [
            f"Device: {device_label(c['device'])}; batch {c['batch_size']} × {c['patch_size']}², "
            f"bf16 autocast: {'yes' if c['mixed_precision'] else 'no'}; {model['encoder']} U-Net, "
            f"{model['head']} head, D={model['embed_dim']}; median of {c['timed_steps']} steps after "
            f"{c['warmup_steps']} warm-up, modes interleaved"
            + (f"; commit {c['versions']['commit']}." if c.get("versions", {}).get("commit") else "."),
            f"Forward {c['forward_gflop_per_image']:.1f} GFLOP per image; matmul "
            + (f"{rate['bf16']:.0f} GFLOP/s bf16{best_of['bf16']}, " if "bf16" in rate else "")
            + f"{rate['fp32']:.0f} GFLOP/s fp32{best_of['fp32']}; matmul-bound step (3 × forward FLOPs) "
            f"{c['matmul_bound_step_seconds']:.3f} s. Inference {c['inference_seconds_1024']:.2f} s per "
            f"1024 × 1024 section; peak RSS {c['peak_rss_mib']:.0f} MiB.", ""]
        cuda, scribbles = c.get("peak_cuda_mib"), c.get("step_seconds_scribbles", {})
        rows = [[MODE_NAMES[m], f"{c['step_seconds'][m]:.3f}", f"{c['step_vs_ce'][m]:.2f}",
                 f"{scribbles[m]:.3f}" if m in scribbles else "—",
                 f"{c['relation_seconds'][m]:.3f}" if m in c["relation_seconds"] else "—",
                 f"{100 * c['relation_share'][m]:.0f}%" if m in c["relation_share"] else "—",
                 f"{c['step_vs_matmul_bound'][m]:.2f}"] + ([f"{cuda[m]:.0f}"] if cuda else [])
                for m in NET_MODES]
        lines += _table(["mode", "s/step", "× CE", "s/step, scribbles", "relation fwd+bwd s", "relation share of step",
                         "step / matmul bound"] + (["peak CUDA MiB"] if cuda else []), rows) + [""]
    return lines or ["No step-cost measurement yet (`pixrel bench --part cost`).", ""]


def report(out_dir) -> Path:
    """Write ``out_dir/RESULTS.md`` (and ``learning_speed.png`` when there are curves); return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups, costs = load(out_dir)
    runs = [r for g in groups for r in g.runs]
    seconds: dict[str, float] = {}
    for r in runs:
        device = device_label(r["device"])
        seconds[device] = seconds.get(device, 0.0) + r["wall_seconds"]
    wall = "; ".join(f"{d}: {s / 3600:.2f} h" if s >= 3600 else f"{d}: {s / 60:.1f} min"
                     for d, s in sorted(seconds.items()))
    commands = sorted({r["command"] for r in runs + costs if r.get("command")})
    lines = ["# Benchmark results", "",
             "Generated by `pixrel bench` from the JSON files in this folder (do not edit by hand). Data: "
             "Drosophila VNC ssTEM (Gerhard et al. 2013, doi:10.6084/m9.figshare.856713, CC BY-NC-SA 3.0), "
             "paper split: 4-tile subsets, 48 val and 80 test tiles of 256 × 256; IoU accumulated over all "
             "pixels of a split.", "",
             f"{len(runs)} runs; wall time: {wall or '—'}.",
             "Commands: " + ("; ".join(f"`{c}`" for c in commands) or "—"), "",
             "## The paper's table (the paper's settings: relation weight 1, one anchor per class, D = 8)", ""]
    lines += _headline(groups) or ["No runs with the paper's settings yet.", ""]
    lines += ["## Learning speed", ""] + _speed(groups, out_dir)
    lines += _kept(groups)
    lines += ["## Step cost", ""] + _cost(costs)
    lines += ["## Every setting (mean ± sd over subsets and seeds)", ""]
    lines += _variants(groups) or ["No runs.", ""]
    path = out_dir / "RESULTS.md"
    path.write_text("\n".join(lines))
    return path
