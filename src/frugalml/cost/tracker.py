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
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from frugalml.cost import carbon
from frugalml.cost.currency import MEASURED, MODELLED, Cost
from frugalml.files import read_json, write_json


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
            wall_s=self.wall_s,
            cpu_s=self.cpu_s,
            energy_j=self.energy_j,
            co2e_g=self.co2e_g,
            notes={
                "wall_s": self.sources["wall_s"],
                "cpu_s": self.sources["cpu_s"],
                "energy_j": self.sources["energy"],
                "co2e_g": self.sources["co2e"],
            },
        )

    def segment(self) -> dict:
        """This measurement as one segment of a run's spent ledger."""
        return {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "energy_j": self.energy_j,
            "co2e_g": self.co2e_g,
            "finished": True,
            "notes": {"energy_j": self.sources["energy"], "co2e_g": self.sources["co2e"]},
        }


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

    def _modelled_kwh(self, cpu_s: float, why: str) -> tuple[float, str]:
        from frugalml.cost.hardware import core_watts

        per_core, src = core_watts()
        return cpu_s * per_core / 3.6e6, f"{MODELLED}: CPU-seconds x {per_core:.3g} W/core ({src}); {why}"

    def _co2e_source(self) -> str:
        return (
            f"energy x PUE {self.pue:g} x {self.intensity.g_per_kwh:g} g/kWh "
            f"({self.intensity.region}: {self.intensity.source})"
        )

    def peek(self) -> dict:
        """What the run has cost so far, without stopping: a segment of the spent ledger in progress.

        CodeCarbon adds energy once per measurement interval, so its running total can lag by
        up to `measure_power_secs`; without CodeCarbon the energy is modelled from CPU time.
        """
        wall = time.perf_counter() - self._t0
        cpu = _cpu_seconds(self.children) - self._c0
        total = getattr(self._cc, "_total_energy", None)
        if total is not None and getattr(total, "kWh", None) is not None:
            kwh = float(total.kWh)
            note = "running total of CodeCarbon at its last measurement (the segment did not finish)"
        else:
            kwh, note = self._modelled_kwh(cpu, getattr(self, "_cc_error", "CodeCarbon disabled"))
        kwh *= self.pue
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "energy_j": kwh * 3.6e6,
            "co2e_g": kwh * self.intensity.g_per_kwh,
            "finished": False,
            "notes": {"energy_j": note, "co2e_g": self._co2e_source()},
        }

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
            energy_kwh, sources["energy"] = self._modelled_kwh(cpu, getattr(self, "_cc_error", "CodeCarbon disabled"))
        energy_kwh *= self.pue
        co2e_g = energy_kwh * self.intensity.g_per_kwh
        sources["co2e"] = self._co2e_source()
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


SPENT_FILE = "spent.json"
SPENT_FIELDS = ("wall_s", "cpu_s", "energy_j", "co2e_g", "usd")


def add_segments(segments: list[dict]) -> dict:
    """What a run cost over all its attempts: the sum of every field any segment measured."""
    total: dict = {}
    for name in SPENT_FIELDS:
        values = [s[name] for s in segments if s.get(name) is not None]
        if values:
            total[name] = float(sum(values))
    notes: dict[str, str] = {}
    for s in segments:
        for k, v in (s.get("notes") or {}).items():
            notes.setdefault(k, v)
    total["segments"] = len(segments)
    if any(not s.get("finished", True) for s in segments):
        notes["segments"] = "an attempt was killed; its figures run to its last saved progress"
    if notes:
        total["notes"] = notes
    return total


class Ledger:
    """A run directory's spent compute, one segment per attempt, in `spent.json`.

    `with Ledger(run_dir, region=...) as ledger:` starts a `Tracker`, appends a segment for
    this attempt and rewrites it every `every_s` seconds from a background thread, so a run
    killed with SIGKILL keeps what it spent up to a few seconds before; a resumed run's
    `total()` is the sum of its attempts. Nothing is overwritten: earlier segments stay.
    """

    def __init__(self, run_dir: str | os.PathLike | None, every_s: float = 2.0, **tracker_kwargs):
        # without a run directory it only sums this attempt (nothing to resume, nothing written)
        self.path = None if run_dir is None else Path(run_dir) / SPENT_FILE
        self.every_s = every_s
        self.tracker = Tracker(**tracker_kwargs)
        self.segments = [] if run_dir is None else read_segments(run_dir)
        self.result: TrackResult | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Ledger:
        self.tracker.start()
        self.segments.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished": False})
        self._write()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="frugal-ledger", daemon=True)
        if self.path is not None:
            self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            self.update()

    def update(self) -> None:
        """Save what this attempt has spent so far (also called at checkpoints, so a resume matches them)."""
        with self._lock:
            self.segments[-1] |= self.tracker.peek()
            self._write()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.result = self.tracker.stop()
        with self._lock:
            self.segments[-1] |= self.result.segment()
            self._write()

    def total(self) -> dict:
        return add_segments(self.segments)

    def tracking(self) -> dict:
        """The total over all attempts, with where this attempt's figures came from."""
        r = self.result
        about = {} if r is None else {"label": r.label, "region": r.region, "pue": r.pue, "sources": r.sources}
        if r is not None:
            about["intensity_g_per_kwh"] = r.intensity_g_per_kwh
        return self.total() | about

    def _write(self) -> None:
        if self.path is not None:
            write_json(self.path, {"segments": self.segments, "total": self.total()})


def read_segments(run_dir: str | os.PathLike) -> list[dict]:
    """The segments recorded so far in `<run_dir>/spent.json` (none if there is no ledger)."""
    path = Path(run_dir) / SPENT_FILE
    return list(read_json(path).get("segments", [])) if path.is_file() else []


class track:
    """Context manager and decorator: `with track(region="FRA") as t: ...; t.result`."""

    def __init__(self, label: str = "run", **kwargs):
        self.label, self.kwargs = label, kwargs
        self.result: TrackResult | None = None
        self._lock = threading.Lock()

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
