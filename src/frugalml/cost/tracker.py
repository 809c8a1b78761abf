"""Measure a block of Python (or a whole command): time, energy, CO2e, and how each was got.

Energy comes from CodeCarbon's offline tracker. Where the machine exposes a sensor
(Intel RAPL for CPUs, NVML for NVIDIA GPUs) CodeCarbon reads it and we say "sensor";
otherwise CodeCarbon models power from CPU load and TDP and we say "modelled". If
CodeCarbon cannot start at all, energy is modelled here as CPU-seconds x (TDP / cores).

The region is never looked up over the network: it is given, configured with
FRUGAL_REGION, or the world average is used and the result says so.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from frugalml.cost import carbon
from frugalml.cost.currency import MEASURED, MODELLED, Cost
from frugalml.files import write_json

FALLBACK_TDP_W = 85.0  # CodeCarbon's own default CPU TDP when a CPU is not in its table


@dataclass
class TrackResult:
    label: str
    wall_s: float
    cpu_s: float
    energy_kwh: float
    co2e_g: float
    intensity_g_per_kwh: float
    region: str
    pue: float
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def energy_j(self) -> float:
        return self.energy_kwh * 3.6e6

    def to_dict(self) -> dict:
        return asdict(self) | {"energy_j": self.energy_j}

    def cost(self) -> Cost:
        return Cost(
            latency_s=self.wall_s,
            energy_j=self.energy_j,
            co2e_g=self.co2e_g,
            notes={
                "latency_s": f"{MEASURED}: wall-clock of the run",
                "energy_j": self.sources["energy"],
                "co2e_g": self.sources["co2e"],
            },
        )


def _cpu_seconds(children: bool) -> float:
    t = os.times()
    return t.user + t.system + ((t.children_user + t.children_system) if children else 0.0)


class Tracker:
    """Start/stop measurement. `track()` wraps this as a context manager / decorator."""

    def __init__(
        self,
        region: str | None = None,
        intensity: float | None = None,
        pue: float = 1.0,
        label: str = "run",
        out: str | os.PathLike | None = None,
        children: bool = False,
        measure_power_secs: float = 15.0,
        use_codecarbon: bool = True,
    ):
        self.label, self.pue, self.out, self.children = label, pue, out, children
        self.measure_power_secs, self.use_codecarbon = measure_power_secs, use_codecarbon
        if intensity is not None:
            self.intensity = carbon.Intensity(intensity, region or "given", "given")
        else:
            region = region or carbon.configured_region()
            if region:
                self.intensity = carbon.intensity(region)
            else:
                w = carbon.intensity("world")
                self.intensity = carbon.Intensity(
                    w.g_per_kwh, "world", w.source + "; no region given (set --region or FRUGAL_REGION)"
                )
        self._cc = None

    def start(self) -> Tracker:
        self._cc_mode = None
        if self.use_codecarbon:
            self._cc = self._start_codecarbon()
        self._t0, self._c0 = time.perf_counter(), _cpu_seconds(self.children)
        return self

    def _start_codecarbon(self):
        try:
            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            from codecarbon import OfflineEmissionsTracker

            # The country code only silences CodeCarbon's geolocation; CO2e is computed
            # here from our own intensity so that the figure and its source agree.
            country = self.intensity.region if len(self.intensity.region) == 3 else "USA"
            logging.disable(logging.WARNING)  # CodeCarbon logs before applying log_level
            tr = OfflineEmissionsTracker(
                country_iso_code=country,
                output_methods=[],
                log_level="error",
                measure_power_secs=self.measure_power_secs,
                tracking_mode="machine",
                allow_multiple_runs=True,
            )
            tr.start()
            # CodeCarbon also wakes a monitor thread every second (psutil samples); on a
            # 2-core machine that alone cost ~3% of training speed. psutil's load figure is
            # an average since the previous call, so sampling once per measurement interval
            # loses nothing for the CPU-load model; the private attribute is guarded.
            monitor = getattr(tr, "_scheduler_monitor_power", None)
            if monitor is not None and getattr(monitor, "interval", 0) < self.measure_power_secs:
                monitor.interval = self.measure_power_secs
            return tr
        except Exception as e:  # CodeCarbon failing must not stop the user's run
            self._cc_error = f"{type(e).__name__}: {e}"
            return None
        finally:
            logging.disable(logging.NOTSET)

    def _codecarbon_source(self) -> str:
        modes = []
        for hw in getattr(self._cc, "_hardware", []):
            mode = getattr(hw, "_mode", None)
            kind = type(hw).__name__
            if mode in ("intel_rapl", "windows_emi", "intel_power_gadget"):
                modes.append(f"{kind}: sensor ({mode})")
            elif kind == "GPU":
                modes.append("GPU: sensor (NVML)")
            elif mode:
                modes.append(f"{kind}: {MODELLED} ({mode})")
            else:
                modes.append(f"{kind}: {MODELLED}")
        sensor = any("sensor" in m for m in modes)
        kind = MEASURED + " by sensor" if sensor else MODELLED
        return f"{kind} via CodeCarbon [{', '.join(modes)}]"

    def stop(self) -> TrackResult:
        wall = time.perf_counter() - self._t0
        cpu = _cpu_seconds(self.children) - self._c0
        sources = {"wall_s": f"{MEASURED} (perf_counter)", "cpu_s": f"{MEASURED} (os.times)"}
        energy_kwh = None
        if self._cc is not None:
            try:
                self._cc.stop()
                energy_kwh = float(self._cc.final_emissions_data.energy_consumed)
                sources["energy"] = self._codecarbon_source()
            except Exception as e:
                self._cc_error = f"{type(e).__name__}: {e}"
        if energy_kwh is None:
            from frugalml.cost.hardware import cpu_model_name, cpu_tdp_w

            tdp, src = cpu_tdp_w(cpu_model_name())
            tdp = tdp or FALLBACK_TDP_W
            per_core = tdp / (os.cpu_count() or 1)
            energy_kwh = cpu * per_core / 3.6e6
            why = getattr(self, "_cc_error", "CodeCarbon disabled")
            sources["energy"] = f"{MODELLED}: CPU-seconds x {per_core:.3g} W/core (TDP {tdp:g} W; {src}); {why}"
        energy_kwh *= self.pue
        co2e_g = energy_kwh * self.intensity.g_per_kwh
        sources["co2e"] = (
            f"energy x PUE {self.pue:g} x {self.intensity.g_per_kwh:g} g/kWh "
            f"({self.intensity.region}: {self.intensity.source})"
        )
        result = TrackResult(
            self.label,
            wall,
            cpu,
            energy_kwh,
            co2e_g,
            self.intensity.g_per_kwh,
            self.intensity.region,
            self.pue,
            sources,
        )
        if self.out is not None:
            write_json(Path(self.out), result.to_dict())
        self.result = result
        return result


class track:
    """Context manager and decorator: `with track(region="FRA") as t: ...; t.result`."""

    def __init__(self, label: str = "run", **kwargs):
        self.label, self.kwargs = label, kwargs
        self.result: TrackResult | None = None

    def __enter__(self) -> track:
        self._tracker = Tracker(label=self.label, **self.kwargs).start()
        return self

    def __exit__(self, *exc) -> None:
        self.result = self._tracker.stop()

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kw):
            with track(self.label, **self.kwargs) as t:
                out = fn(*args, **kw)
            wrapper.last_result = t.result
            return out

        return wrapper
