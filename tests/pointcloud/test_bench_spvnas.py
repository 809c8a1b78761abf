"""benchmarks/bench_pointcloud_spvnas.py --tiny end to end (about 1.5 min on 2 cores: marked slow)."""

import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_pointcloud_spvnas as bench  # noqa: E402


@pytest.mark.slow
def test_tiny_run_searches_under_latency_and_costs_every_model_on_both_scenes(tmp_path, monkeypatch):
    from frugalml.files import read_json
    from frugalml.models import space as spaces
    from frugalml.report import bench as report

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(report, "RESULTS", tmp_path / "results")
    bench.main(["--tiny"])
    p = read_json(tmp_path / "results" / "pointcloud_spvnas_tiny.json")
    assert {Path(f).name for f in p["plots"]} == {
        "pointcloud_spvnas_tiny_miou_cost.png",
        "pointcloud_spvnas_tiny_topview.png",
    }

    # the budget: the baseline's measured latency on the scan / 1.5; the winner searched under it (predicted)
    lat = p["latency"]
    assert lat["budgets_ms"] == {"1.5": round(lat["baseline_latency_ms"] / 1.5, 2)}
    won = p["search"]["budgets"]["1.5"]
    assert won["predicted_latency_ms"] <= won["search_budget_ms"] <= won["budget_ms"]
    assert won["measured_latency_ms"] > 0 and won["speed_factor"] > 0

    models, v = p["models"], p["verdict"]
    assert v["searched"] == "searched-1.5x-ft" and v["baseline"] in ("minkunet-w1.0-v0.4", "minkunet-w1.0-v0.3")
    # the compared winner was fine-tuned from the supernet's weights, its twin trained from scratch
    assert models["searched-1.5x-ft"]["kind"] == "searched" and "searched-1.5x-ft" not in v["others"]
    assert models["searched-1.5x"]["kind"] == "searched, from scratch" and "searched-1.5x" in v["others"]
    run = tmp_path / "runs" / "bench-pointcloud-spvnas" / "tiny" / "models"
    assert read_json(run / "searched-1.5x-ft-s0" / "model.json")["init"] == "supernet"
    assert read_json(run / "searched-1.5x-s0" / "model.json")["init"] == "scratch"
    assert models["searched-1.5x-ft"]["latency_rounds_ms_scan"] == models["searched-1.5x"]["latency_rounds_ms_scan"]
    assert p["settings"]["baseline_epochs"] == p["settings"]["epochs"] + p["settings"]["supernet_epochs"]
    # counted MACs (FlopCounterMode) agree with the space's voxel/pair formula, on the sample and on the scan
    sampled, scan = spaces.get("pointvoxel"), spaces.get("pointvoxel-scan")
    genes = {"searched-1.5x": won["arch"], "searched-1.5x-ft": won["arch"]} | {
        f"spvcnn-{k}": g for k, g in sampled.scaling_family()
    }
    for name, g in genes.items():
        if name in models:
            assert models[name]["macs_2k"] == sampled.macs(g) and models[name]["macs_scan"] == scan.macs(g)
    for m in models.values():
        assert m["seeds"] == [0, 1] and 0 <= m["miou_mean"] <= 1 and 0 <= m["miou_mean_scan"] <= 1
        assert m["points_2k"] == 2048 and m["points_scan"] == 10589
        assert len(m["latency_rounds_ms_scan"]) == len(m["latency_rounds_ms_2k"]) == p["settings"]["rounds"]
    b, s = models[v["baseline"]], models[v["searched"]]
    assert v["macs_reduction_scan"] == pytest.approx(b["macs_scan"] / s["macs_scan"])
    ratios = [x / y for x, y in zip(b["latency_rounds_ms_scan"], s["latency_rounds_ms_scan"])]
    assert v["latency_speedup_scan"]["median"] == pytest.approx(statistics.median(ratios))
    assert v["met"] == (v["within_1_point"] and v["at_least_6x_fewer_macs"] and v["at_least_1_5x_lower_latency_scan"])
    assert v["within_1_point"] == (100 * (s["miou_mean"] - b["miou_mean"]) >= -1)
