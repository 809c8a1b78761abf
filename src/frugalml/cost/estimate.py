"""Footprint of a job too big to run: from FLOPs on a device, or from power x hours.

From FLOPs:  device-seconds = FLOPs / sustained FLOP/s; energy = TDP x device-hours x PUE.
             FLOPs may come from parameters N and tokens D: 6ND to train (forward 2ND +
             backward 4ND, Kaplan et al. 2020), 2ND for inference; the sustained rate from
             a model-FLOPs utilisation (`mfu`) of the device's peak.
From power:  energy = power x hours x PUE (Strubell et al. 2019's formula).
Both:        CO2e = energy x grid intensity; money = device-hours x price per hour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from frugalml.cost import carbon, hardware
from frugalml.cost.currency import ESTIMATED, Cost
from frugalml.errors import FrugalError

HOURS_PER_YEAR = 24 * 365


@dataclass
class Estimate:
    device_hours: float
    device_years: float
    wall_hours: float
    energy_kwh: float | None
    co2e_kg: float | None
    co2e_lbs: float | None
    cost_usd: float | None
    flops: float | None = None  # the job's FLOPs, given or from 6ND/2ND
    # each assumption a number with its unit and where it came from: {"value", "unit", "source"}
    assumptions: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def cost(self) -> Cost:
        note = f"{ESTIMATED}: " + "; ".join(
            f"{k}={v['value']:g} {v['unit']} ({v['source']})"
            for k, v in self.assumptions.items()
            if v["value"] is not None
        )
        return Cost(
            energy_j=None if self.energy_kwh is None else self.energy_kwh * 3.6e6,
            co2e_g=None if self.co2e_kg is None else self.co2e_kg * 1000,
            usd=self.cost_usd,
            latency_s=self.wall_hours * 3600,
            notes={"energy_j": note, "co2e_g": note, "usd": note, "latency_s": note},
        )


def _note(notes: dict, name: str, value: float | None, unit: str, source: str) -> None:
    notes[name] = {"value": value, "unit": unit, "source": source}


def _positive(name: str, value: float | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value != value or value < 0 or (value == 0 and not allow_zero):
        raise FrugalError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value}")


def _check(flops, sustained_tflops, power_w, hours, pue, devices, intensity, region, price_per_hour) -> None:
    for n, v in [
        ("flops", flops),
        ("sustained_tflops", sustained_tflops),
        ("power_w", power_w),
        ("hours", hours),
        ("pue", pue),
        ("devices", devices),
    ]:
        _positive(n, v)
    _positive("intensity", intensity, allow_zero=True)
    _positive("price_per_hour", price_per_hour, allow_zero=True)
    if pue is not None and pue < 1:
        raise FrugalError(f"pue is a ratio of facility to IT energy and cannot be below 1, got {pue}")
    if intensity is not None and region is not None:
        raise FrugalError("give either --intensity or --region, not both")


def _tdp_power(hw, devices: int, notes: dict) -> float | None:
    """The job's draw when every device draws its TDP (None if the device has none)."""
    if hw is None or hw.tdp_w is None:
        return None
    _note(notes, "power_w", hw.tdp_w * devices, "W", f"{hw.tdp_w:g} W TDP per device x {devices}")
    return hw.tdp_w * devices


def _throughput(hw, sustained_tflops, mfu, notes: dict) -> float:
    """Sustained TFLOPS per device: given, a utilisation of the device's peak, or the profile's."""
    if mfu is not None:
        if sustained_tflops is not None:
            raise FrugalError("give either --sustained-tflops or --mfu, not both")
        if not 0 < mfu <= 1:
            raise FrugalError(f"mfu is a fraction of peak in (0, 1], got {mfu}")
        peak = hw.peak_fp16_tflops or hw.peak_fp32_tflops
        if not peak:
            raise FrugalError(f"no peak throughput known for '{hw.name}': pass --sustained-tflops")
        _note(notes, "mfu", mfu, "fraction of peak", "given")
        _note(notes, "sustained_tflops", peak * mfu, "TFLOPS per device", f"{mfu:g} x {peak:g} peak ({hw.source})")
        return peak * mfu
    tflops = sustained_tflops or hw.sustained_tflops
    if not tflops:
        raise FrugalError(f"no sustained throughput known for '{hw.name}': pass --sustained-tflops or --mfu")
    source = "given" if sustained_tflops else f"{hw.name} default: {hw.source}"
    _note(notes, "sustained_tflops", tflops, "TFLOPS per device", source)
    return tflops


def job_flops(flops, params, tokens, inference: bool, notes: dict) -> float | None:
    """The job's FLOPs: given, or 6ND to train (2ND for inference) from parameters N and tokens D."""
    if params is None and tokens is None:
        if flops is not None:
            _note(notes, "flops", flops, "FLOPs", "given")
        return flops
    if params is None or tokens is None:
        raise FrugalError("give both --params and --tokens (FLOPs = 6 x params x tokens, 2x with --inference)")
    if flops is not None:
        raise FrugalError("give either --flops or --params with --tokens, not both")
    _positive("params", params)
    _positive("tokens", tokens)
    per = 2 if inference else 6
    rule = "inference: 2ND (forward)" if inference else "training: 6ND (forward 2ND + backward 4ND, Kaplan et al. 2020)"
    _note(notes, "params", params, "parameters", "given")
    _note(notes, "tokens", tokens, "tokens", "given")
    _note(notes, "flops", per * params * tokens, "FLOPs", rule)
    return per * params * tokens


def _device_time(flops, hours, hw, sustained_tflops, mfu, devices: int, notes: dict) -> tuple[float, float]:
    """(device-hours, wall-hours) from FLOPs at the sustained throughput, or from the hours given."""
    if flops is not None:
        if hw is None:
            raise FrugalError("an estimate from --flops (or --params/--tokens) needs --hardware")
        if hours is not None:
            raise FrugalError("give either --flops or --hours, not both")
        tflops = _throughput(hw, sustained_tflops, mfu, notes)
        device_hours = flops / (tflops * 1e12) / 3600
        return device_hours, device_hours / devices
    if mfu is not None:
        raise FrugalError("--mfu needs --flops (or --params/--tokens) and --hardware")
    if hours is not None:
        return hours * devices, hours
    raise FrugalError(
        "give --flops (or --params and --tokens) with --hardware, or --hours (with --power-w or --hardware)"
    )


def _energy(power_w, wall_hours: float, pue, intensity, region, notes: dict) -> tuple[float | None, float | None]:
    """(kWh, kg CO2e) of drawing `power_w` for `wall_hours` (None, None without a power figure)."""
    if power_w is None:
        _note(notes, "energy", None, "kWh", "unknown: give --power-w or a --hardware with a TDP")
        return None, None
    notes.setdefault("power_w", {"value": power_w, "unit": "W", "source": "given"})
    if pue is None or pue == carbon.DEFAULT_PUE:
        pue = carbon.DEFAULT_PUE
        _note(notes, "pue", pue, "ratio", f"default: {carbon.DEFAULT_PUE_SOURCE}")
    else:
        _note(notes, "pue", pue, "ratio", "given")
    energy_kwh = power_w * wall_hours * pue / 1000
    if intensity is None:
        region = region or carbon.configured_region()
        ci = carbon.intensity(region) if region else carbon.intensity("world")
        intensity = ci.g_per_kwh
        _note(notes, "intensity", intensity, "g CO2e/kWh", f"{ci.region}: {ci.source}")
    else:
        _note(notes, "intensity", intensity, "g CO2e/kWh", "given")
    return energy_kwh, energy_kwh * intensity / 1000


def _price(price_per_hour, hw, notes: dict) -> float | None:
    """USD per device-hour: the one given, else the device's."""
    if price_per_hour is None and hw is not None:
        price_per_hour = hw.price_per_hour_usd
        if price_per_hour is not None:
            _note(notes, "price_per_hour", price_per_hour, "USD per device-hour", f"{hw.name} default")
    elif price_per_hour is not None:
        _note(notes, "price_per_hour", price_per_hour, "USD per device-hour", "given")
    return price_per_hour


def estimate(
    *,
    flops: float | None = None,
    hardware_name: str | None = None,
    sustained_tflops: float | None = None,
    devices: int = 1,
    power_w: float | None = None,
    hours: float | None = None,
    pue: float | None = None,
    intensity: float | None = None,
    region: str | None = None,
    price_per_hour: float | None = None,
    params: float | None = None,
    tokens: float | None = None,
    inference: bool = False,
    mfu: float | None = None,
) -> Estimate:
    """Estimate device-time, energy, CO2e and money for a job.

    Give either (`flops` or `params` and `tokens`, `hardware_name`) or (`power_w`, `hours`).
    From `params` N and `tokens` D the job is 6ND FLOPs (training) or 2ND (`inference`);
    `mfu` sets the sustained rate to that fraction of the device's peak. `power_w` is the
    whole job's draw; with `hardware_name` and no `power_w`, each device draws its TDP.
    """
    _check(flops, sustained_tflops, power_w, hours, pue, devices, intensity, region, price_per_hour)
    notes: dict[str, dict] = {}
    flops = job_flops(flops, params, tokens, inference, notes)
    hw = hardware.get(hardware_name) if hardware_name else None
    device_hours, wall_hours = _device_time(flops, hours, hw, sustained_tflops, mfu, devices, notes)
    if power_w is None:
        power_w = _tdp_power(hw, devices, notes)
    energy_kwh, co2e_kg = _energy(power_w, wall_hours, pue, intensity, region, notes)
    price_per_hour = _price(price_per_hour, hw, notes)
    return Estimate(
        device_hours=device_hours,
        device_years=device_hours / HOURS_PER_YEAR,
        wall_hours=wall_hours,
        energy_kwh=energy_kwh,
        co2e_kg=co2e_kg,
        co2e_lbs=None if co2e_kg is None else co2e_kg * carbon.LBS_PER_KG,
        cost_usd=None if price_per_hour is None else device_hours * price_per_hour,
        assumptions=notes,
        flops=flops,
    )
