"""The NAS benchmarks' experiment harness (benchmarks/nas_experiment.py): measurement passes and the
baseline comparison, without training."""

import sys
from pathlib import Path

import pytest

from frugalml.models import space as spaces
from frugalml.nas import latency as lat
from frugalml.nas import supernet as sn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import nas_experiment as ex  # noqa: E402


def test_measure_passes_visit_every_net_once_per_pass_and_keep_each_nets_fastest(monkeypatch, tmp_path):
    from frugalml.files import write_json

    sp = spaces.get("cnn")
    winner = sp.smallest()
    base = dict(sp.scaling_family())["d1-e1"]
    # the latency data the budgets came from: two reference nets at 1 and 4 ms
    records = [{"arch": sp.largest(), "latency_ms": 4.0}, {"arch": sp.smallest(), "latency_ms": 1.0}]
    write_json(tmp_path / "latency" / "host-1t.json", {"records": records})
    monkeypatch.setattr(ex, "DRIFT_REFERENCES", 2)
    # ms per call, passes 1, 2, 3 of (winner, baseline, reference 1 ms, reference 4 ms)
    times = iter([5.0, 4.0, 2.0, 8.0, 3.0, 9.0, 1.5, 9.0, 4.0, 2.5, 9.0, 9.0])
    calls = []

    def fake_measure(space, net, arch, device, **kw):
        calls.append(sp.key(arch))
        return next(times) / 1e3

    monkeypatch.setattr(lat, "measure", fake_measure)
    monkeypatch.setattr(sn, "load_supernet", lambda run: (sp, object(), {}))
    s = ex.Settings(seeds=(0,), devices=("host-1t",), modelled=(), baseline_members=("d1-e1",), measure_passes=3)
    searches = [{"seed": 0, "searches": [{"arch": winner, "device": "host-1t"}], "random": [], "pareto": {}}]
    base_lat, _cost, drift = ex._measure_all(s, {0: str(tmp_path)}, searches)
    # whole passes, not one net three times in a row
    assert calls == [sp.key(winner), sp.key(base), sp.key(sp.smallest()), sp.key(sp.largest())] * 3
    assert searches[0]["searches"][0]["measured_latency_ms"] == pytest.approx(3.0)
    assert base_lat["d1-e1"]["host-1t"] == pytest.approx(2.5)
    # references now at 1.5 and 8 ms against 1 and 4: the machine runs 1.5x and 2x slower, median 1.75x
    assert drift["host-1t"]["ratio_median"] == pytest.approx(1.75)


def test_baseline_accuracy_at_a_latency_follows_its_front_and_says_when_it_cannot():
    pts = [(1.0, 0.90), (2.0, 0.95), (3.0, 0.93), (4.0, 0.99)]  # (3.0, 0.93) is dominated
    assert ex._interp(pts, 1.5) == (pytest.approx(0.925), "interpolated")
    assert ex._interp(pts, 3.0)[0] == pytest.approx(0.95 + 0.04 / 2)  # between 2.0 and 4.0 on the front
    assert ex._interp(pts, 0.5) == (None, "faster than every baseline member")
    assert ex._interp(pts, 9.0)[0] == 0.99


def test_search_margin_never_pushes_an_achievable_budget_below_the_smallest_achievable(tmp_path):
    from frugalml.files import write_json
    from frugalml.nas import search as srch
    from frugalml.nas.pipeline import _search_target

    sp = spaces.get("cnn")

    class MacsPredictor:  # stands in for a fitted predictor: latency grows with MACs
        def predict(self, arch):
            return sp.macs(arch) / 1e6

    pred = MacsPredictor()
    write_json(tmp_path / "latency" / "host-1t-metrics.json", {"mlp": {"under_p90": 0.5}})  # margin 1.1 / 1.5
    low, _ = srch.smallest_achievable(sp, pred.predict)
    assert _search_target(sp, pred, tmp_path, "host-1t", 10 * low, True) == pytest.approx(10 * low * 1.1 / 1.5)
    assert _search_target(sp, pred, tmp_path, "host-1t", 1.05 * low, True) == pytest.approx(low)
    assert _search_target(sp, pred, tmp_path, "host-1t", 0.5 * low, True) == pytest.approx(0.5 * low)  # still refused
    assert _search_target(sp, pred, tmp_path, "host-1t", 1.05 * low, False) == pytest.approx(1.05 * low)


def test_budgets_are_quantiles_of_the_latencies_above_the_floor():
    lats = [1.0, 1.05, 1.1, 1.2, 2.0, 2.1, 2.2, 2.3, 2.4]
    s = ex.Settings(budget_quantiles=(0.0, 0.5, 1.0))
    assert ex._budget_points(lats, s) == [1.0, 2.0, 2.4]  # floor 1.0: every net
    s = ex.Settings(budget_quantiles=(0.0, 0.5, 1.0), budget_floor=1.15)
    assert ex._budget_points(lats, s) == [1.2, 2.1, 2.4]  # 1.2, 2.0, 2.1, 2.2, 2.3, 2.4 (>= 1.15)


def test_a_resumed_supernet_training_cost_is_scaled_to_all_its_epochs():
    """The supernet's result nests its epochs under config.train (SupernetConfig embeds a TrainConfig);
    a run resumed after 30 of 40 epochs measured 10 of them: costs x4, counts unchanged."""
    sn = {
        "config": {"space": "cnn", "train": {"epochs": 40}},
        "resumed_from_epoch": 30,
        "cost": {"cpu_s": 12.5, "energy_j": 100.0, "macs": 7},
    }
    c = ex._whole_training_cost(sn)
    assert c["cpu_s"] == 50.0 and c["energy_j"] == 400.0 and c["macs"] == 7
    assert "last 10 of 40 epochs" in c["note"]
    fresh = ex._whole_training_cost(sn | {"resumed_from_epoch": 0})
    assert fresh == sn["cost"]


def test_schedule_comparison_gaps_are_inherited_minus_from_scratch_per_member_in_points():
    import bench_nas_schedules as bs

    members = bs.SETTINGS["cnn"]["members"]
    scratch = [
        {"name": m, "seed": s, "test_accuracy": acc, "cost": {"cpu_s": 10.0 + s}}
        for m in members
        for s, acc in ((0, 0.99), (1, 0.97))  # mean 0.98 for every member
    ]
    runs = []
    for sampling, factor in bs.SETTINGS["cnn"]["schedules"]:
        name = bs.schedule_name(sampling, factor)
        for seed in (0, 1):
            inherited = {m: 0.98 - 0.01 * i * factor + 0.002 * seed for i, m in enumerate(members)}
            runs.append(
                {"space": "cnn", "schedule": name, "epochs": 40, "cpu_s": 100.0 * factor + seed}
                | {"stages": None, "inherited": inherited}
            )
    sm = bs.summarise("cnn", scratch + runs)
    assert sm["from_scratch"] == {m: pytest.approx(0.98) for m in members}
    assert sm["from_scratch_cpu_s_mean"] == pytest.approx(10.5)
    row = sm["schedules"]["sandwich-x1"]
    # member i: 0.98 - 0.01 i + 0.001 (mean over seeds) against 0.98 -> (0.1 - i) points
    assert row["gap_points"] == {m: pytest.approx(0.1 - i) for i, m in enumerate(members)}
    assert row["mean_gap_points"] == pytest.approx(0.1 - 1.5)
    assert row["members_within_half_point"] == 1  # only member 0 (+0.1); member 1 is at -0.9
    assert row["supernet_cpu_s_mean"] == pytest.approx(100.5)
    assert sm["schedules"]["sandwich-x3"]["worst_gap_points"] == pytest.approx(0.1 - 9)
