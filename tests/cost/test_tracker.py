import json

import pytest

from frugalml.cost.carbon import intensity
from frugalml.cost.tracker import GpuMeter, Ledger, Tracker, add_segments, track


def _busy(n=2_000_000):
    return sum(i * i for i in range(n))


def test_track_records_time_energy_and_co2e_with_sources(tmp_path):
    out = tmp_path / "t.json"
    with track("busy", region="FRA", out=out) as t:
        _busy()
    r = t.result
    assert r.wall_s > 0 and r.cpu_s > 0 and r.energy_kwh > 0
    assert r.co2e_g == pytest.approx(r.energy_kwh * intensity("FRA").g_per_kwh)
    # CodeCarbon is a dependency: it must have run, not silently fallen back to our model
    assert t._tracker._cc is not None and not hasattr(t._tracker, "_cc_error")
    assert " via CodeCarbon [" in r.sources["energy"] and "CPU: " in r.sources["energy"]
    cpu, ram, gpu = r.parts["cpu"], r.parts["ram"], r.parts["gpu"]
    assert cpu["method"] in ("sensor", "load model") and "CodeCarbon" in cpu["how"] and cpu["kwh"] > 0
    assert ram["method"] in ("sensor", "fixed power") and ram["kwh"] > 0  # our fallback never counts RAM
    assert gpu["method"] in ("sensor", "none") and (gpu["kwh"] == 0) == (gpu["method"] == "none")
    assert r.energy_kwh == pytest.approx(cpu["kwh"] + ram["kwh"] + gpu["kwh"], rel=1e-12)
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


class FakeNvml:
    """NVML with two GPUs whose energy counters (mJ) and power (mW) the test sets."""

    def __init__(self, counter=True, count=2):
        self.mj, self.mw, self.counter, self.count = [1_000_000, 5_000], [100_000, 50_000], counter, count

    def nvmlInit(self):
        self.shut = False

    def nvmlShutdown(self):
        self.shut = True

    def nvmlDeviceGetCount(self):
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if not self.counter:
            raise RuntimeError("NVMLError_NotSupported")
        return self.mj[h]

    def nvmlDeviceGetPowerUsage(self, h):
        return self.mw[h]


def test_fallback_reads_gpu_energy_counter_and_parts_sum_to_total(monkeypatch):
    monkeypatch.setattr("frugalml.cost.hardware.core_watts", lambda: (10.0, "test"))
    nvml = FakeNvml()
    tr = Tracker(intensity=100.0, pue=1.5, use_codecarbon=False, nvml=nvml).start()
    nvml.mj = [1_000_000 + 30_000, 5_000 + 20_000]  # +30 J and +20 J
    r = tr.stop()
    gpu, cpu, ram = r.parts["gpu"], r.parts["cpu"], r.parts["ram"]
    assert gpu["kwh"] * 3.6e6 == pytest.approx(50.0 * 1.5)  # 50 J x PUE 1.5
    assert gpu["method"] == "sensor" and gpu["how"] == "NVML total energy counter, 2 GPUs"
    assert cpu["method"] == "load model" and cpu["kwh"] * 3.6e6 == pytest.approx(r.cpu_s * 10.0 * 1.5)
    assert ram == {"kwh": 0.0, "method": "none", "how": "not modelled without CodeCarbon"}
    assert r.energy_kwh == pytest.approx(gpu["kwh"] + cpu["kwh"])
    assert r.co2e_g == pytest.approx(r.energy_kwh * 100.0)
    seg = r.segment()["energy_parts"]
    assert seg["gpu"] == {"energy_j": pytest.approx(75.0), "method": "sensor"}


def test_gpu_meter_integrates_sampled_power_without_a_counter():
    nvml, now = FakeNvml(counter=False), [0.0]
    meter, why = GpuMeter.open(nvml, every_s=3600.0, clock=lambda: now[0])
    assert why == "" and meter.start().how.startswith("NVML power sampled")
    now[0], nvml.mw = 2.0, [200_000, 50_000]  # 150 W -> 250 W over 2 s: 400 J
    meter.sample()
    now[0] = 3.0  # 250 W for 1 s more: 250 J
    assert meter.stop() == pytest.approx(650.0) and nvml.shut
    now[0] = 10.0
    assert meter.joules() == pytest.approx(650.0)  # stopped: the figure no longer grows


def test_no_gpu_is_a_zero_part_with_method_none():
    class NoLibrary(FakeNvml):
        def nvmlInit(self):
            raise OSError("libnvidia-ml.so.1 not found")

    r = Tracker(intensity=1.0, use_codecarbon=False, nvml=NoLibrary()).start().stop()
    assert r.parts["gpu"] == {"kwh": 0.0, "method": "none", "how": "no NVIDIA GPU (NVML: OSError)"}
    assert GpuMeter.open(FakeNvml(count=0)) == (None, "no NVIDIA GPU (NVML sees none)")


def test_ledger_sums_parts_over_segments():
    segs = [
        {"energy_j": 3.0, "energy_parts": {"cpu": {"energy_j": 1.0, "method": "load model"}}},
        {"energy_j": 6.0, "energy_parts": {"cpu": {"energy_j": 2.5, "method": "sensor"}}},
        {"energy_j": 1.0, "energy_parts": {"cpu": {"energy_j": 0.5, "method": "sensor"}}},
        {"energy_j": 2.0},  # a segment written before the split was recorded
    ]
    assert add_segments(segs)["energy_parts"] == {"cpu": {"energy_j": 4.0, "method": "load model + sensor"}}


def test_ledger_segment_carries_the_split(tmp_path, monkeypatch):
    monkeypatch.setattr("frugalml.cost.hardware.core_watts", lambda: (10.0, "test"))
    with Ledger(tmp_path, intensity=1.0, use_codecarbon=False, nvml=FakeNvml(count=0)) as ledger:
        _busy(200_000)
    saved = json.loads((tmp_path / "spent.json").read_text())
    parts = saved["total"]["energy_parts"]
    assert set(parts) == {"cpu", "ram", "gpu"} and parts["gpu"] == {"energy_j": 0.0, "method": "none"}
    assert sum(p["energy_j"] for p in parts.values()) == pytest.approx(saved["total"]["energy_j"])
    assert parts["cpu"]["energy_j"] == pytest.approx(ledger.result.cpu_s * 10.0)


def test_frugal_track_shows_the_split_and_marks_a_failed_command(frugal_bin, tmp_path):
    import subprocess
    import sys

    def frugal(*args):
        return subprocess.run([frugal_bin, "track", *args], capture_output=True, text=True, timeout=300)

    p = frugal("--region", "FRA", "--json", "--out", str(tmp_path / "run"), "--", sys.executable, "-c", "print(1)")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "ok" and out["failed"] is False
    assert set(out["parts"]) == {"cpu", "ram", "gpu"}
    assert out["energy_kwh"] == pytest.approx(sum(part["kwh"] for part in out["parts"].values()), rel=1e-12)
    rec = json.loads((tmp_path / "run" / "record.json").read_text())
    assert rec["config"]["status"] == "ok"
    assert {k: v["method"] for k, v in rec["spent"]["energy_parts"].items()} == {
        k: v["method"] for k, v in out["parts"].items()
    }
    assert rec["spent"]["energy_j"] == pytest.approx(sum(v["energy_j"] for v in rec["spent"]["energy_parts"].values()))

    p = frugal("--", sys.executable, "-c", "import sys; sys.exit(3)")
    assert p.returncode == 3
    status = next(line for line in p.stdout.splitlines() if "status" in line)
    assert "failed (exit status 3)" in status
    for part in ("CPU (kWh)", "RAM (kWh)", "GPU (kWh)"):
        assert part in p.stdout
    p = frugal("--json", "--", sys.executable, "-c", "import sys; sys.exit(3)")
    out = json.loads(p.stdout)
    assert p.returncode == 3 and out["status"] == "failed (exit status 3)" and out["failed"] is True
