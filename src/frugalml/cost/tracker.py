"""Measure a block of Python (or a whole command): time, energy, CO2e, and how each was got.

Energy comes from CodeCarbon's offline tracker. Where the machine exposes a sensor
(Intel RAPL for CPUs, NVML for NVIDIA GPUs) CodeCarbon reads it and we say "sensor";
otherwise CodeCarbon models power from CPU load and TDP and we say "modelled". If
CodeCarbon cannot start at all, energy is modelled here as CPU-seconds x (TDP / cores),
and the GPUs are read here through NVML (`GpuMeter`).

The energy is split into parts - CPU, RAM, GPU - each with how it was obtained: "sensor"
(RAPL, NVML), "load model" (TDP x utilisation), "fixed power" (a constant whatever the load,
as CodeCarbon's RAM estimate) or "none" (not counted: no such device, or nothing models it).
The parts sum to the total.

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

SENSOR, LOAD_MODEL, FIXED_POWER, NOT_COUNTED = "sensor", "load model", "fixed power", "none"
PARTS = ("cpu", "ram", "gpu")
_SENSOR_MODES = ("intel_rapl", "windows_emi", "intel_power_gadget")
CC_RUNNING = "running total of CodeCarbon at its last measurement (the segment did not finish)"


def _codecarbon_methods(cc) -> dict[str, tuple[str, str]]:
    """How CodeCarbon obtains each part of its energy, from the devices it set up: (method, how)."""
    methods = {part: (NOT_COUNTED, f"CodeCarbon found no {part.upper()} to track") for part in PARTS}
    for hw in getattr(cc, "_hardware", []):
        kind, mode = type(hw).__name__, getattr(hw, "_mode", None)
        chip = str(getattr(hw, "chip_part", "")).lower()  # Raspberry Pi PMIC, Apple powermetrics
        if kind == "GPU":
            methods["gpu"] = (SENSOR, "NVML via CodeCarbon")
        elif kind == "RAM":
            methods["ram"] = (FIXED_POWER, "CodeCarbon's RAM estimate from installed memory, whatever the load")
        elif kind == "CPU" and mode in _SENSOR_MODES:
            methods["cpu"] = (SENSOR, f"{mode} via CodeCarbon")
        elif kind == "CPU" and mode == "cpu_load":
            methods["cpu"] = (LOAD_MODEL, "TDP x CPU utilisation via CodeCarbon")
        elif kind == "CPU":
            methods["cpu"] = (FIXED_POWER, f"CodeCarbon's constant CPU power ({mode})")
        elif chip in PARTS:
            methods[chip] = (SENSOR, f"{kind} via CodeCarbon")
    return methods


def _codecarbon_kwh(cc, final: bool) -> dict[str, float] | None:
    """CodeCarbon's energy per part (kWh): its final data, or its running totals."""
    if final:
        data = cc.final_emissions_data
        return {part: float(getattr(data, f"{part}_energy")) for part in PARTS}
    totals = [getattr(cc, f"_total_{part}_energy", None) for part in PARTS]
    if any(getattr(t, "kWh", None) is None for t in totals):
        return None
    return {part: float(t.kWh) for part, t in zip(PARTS, totals)}


class GpuMeter:
    """Energy of every NVIDIA GPU since `start()`, through NVML (`pynvml`, imported when opened).

    Where the driver has the total-energy counter (Volta and later) the energy is its difference
    (millijoules); otherwise board power (milliwatts) is sampled every `every_s` seconds from a
    background thread and integrated with the trapezoid rule.
    """

    def __init__(self, nvml, handles: list, every_s: float = 1.0, clock=time.monotonic):
        self.nvml, self.handles, self.every_s, self.clock = nvml, handles, every_s, clock
        self._lock = threading.Lock()
        self._thread = None

    @classmethod
    def open(cls, nvml=None, **kwargs) -> tuple[GpuMeter | None, str]:
        """A meter over every GPU NVML sees, or (None, why there is none)."""
        try:
            if nvml is None:
                import pynvml as nvml
            nvml.nvmlInit()
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except Exception as e:  # no library, no driver: no GPU to count
            return None, f"no NVIDIA GPU (NVML: {type(e).__name__})"
        if not handles:
            return None, "no NVIDIA GPU (NVML sees none)"
        return cls(nvml, handles, **kwargs), ""

    def _counter_mj(self) -> float | None:
        try:
            return float(sum(self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self.handles))
        except Exception:  # NVMLError_NotSupported on GPUs older than Volta
            return None

    def _power_w(self) -> float:
        return sum(self.nvml.nvmlDeviceGetPowerUsage(h) for h in self.handles) / 1000.0

    @property
    def how(self) -> str:
        n = f"{len(self.handles)} GPU{'s' if len(self.handles) != 1 else ''}"
        if self._start_mj is not None:
            return f"NVML total energy counter, {n}"
        return f"NVML power sampled every {self.every_s:g} s (trapezoid), {n}"

    def start(self) -> GpuMeter:
        self._start_mj, self._joules, self.total_j = self._counter_mj(), 0.0, None
        if self._start_mj is None:
            self._last = (self.clock(), self._power_w())
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample_loop, name="frugal-nvml", daemon=True)
            self._thread.start()
        return self

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def sample(self) -> None:
        """Add the energy since the last sample: elapsed x mean of the two power readings."""
        with self._lock:
            now, watts = self.clock(), self._power_w()
            t0, w0 = self._last
            self._joules += (now - t0) * (w0 + watts) / 2
            self._last = (now, watts)

    def joules(self) -> float:
        if self.total_j is not None:
            return self.total_j
        if self._start_mj is not None:
            now = self._counter_mj()
            return 0.0 if now is None else (now - self._start_mj) / 1000.0
        self.sample()
        return self._joules

    def stop(self) -> float:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self.total_j = self.joules()  # from now on joules() is this figure
        try:
            self.nvml.nvmlShutdown()
        except Exception:  # already shut down, or a stand-in without it
            pass
        return self.total_j


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
    # {"cpu"|"ram"|"gpu": {"kwh", "method", "how"}}, PUE included: they sum to energy_kwh
    parts: dict[str, dict] = field(default_factory=dict)

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
            "energy_parts": joule_parts(self.parts),
            "notes": {"energy_j": self.sources["energy"], "co2e_g": self.sources["co2e"]},
        }


def joule_parts(parts: dict[str, dict]) -> dict[str, dict]:
    """A result's parts as a ledger keeps them: {part: {"energy_j", "method"}}."""
    return {name: {"energy_j": p["kwh"] * 3.6e6, "method": p["method"]} for name, p in parts.items()}


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
        nvml=None,
        cpu_seconds=None,
        cpu_note: str | None = None,
    ):
        # nvml: the NVML module the fallback reads GPUs with (None: pynvml, imported when needed)
        # cpu_seconds: a clock of CPU-seconds replacing this process's os.times (several processes' sum,
        # say), cpu_note what it counts
        self.label, self.pue, self.out, self.children, self.nvml = label, pue, out, children, nvml
        self._cpu_clock, self._cpu_note = cpu_seconds or (lambda: _cpu_seconds(children)), cpu_note
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
        self._cc, self._gpu = None, None

    def start(self) -> Tracker:
        self._cc_mode = None
        self._gpu, self._gpu_why = None, "CodeCarbon counts the GPUs"
        if self.use_codecarbon:
            self._cc = self._start_codecarbon()
        if self._cc is None:  # our own model: CPU from CPU time, GPUs read here
            self._gpu, self._gpu_why = GpuMeter.open(self.nvml)
            if self._gpu is not None:
                self._gpu.start()
        self._t0, self._c0 = time.perf_counter(), self._cpu_clock()
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

    def _modelled_parts(self, cpu_s: float) -> dict[str, dict]:
        """Our own model (kWh, before PUE): CPU-seconds x TDP per core, GPUs by NVML, RAM not counted."""
        from frugalml.cost.hardware import core_watts

        per_core, src = core_watts()
        gpu = self._gpu
        return {
            "cpu": {
                "kwh": cpu_s * per_core / 3.6e6,
                "method": LOAD_MODEL,
                "how": f"CPU-seconds x {per_core:.3g} W/core ({src})",
            },
            "ram": {"kwh": 0.0, "method": NOT_COUNTED, "how": "not modelled without CodeCarbon"},
            "gpu": {"kwh": gpu.joules() / 3.6e6, "method": SENSOR, "how": gpu.how}
            if gpu is not None
            else {"kwh": 0.0, "method": NOT_COUNTED, "how": self._gpu_why},
        }

    def _codecarbon_parts(self, final: bool) -> dict[str, dict] | None:
        kwh = _codecarbon_kwh(self._cc, final)
        if kwh is None:
            return None
        methods = _codecarbon_methods(self._cc)
        if final and methods["ram"][0] == FIXED_POWER:
            watts = float(getattr(self._cc.final_emissions_data, "ram_power", 0.0) or 0.0)
            methods["ram"] = (
                FIXED_POWER,
                f"CodeCarbon's RAM estimate, {watts:.3g} W from installed memory, whatever the load",
            )
        return {part: {"kwh": kwh[part], "method": m, "how": how} for part, (m, how) in methods.items()}

    def _energy(self, cpu_s: float, final: bool) -> tuple[dict[str, dict], str]:
        """Energy parts (kWh, PUE included) and how the total was obtained."""
        parts = None
        if self._cc is not None:
            try:
                if final:
                    self._cc.stop()
                parts = self._codecarbon_parts(final)
                source = self._codecarbon_source() if final else CC_RUNNING
            except Exception as e:
                self._cc_error = f"{type(e).__name__}: {e}"
                self._gpu_why = "not counted: CodeCarbon failed"
        if parts is None:
            parts = self._modelled_parts(cpu_s)
            source = f"{MODELLED}: {parts['cpu']['how']}; {getattr(self, '_cc_error', 'CodeCarbon disabled')}"
            if parts["gpu"]["method"] == SENSOR:
                source += f"; GPU: {parts['gpu']['how']}"
        for p in parts.values():
            p["kwh"] *= self.pue
        return parts, source

    def _co2e_source(self) -> str:
        return (
            f"energy x PUE {self.pue:g} x {self.intensity.g_per_kwh:g} g/kWh "
            f"({self.intensity.region}: {self.intensity.source})"
        )

    def peek(self, fresh: bool = False) -> dict:
        """What the run has cost so far, without stopping: a segment of the spent ledger in progress.

        CodeCarbon adds energy once per measurement interval, so its running total can lag by
        up to `measure_power_secs`; `fresh=True` has it measure now (an epoch's end). Without
        CodeCarbon the energy is modelled from CPU time.
        """
        if fresh and self._cc is not None:
            measure = getattr(self._cc, "_measure_power_and_energy", None)  # private: guarded
            if measure is not None:
                try:
                    measure()
                except Exception:  # a missed measurement only delays the figure
                    pass
        wall = time.perf_counter() - self._t0
        cpu = self._cpu_clock() - self._c0
        parts, source = self._energy(cpu, final=False)
        kwh = sum(p["kwh"] for p in parts.values())
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "energy_j": kwh * 3.6e6,
            "co2e_g": kwh * self.intensity.g_per_kwh,
            "finished": False,
            "energy_parts": joule_parts(parts),
            "notes": {"energy_j": source, "co2e_g": self._co2e_source()},
        }

    def stop(self) -> TrackResult:
        wall = time.perf_counter() - self._t0
        cpu = self._cpu_clock() - self._c0
        sources = {"wall_s": f"{MEASURED} (perf_counter)", "cpu_s": self._cpu_note or f"{MEASURED} (os.times)"}
        if self._gpu is not None:
            self._gpu.stop()
        parts, sources["energy"] = self._energy(cpu, final=True)
        energy_kwh = sum(p["kwh"] for p in parts.values())  # CodeCarbon's total is the sum of its parts too
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
            parts,
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
    parts = add_parts([s["energy_parts"] for s in segments if s.get("energy_parts")])
    if parts:
        total["energy_parts"] = parts
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


def add_parts(segment_parts: list[dict]) -> dict:
    """The energy parts of several attempts: joules summed per part, the methods that gave them."""
    total: dict[str, dict] = {}
    for parts in segment_parts:
        for name, p in parts.items():
            t = total.setdefault(name, {"energy_j": 0.0, "method": p["method"]})
            t["energy_j"] += p["energy_j"]
            if p["method"] not in t["method"].split(" + "):
                t["method"] += " + " + p["method"]
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

    @staticmethod
    def meter() -> Tracker:
        """What a job on another machine measures itself with (`executor.run_jobs` on Ray): its own
        process's CPU time, energy modelled from it (per process, so parallel jobs add up)."""
        return Tracker(label="job", use_codecarbon=False)

    def add_remote(self, segments: list[dict]) -> None:
        """Segments measured elsewhere (a job on a cluster worker) join this run's ledger, so its
        total keeps their CPU time and energy; they sit before this attempt's own segment."""
        with self._lock:
            self.segments[-1:-1] = [s | {"remote": True} for s in segments]
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
