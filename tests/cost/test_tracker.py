import importlib.util
import json

import pytest

from frugalml.cost.carbon import intensity
from frugalml.cost.tracker import Tracker, track


def _busy(n=2_000_000):
    return sum(i * i for i in range(n))


def test_track_records_time_energy_and_co2e_with_sources(tmp_path):
    out = tmp_path / "t.json"
    with track("busy", region="FRA", out=out) as t:
        _busy()
    r = t.result
    assert r.wall_s > 0 and r.cpu_s > 0 and r.energy_kwh > 0
    assert r.co2e_g == pytest.approx(r.energy_kwh * intensity("FRA").g_per_kwh)
    if importlib.util.find_spec("codecarbon") is not None:  # installed: it must have run, not silently failed
        assert getattr(t, "_cc_error", None) is None
        assert " via CodeCarbon [" in r.sources["energy"] and "CPU: " in r.sources["energy"]
    else:  # not installed: the fallback says why
        assert r.sources["energy"].startswith("modelled: CPU-seconds") and "ModuleNotFoundError" in r.sources["energy"]
    assert "FRA" in r.sources["co2e"]
    assert json.loads(out.read_text())["label"] == "busy"


def test_fallback_model_is_cpu_seconds_times_tdp_share():
    tr = Tracker(intensity=100.0, use_codecarbon=False).start()
    _busy()
    r = tr.stop()
    assert r.sources["energy"].startswith("modelled: CPU-seconds")
    per_core_w = float(r.sources["energy"].split(" x ")[1].split(" W/core")[0])
    assert r.energy_kwh == pytest.approx(r.cpu_s * per_core_w / 3.6e6, rel=0.01)
    assert r.co2e_g == pytest.approx(r.energy_kwh * 100.0)


def test_no_region_falls_back_to_world_average_and_says_so(monkeypatch):
    monkeypatch.delenv("FRUGAL_REGION", raising=False)
    tr = Tracker(use_codecarbon=False).start()
    r = tr.stop()
    assert r.region == "world" and "no region given" in r.sources["co2e"]


def test_decorator_form_keeps_the_result():
    @track("fn", intensity=50.0, use_codecarbon=False)
    def work():
        return _busy(100_000)

    assert work() > 0
    assert work.last_result.intensity_g_per_kwh == 50.0
