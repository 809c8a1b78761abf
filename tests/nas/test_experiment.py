"""The experiment's bookkeeping: measurement passes and the baseline comparison, without training."""

import pytest

from frugalml.nas import experiment as ex
from frugalml.nas import latency as lat
from frugalml.nas import spaces
from frugalml.nas import supernet as sn


def test_measure_passes_visit_every_net_once_per_pass_and_keep_each_nets_fastest(monkeypatch):
    sp = spaces.get("cnn")
    winner = sp.smallest()
    base = dict(sp.scaling_family())["d1-e1"]
    times = iter([5.0, 2.0, 3.0, 4.0, 9.0, 9.0])  # ms per call: pass 1, 2, 3 of (winner, baseline)
    calls = []

    def fake_measure(space, net, arch, device, **kw):
        calls.append(sp.key(arch))
        return next(times) / 1e3

    monkeypatch.setattr(lat, "measure", fake_measure)
    monkeypatch.setattr(sn, "load_supernet", lambda run: (sp, object(), {}))
    s = ex.Settings(seeds=(0,), devices=("host-1t",), modelled=(), baseline_members=("d1-e1",), measure_passes=3)
    searches = [{"seed": 0, "searches": [{"arch": winner, "device": "host-1t"}], "random": [], "pareto": {}}]
    base_lat, _cost = ex._measure_all(s, {0: "unused"}, searches)
    assert calls == [sp.key(winner), sp.key(base)] * 3  # whole passes, not one net three times in a row
    assert searches[0]["searches"][0]["measured_latency_ms"] == pytest.approx(3.0)
    assert base_lat["d1-e1"]["host-1t"] == pytest.approx(2.0)


def test_baseline_accuracy_at_a_latency_follows_its_front_and_says_when_it_cannot():
    pts = [(1.0, 0.90), (2.0, 0.95), (3.0, 0.93), (4.0, 0.99)]  # (3.0, 0.93) is dominated
    assert ex._interp(pts, 1.5) == (pytest.approx(0.925), "interpolated")
    assert ex._interp(pts, 3.0)[0] == pytest.approx(0.95 + 0.04 / 2)  # between 2.0 and 4.0 on the front
    assert ex._interp(pts, 0.5) == (None, "faster than every baseline member")
    assert ex._interp(pts, 9.0)[0] == 0.99
