import math
import random

import pytest
import torch
from torch import nn

from frugalml.cost import hardware
from frugalml.errors import FrugalError
from frugalml.models import space as spaces
from frugalml.nas import latency as lat


def test_metrics_on_hand_computed_values():
    m = lat.metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert m["rmse_ms"] == pytest.approx(math.sqrt(1 / 3))
    assert m["mape_pct"] == pytest.approx(25 / 3)
    assert m["kendall_tau"] == pytest.approx(1.0)
    assert lat.metrics([3.0, 2.0, 1.0], [1.0, 2.0, 3.0])["kendall_tau"] == pytest.approx(-1.0)


def test_unknown_device_is_a_clear_error():
    with pytest.raises(FrugalError, match="unknown latency target 'tpu-v9'.*host-1t, host-2t"):
        lat.check_device("tpu-v9")
    assert lat.check_device("host-2t") == "host-2t" and lat.is_modelled("rpi4")


def test_modelled_latency_is_the_roofline_of_the_profile():
    sp = spaces.get("cnn")
    arch = sp.smallest()
    hw = hardware.get("rpi4")
    params = sum(p.numel() for p in sp.build_subnet(arch).parameters())
    expected = max(2 * 67520 / (hw.sustained_tflops * 1e12), 4 * params / (hw.mem_bw_gbs * 1e9))
    assert lat.modelled_latency_s(sp, arch, "rpi4") == pytest.approx(expected)
    assert lat.ModelledLatency(sp, "rpi4").predict(arch) == pytest.approx(expected * 1e3)


def test_timing_orders_a_large_and_a_tiny_module():
    big, small = nn.Linear(512, 512), nn.Linear(4, 4)
    t_big = lat.time_module(nn.Sequential(*[big] * 8), torch.randn(1, 512), threads=1, min_run_time=0.05)
    t_small = lat.time_module(small, torch.randn(1, 4), threads=1, min_run_time=0.05)
    assert 0 < t_small < t_big


def _synthetic_records(sp, n, seed=0):
    # a known latency law over the architecture: 0.2 ms + 0.1 us per kMAC... of the real MACs
    rng = random.Random(seed)
    archs = [sp.sample(rng) for _ in range(n)]
    return [{"arch": a, "latency_ms": 0.2 + sp.macs(a) / 4e6} for a in archs]


def test_mlp_predictor_learns_a_latency_law_from_features():
    sp = spaces.get("cnn")
    train, test = _synthetic_records(sp, 160, seed=0), _synthetic_records(sp, 40, seed=1)
    p = lat.MLPPredictor(sp, hidden=64, steps=400).fit(train)
    m = lat.metrics(p.predict_many([r["arch"] for r in test]), [r["latency_ms"] for r in test])
    assert m["mape_pct"] < 10 and m["kendall_tau"] > 0.8


def test_mlp_predictor_save_and_load_give_the_same_predictions(tmp_path):
    sp = spaces.get("cnn")
    p = lat.MLPPredictor(sp, hidden=32, steps=50).fit(_synthetic_records(sp, 30))
    p.save(tmp_path / "pred")
    q = lat.MLPPredictor.load(sp, tmp_path / "pred")
    a = sp.largest()
    assert q.predict(a) == pytest.approx(p.predict(a), rel=1e-6)


def test_lookup_table_recovers_scale_and_offset():
    sp = spaces.get("cnn")
    table = lat.LookupTable(sp, "host-1t")
    # fake per-operator latencies so the test needs no timing: 1 ms per block, 0.5 for others
    table._op_ms = lambda key, factory: 1.0 if key.startswith("block") else 0.5
    recs = []
    for a in _synthetic_records(sp, 20):
        raw = table.raw(a["arch"])
        recs.append({"arch": a["arch"], "latency_ms": 2.0 * raw + 0.3})
    table.fit(recs)
    assert table.a == pytest.approx(2.0) and table.b == pytest.approx(0.3)
    n_blocks = sum(sp.smallest()[f"s{s}.d"] for s in (1, 2, 3))
    assert table.predict(sp.smallest()) == pytest.approx(2.0 * (n_blocks * 1.0 + 3 * 0.5) + 0.3)


def test_collect_on_a_modelled_device_records_every_subnetwork(tmp_path):
    sp = spaces.get("cnn")
    net = sp.build_supernet(0)
    data = lat.collect(sp, net, "rpi4", 12, tmp_path / "l.json", progress=False)
    assert len(data["records"]) == 12 and data["modelled"] and data["noise_floor"] is None
    assert data["records"][0]["arch"] == sp.smallest() and data["records"][1]["arch"] == sp.largest()
    assert data["records"][0]["latency_ms"] < data["records"][1]["latency_ms"]


def test_collect_measures_the_noise_floor_on_the_host(tmp_path):
    sp = spaces.get("cnn")
    net = sp.build_supernet(0)
    data = lat.collect(sp, net, "host-1t", 3, tmp_path / "l.json", rounds=2, min_run_time=0.02, progress=False)
    assert len(data["rounds"]) == 2 and data["noise_floor"]["n"] == 3
    # a network's latency is its fastest round
    assert [r["latency_ms"] for r in data["records"]] == [min(t) for t in zip(*data["rounds"], strict=True)]
    again = lat.collect(sp, net, "host-1t", 3, tmp_path / "l.json", rounds=2, progress=False)
    assert again["rounds"] == data["rounds"]  # finished collection is reloaded, not re-measured
