"""The benchmark harness: the quick path end to end on a tiny budget, resumability, the result checks
and the run names that keep results of different settings apart."""

import json

import pytest
import torch

from napari_pixrel import bench

# one thread: a shared 2-core machine slows two-thread torch far more than it slows one thread
TINY = ["--quick", "--threads", "1", "--steps", "3", "--test-tiles", "2", "--val-tiles", "2",
        "--cost-steps", "1"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if not (bench.data_path(None) / "split.json").exists():
        pytest.skip(f"benchmark data not found at {bench.data_path(None)} (set PIXREL_BENCH_DATA)")
    out = tmp_path_factory.mktemp("bench")
    threads = torch.get_num_threads()
    assert bench.main(TINY + ["--out", str(out)]) == 0
    assert torch.get_num_threads() == threads  # --threads is undone for in-process callers
    return out


def test_quick_writes_valid_results_and_report(results):
    runs = [p for p in results.glob("*.json") if not p.name.startswith("cost-")]
    modes = sorted(json.loads(p.read_text())["spec"]["mode"] for p in runs)
    assert modes == ["forest", "inter", "intra", "none"]
    class_names = bench.load_data(str(bench.data_path(None))).class_names
    for path in runs:
        assert bench.check_result(json.loads(path.read_text()), class_names) == []
    cost = json.loads(next(results.glob("cost-*.json")).read_text())
    assert bench.check_cost(cost) == [] and set(cost["step_seconds_scribbles"]) == {"none", "intra", "inter"}
    # the bound uses the best of the matmul rates measured before and after the scribble steps
    assert all(len(v) == 2 and cost["matmul_gflops"][k] == max(v) for k, v in cost["matmul_gflops_each"].items())
    text = (results / "RESULTS.md").read_text()
    assert "paper across" in text and "Step cost" in text


def test_second_call_skips_finished_runs(results):
    stamps = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}
    assert bench.main(TINY + ["--out", str(results)]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")} == stamps


def test_check_result_flags_non_finite_numbers(results):
    path = next(p for p in results.glob("full-*none*.json"))
    result = json.loads(path.read_text())
    result["test"]["mIoU"] = None  # how NaN is stored
    result["curve"][0]["val"]["membrane"] = float("inf")
    problems = bench.check_result(result, ["background", "membrane", "mitochondria"])
    assert len(problems) == 2 and any("test.mIoU" in p for p in problems)


def test_report_only(results):
    (results / "RESULTS.md").unlink()
    assert bench.main(["--report", "--out", str(results)]) == 0
    assert (results / "RESULTS.md").exists()


def test_keep_best_scores_the_weights_that_were_best_on_val(results, tmp_path):
    spec = bench.RunSpec(subset=0, steps=3, eval_steps=(1, 2, 3), test_tiles=2, val_tiles=2,
                         train={"keep": "best", "eval_every": 1, "lr": 0.05})  # lr 0.05: step 3 falls back
    result = bench.run_one(spec, bench.load_data(str(bench.data_path(None))), tmp_path)
    assert bench.check_result(result, ["background", "membrane", "mitochondria"]) == []
    at_steps = [point["val"]["mIoU"] for point in result["curve"][:3]]
    assert result["kept_step"] < result["steps"] == 3 and at_steps[-1] < max(at_steps)
    assert [p["point"] for p in result["curve"]] == ["1steps", "2steps", "3steps", "final"]
    assert result["val"] == result["curve"][result["kept_step"] - 1]["val"]  # scored on the kept weights
    assert result["test"] == result["curve"][result["kept_step"] - 1]["test"]


def test_run_names_follow_every_setting():
    spec = bench.RunSpec(subset=1, mode="intra", steps=10, train={"relation_weight": 1})
    same = bench.RunSpec.from_dict(json.loads(json.dumps({**spec.to_dict(), "name": spec.name})))
    assert same == spec and same.name == spec.name
    assert spec.name == bench.RunSpec(subset=1, mode="intra", steps=10, train={"relation_weight": 1.0}).name
    assert spec.name.startswith("full-s1-intra-seed0-")
    assert spec.name != bench.RunSpec(subset=1, mode="intra", steps=10, train={"relation_weight": 0.1}).name
    assert spec.name != bench.RunSpec(subset=1, mode="intra", steps=11, train={"relation_weight": 1}).name


def test_painted_fraction_names_its_runs_and_leaves_older_names_alone():
    scribbles = bench.RunSpec(subset=0, labels="scribbles", steps=10)
    assert "painted" not in scribbles.to_dict() and scribbles.painted_fraction == bench.SCRIBBLE_FRACTION
    committed = [p for p in (bench.REPO / "benchmarks/results").glob("*/*.json") if bench.bench_report.is_run_file(p)]
    assert len(committed) > 100
    for path in committed:  # result files written before `painted` existed are still found on rerun
        assert bench.RunSpec.from_dict(json.loads(path.read_text())["spec"]).name == path.stem
    denser = bench.RunSpec(subset=0, labels="scribbles", steps=10, painted=0.25)
    assert denser.name != scribbles.name and denser.painted_fraction == 0.25
    assert bench.RunSpec.from_dict(denser.to_dict()) == denser
    assert bench.RunSpec(subset=0, steps=10).painted_fraction is None
    patches = bench.RunSpec(subset=0, labels="patches", steps=10)
    assert patches.painted_fraction == bench.PATCH_FRACTION and patches.name.startswith("patches-s0-")
    smaller = bench.RunSpec(subset=0, labels="patches32", steps=10)
    assert smaller.painted_fraction == bench.PATCH_FRACTION and smaller.name.startswith("patches32-s0-")
    with pytest.raises(ValueError, match="partial labels only"):
        bench.RunSpec(subset=0, steps=10, painted=0.5)


@pytest.mark.parametrize("bad, says", [
    ({"subset": 0, "mode": "relation", "steps": 5}, "mode 'relation' is not one of"),
    ({"subset": 0, "labels": "sparse", "steps": 5}, "labels 'sparse' is not one of"),
    ({"subset": 0, "steps": 5, "train": {"learning_rate": 1e-3}}, r"unknown settings \['learning_rate'\]"),
    ({"subset": 0, "steps": 5, "train": {"loss": "intra"}}, r"unknown settings \['loss'\]"),  # the spec's mode sets it
    ({"subset": 0, "steps": 5, "model": {"head": "linear"}}, "head 'linear' is not one of"),
    ({"subset": 0}, "give a number of steps, a time budget"),
    ({"subset": 0, "mode": "forest", "steps": 5}, "a forest run has no training budget"),
    ({"subset": -1, "steps": 5}, "subset -1 is not a few-shot subset"),
    ({"subset": 0, "steps": 5, "painted": 0.1}, "painted=0.1: .* for partial labels only"),
    ({"subset": 0, "labels": "scribbles", "steps": 5, "painted": 1.0}, "painted=1.0: a fraction between 0 and 1"),
])
def test_bad_specs_fail_early(bad, says):
    with pytest.raises(ValueError, match=says):
        bench.RunSpec(**bad)


def _fake_result(spec: "bench.RunSpec", miou: float) -> dict:
    """A result file as run_one writes it, with made-up numbers (for the report alone)."""
    iou = {"background": 0.9, "membrane": 0.6, "mitochondria": miou * 3 - 1.5, "mIoU": miou}
    seconds = list(spec.eval_seconds) or [1.0]
    curve = [{"point": f"{s:g}s", "step": 10 * (i + 1), "seconds": s + 0.3, "val": iou,
              "test": {**iou, "mIoU": miou * (i + 1) / len(seconds)}} for i, s in enumerate(seconds)]
    return {"name": spec.name, "spec": spec.to_dict(), "command": "pixrel bench --part all",
            "device": {"type": "cpu", "name": "Test CPU", "threads": 2}, "wall_seconds": 60.0,
            "steps": 100, "step_seconds_median": 0.5, "val": iou, "test": iou, "curve": curve}


def test_report_tables_plot_and_pairing(tmp_path):
    evals = {"minutes": 1, "eval_seconds": [15, 30, 60]}
    specs = [(bench.RunSpec(subset=s, mode=m, seed=seed, **evals), 0.6 + 0.01 * s + 0.02 * i)
             for s in range(3) for seed in (0, 1) for i, m in enumerate(("none", "intra", "inter"))]
    specs += [(bench.RunSpec(subset=s, mode="intra", train={"relation_weight": 0.1}, **evals), 0.7)
              for s in range(3)]
    specs += [(bench.RunSpec(subset=s, labels=k, mode="forest"), 0.55) for s in range(3)
              for k in ("full", "scribbles")]
    specs += [(bench.RunSpec(subset="all", mode="none", **evals), 0.8)]
    specs += [(bench.RunSpec(subset=s, mode="intra", steps=20, eval_seconds=[15, 30], train={"anchors_per_class": 8}),
               0.6) for s in range(3)]
    specs += [(bench.RunSpec(subset=s, labels="scribbles", mode=m, painted=0.25, **evals), 0.5 + 0.03 * i)
              for s in range(3) for i, m in enumerate(("none", "intra"))]
    for spec, miou in specs:
        bench.write_json(tmp_path / f"{spec.name}.json", _fake_result(spec, miou))
    bench.write_json(tmp_path / "light-model.json", {"candidates": {}})  # a script's own file is left out
    text = bench.bench_report.report(tmp_path).read_text()
    assert (tmp_path / "learning_speed.png").stat().st_size > 10_000
    assert "| **mIoU** | 56.78 | 63.41 | 64.20 | 55.0 ± 0.0 | 61.0 ± 0.9 | 63.0 ± 0.9 | 65.0 ± 0.9 |" in text
    assert "relation_weight=0.1" in text and "192 tiles" in text and "Test CPU" in text
    assert "| 2.0 ± 0.0 (n=6) |" in text  # within vs CE, paired over subsets and seeds
    assert "passes 64.2" in text
    assert "anchors_per_class=8" in text and "(20 steps, anchors_per_class=8)" not in text  # not on a time axis
    assert "| 4 tiles | scribbles 25% | within |" in text and "| 3.0 ± 0.0 (n=3) |" in text


def test_report_sets_kept_weights_against_the_last_steps(tmp_path):
    spec = bench.RunSpec(subset=0, minutes=1, eval_seconds=[15, 30], train={"keep": "best", "eval_every": 50})
    for subset, kept_earlier in ((0, True), (1, False)):
        spec = bench.RunSpec(**{**spec.to_dict(), "subset": subset})
        result = _fake_result(spec, 0.6)  # test mIoU 30% at 15 s, 60% at 30 s (the last step, 20)
        result["curve"][-1]["step"] = result["steps"] = 20
        result["kept_step"] = 10 if kept_earlier else 20
        if kept_earlier:
            result["test"] = {**result["test"], "mIoU": 0.65}
            result["curve"].append({**result["curve"][-1], "point": "final", "test": result["test"]})
        bench.write_json(tmp_path / f"{spec.name}.json", result)
    text = bench.bench_report.report(tmp_path).read_text()
    assert "## Kept weights (best on val)" in text
    assert "| 2 | 60.0 ± 0.0 | 60.0 ± 0.0 | 60.0 ± 0.0 | 62.5 ± 3.5 | 2.5 ± 3.5 | 1/2 |" in text
