"""Was the carbon spent well? Runs side by side, their Pareto fronts, and payback.

`compare(records)` puts runs on two fronts: quality against what producing them cost
(`spent`), and quality against what one inference of their result costs (`after`). A run
off a front is dominated by one that is at least as good and no dearer; every run is also
set against the cheapest one ("+0.3 pt for 4.1x the CO2e").

`payback(record, ...)` answers whether an efficiency technique repays its own cost:
break-even inferences = spent CO2e / (before - after per-inference CO2e).
"""

from __future__ import annotations

import math
from typing import Any

from frugalml.errors import FrugalError
from frugalml.report.record import primary_metric

# What a run's spending and a result's per-inference cost are compared on, best first:
# the first field every run has is used.
COMPARE_SPENT_ON = ("co2e_g", "energy_j", "cpu_s", "wall_s")
COMPARE_INFERENCE_ON = ("co2e_g", "energy_j", "latency_s", "macs_effective", "macs")


def _common_key(records: list[dict], section: str, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if all((r.get(section) or {}).get(key) is not None for r in records):
            return key
    return None


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(quality, cost) pairs oriented so that higher quality and lower cost are better."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def pareto(points: list[tuple[float, float] | None]) -> list[int | None]:
    """For each point: None if no other point dominates it, else the index of one that does."""
    out: list[int | None] = []
    for i, p in enumerate(points):
        by = None
        if p is not None:
            by = next((j for j, q in enumerate(points) if q is not None and j != i and _dominates(q, p)), None)
        out.append(by)
    return out


def _quality_metric(records: list[dict], metric: str | None) -> tuple[str, bool]:
    metric = metric or primary_metric(records[0])
    if metric is None:
        raise FrugalError(f"run {records[0]['run']} records no quality metric")
    missing = [r for r in records if metric not in (r.get("quality") or {})]
    if missing:
        have = ", ".join(missing[0].get("quality") or {}) or "none"
        raise FrugalError(
            f"runs measure different things: {missing[0]['run']} has no '{metric}' (it has {have}); "
            "compare runs of one task, or pick a common metric with --metric"
        )
    return metric, bool(records[0]["quality"][metric].get("higher_is_better", True))


def _points_unit(values: list[float]) -> tuple[float, str]:
    """Fractions (accuracy 0..1) are compared in percentage points."""
    return (100.0, "pt") if all(0.0 <= v <= 1.0 for v in values) else (1.0, "")


def compare(records: list[dict], metric: str | None = None) -> dict[str, Any]:
    """Runs side by side with their two Pareto fronts; see the module docstring."""
    if not records:
        raise FrugalError("nothing to compare")
    metric, higher = _quality_metric(records, metric)
    sign = 1.0 if higher else -1.0
    quality = [r["quality"][metric].get("value") for r in records]
    warnings = []
    datasets = sorted({str(r.get("data")) for r in records})
    if len(datasets) > 1:
        warnings.append(f"runs use different data ({', '.join(datasets)}): their {metric} may not be comparable")
    spent_key = _common_key(records, "spent", COMPARE_SPENT_ON)
    inference_key = _common_key(records, "after", COMPARE_INFERENCE_ON)

    def front(section: str, key: str | None) -> list[int | None]:
        if key is None:
            return [None] * len(records)
        pts = [None if q is None else (sign * q, r[section][key]) for q, r in zip(quality, records)]
        return pareto(pts)

    dom_spent, dom_inference = front("spent", spent_key), front("after", inference_key)
    scale, unit = _points_unit([q for q in quality if q is not None])
    cheapest = None
    if spent_key is not None:
        cheapest = min(range(len(records)), key=lambda i: records[i]["spent"][spent_key])
    runs = []
    for i, r in enumerate(records):
        row = {
            "run": r["run"],
            "kind": r["kind"],
            "quality": {metric: quality[i]},
            "before": r.get("before"),
            "after": r.get("after"),
            "spent": r.get("spent"),
            "pareto_spent": spent_key is not None and quality[i] is not None and dom_spent[i] is None,
            "pareto_inference": inference_key is not None and quality[i] is not None and dom_inference[i] is None,
            "dominated_by_spent": None if dom_spent[i] is None else records[dom_spent[i]]["run"],
            "dominated_by_inference": None if dom_inference[i] is None else records[dom_inference[i]]["run"],
        }
        if cheapest is not None and i != cheapest and quality[i] is not None and quality[cheapest] is not None:
            base = records[cheapest]["spent"][spent_key]
            gain = round((quality[i] - quality[cheapest]) * scale, 9) + 0.0  # no "-2e-06 pt" from float noise
            ratio = r["spent"][spent_key] / base if base else math.inf
            row["vs_cheapest"] = {"run": records[cheapest]["run"], "gain": gain, "spent_ratio": ratio}
            row["verdict"] = f"{gain:+.3g} {unit or metric} for {ratio:.3g}x the {_LABELS[spent_key]}"
        runs.append(row)
    return {
        "metric": metric,
        "higher_is_better": higher,
        "spent_key": spent_key,
        "inference_key": inference_key,
        "runs": runs,
        "warnings": warnings,
    }


_LABELS = {"co2e_g": "CO2e", "energy_j": "energy", "cpu_s": "CPU time", "wall_s": "wall-clock"}


def _assumption(value: float, source: str) -> dict:
    return {"value": value, "source": source}


def _inference_energy_j(cost: dict, hw, side: str) -> tuple[float, str]:
    """Energy of one inference of a `before`/`after` cost: priced on a hardware profile, or as recorded."""
    if hw is not None:
        macs = cost.get("macs")
        if macs is None or not hw.sustained_tflops or not hw.tdp_w:
            raise FrugalError(f"cannot price an inference on {hw.name}: no MACs in the {side} cost or no TDP")
        seconds = 2 * macs / (hw.sustained_tflops * 1e12)
        how = f"2 x {macs:,} MACs / {hw.sustained_tflops:g} sustained TFLOPS x {hw.tdp_w:g} W TDP"
        return seconds * hw.tdp_w, f"{how} ({hw.name}: {hw.source})"
    if cost.get("energy_j") is not None:
        return float(cost["energy_j"]), cost.get("notes", {}).get("energy_j", "recorded per-inference energy")
    if cost.get("latency_s") is not None:
        from frugalml.cost.hardware import core_watts

        watts, src = core_watts()
        return float(cost["latency_s"]) * watts, f"measured latency x {watts:.3g} W (one core's share: {src})"
    raise FrugalError(f"the run's {side} cost has no energy, latency or MACs to price an inference with")


def payback(
    record: dict,
    inferences_per_day: float,
    days: float = 365.0,
    region: str | None = None,
    hardware_name: str | None = None,
    pue: float = 1.0,
) -> dict[str, Any]:
    """When does the technique of `record` repay what it spent? See the module docstring."""
    from frugalml.cost import carbon, hardware

    if not inferences_per_day > 0 or not days > 0 or not pue >= 1.0:
        raise FrugalError("--inferences-per-day and --days must be positive and --pue at least 1")
    before, after, spent = record.get("before"), record.get("after"), record.get("spent") or {}
    if not before or not after:
        raise FrugalError(f"run {record.get('run')} records no before/after per-inference cost to compare")
    intensity = carbon.intensity(region or carbon.configured_region() or "world")
    hw = hardware.get(hardware_name, measure_host=False) if hardware_name else None
    e_before, src_before = _inference_energy_j(before, hw, "before")
    e_after, src_after = _inference_energy_j(after, hw, "after")
    per_j = pue * intensity.g_per_kwh / 3.6e6
    co2_before, co2_after = e_before * per_j, e_after * per_j
    if spent.get("co2e_g") is not None:
        spent_g, spent_src = float(spent["co2e_g"]), "recorded: " + spent.get("notes", {}).get("co2e_g", "tracked")
    elif spent.get("energy_j") is not None:
        spent_g, spent_src = float(spent["energy_j"]) * per_j, "recorded spent energy x the intensity below"
    else:
        raise FrugalError(f"run {record.get('run')} records no spent energy or CO2e")
    saving = co2_before - co2_after
    pays_back = saving > 0
    out = {
        "run": record.get("run"),
        "kind": record.get("kind"),
        "pays_back": pays_back,
        "break_even_inferences": spent_g / saving if pays_back else None,
        "break_even_days": spent_g / saving / inferences_per_day if pays_back else None,
        "saved_co2e_g": saving * inferences_per_day * days - spent_g,
        "saved_per_inference_co2e_g": saving,
        "assumptions": {
            "inferences_per_day": _assumption(inferences_per_day, "given"),
            "days": _assumption(days, "given"),
            "intensity_g_per_kwh": _assumption(intensity.g_per_kwh, f"{intensity.region}: {intensity.source}"),
            "pue": _assumption(pue, "given (1.0 = no data-centre overhead)"),
            "before_energy_j_per_inference": _assumption(e_before, src_before),
            "after_energy_j_per_inference": _assumption(e_after, src_after),
            "before_co2e_g_per_inference": _assumption(co2_before, "energy x PUE x intensity"),
            "after_co2e_g_per_inference": _assumption(co2_after, "energy x PUE x intensity"),
            "spent_co2e_g": _assumption(spent_g, spent_src),
        },
    }
    counterfactual = spent.get("counterfactual")
    if counterfactual:
        out["counterfactual"] = counterfactual
    if not pays_back:
        out["why"] = (
            f"the result costs no less per inference than the reference ({co2_after:.3g} vs {co2_before:.3g} g CO2e)"
        )
    return out
