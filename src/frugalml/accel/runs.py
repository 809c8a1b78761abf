"""`frugal accel energy` and `frugal accel compare` as runs: the work, and with `--out` its run directory.

A run directory holds `result.json` (what `--json` prints), the plot, `spent.json` (what the
modelling itself cost on this machine) and `record.json`. The record's per-inference costs
are one forward pass of the model's input (the batch given) on the modelled accelerator:
joules where the arch spec has absolute energies, otherwise the normalised total (MAC
energies) in the cost's notes, since a normalised energy is not a joule.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from frugalml.accel.energy import ModelResult, analyze
from frugalml.accel.energy import compare as compare_dataflows


def _ledger(out: Path | None, kind: str):
    if out is None:
        return nullcontext()
    from frugalml.cost.tracker import Ledger

    return Ledger(out, children=True, label=kind)


def energy_run(layers, spec, dataflow: str, objective: str, sparse, config: dict, plot=None, out=None, progress=True):
    """One model on one accelerator and dataflow: the result dict (with `--out`, also its run directory)."""
    from frugalml.accel.plots import energy_per_layer

    out = None if out is None else Path(out)
    plot = plot or (out / "energy_per_layer.png" if out else None)
    with _ledger(out, "accel.energy") as ledger:
        res = analyze(layers, spec, dataflow, objective, sparse, progress=progress)
        result = res.to_dict() | {"model": config["model"], "cost": res.cost().to_dict()}
        result["activation_zeros"] = (
            f"given per layer (input zeros {config['input_zeros']}; each output as sparse as the next input), "
            "zeros at random"
            if config.get("input_zeros") is not None
            else "measured on the forward pass of the model's example input"
        )
        if plot:
            title = f"{config['model']}: {dataflow} on {spec.name}"
            result["plot"] = str(energy_per_layer(result, plot, title))
        if out is not None:
            from frugalml.files import write_json

            write_json(out / "result.json", result)
    if out is not None:
        points = [{"label": r.name, "quality": {}, "cost": _layer_cost(r, spec)} for r in res.layers]
        _write_record(out, "accel.energy", config, None, _cost(res, batch_of(layers)), points, ledger.total(), plot)
    return result


def compare_run(layers, spec, names: list[str], sparse, config: dict, plot=None, out=None, progress=True):
    """Every dataflow side by side, energies relative to the first; with `--out`, also its run directory."""
    from frugalml.accel.plots import dataflow_bars

    out = None if out is None else Path(out)
    plot = plot or (out / "dataflows.png" if out else None)
    with _ledger(out, "accel.compare") as ledger:
        equal_area = bool(config.get("equal_area"))
        table, results = compare_dataflows(layers, spec, names, sparse=sparse, progress=progress, equal_area=equal_area)
        result = compare_table(table, names[0], config, spec) | {"equal_area": equal_area}
        if plot:
            title = f"{config['model']} on {spec.name}"
            result["plot"] = str(dataflow_bars(table, plot, title, result["energy_unit"]))
        if out is not None:
            from frugalml.files import write_json

            write_json(out / "result.json", result)
    if out is not None:
        n = batch_of(layers)
        best = min(table, key=lambda name: table[name]["total_energy"])
        after = _cost(results[best], n, f"best of {', '.join(names)} by total energy")
        before = _cost(results[names[0]], n, "reference (the first dataflow given)")
        points = [{"label": name, "quality": {}, "cost": _cost(results[name], n)} for name in names]
        _write_record(out, "accel.compare", config, before, after, points, ledger.total(), plot)
    return result


def compare_table(table: dict, base: str, config: dict, spec) -> dict:
    """The comparison as `--json` prints it: every dataflow's energy per MAC and its ratio to `base`."""
    out = {
        "model": config["model"],
        "arch": spec.name,
        "batch": config.get("batch"),
        "energy_unit": "normalized (1 = one MAC)" if not spec.absolute else "pJ",
        "baseline": base,
        "dataflows": table,
    }
    for row in table.values():
        for part in ("conv", "fc"):
            mine, ref = row[f"{part}_energy_per_mac"], table[base][f"{part}_energy_per_mac"]
            row[f"{part}_vs_{base}"] = mine / ref if (mine and ref) else None
    return out


def batch_of(layers) -> int:
    return int(layers[0].N) if layers else 1


def _cost(res: ModelResult, batch: int, dataflow_note: str | None = None) -> dict:
    """`ModelResult.cost()` as a record cost, saying what one inference is and which dataflow it is."""
    cost = res.cost().to_dict()
    cost["notes"] = cost["notes"] | {"per_inference": f"one forward pass at batch {batch}"}
    cost["notes"]["dataflow"] = res.dataflow + (f": {dataflow_note}" if dataflow_note else "")
    if not res.arch.absolute:
        cost["notes"]["energy_normalized"] = f"{res.total()['energy']['total']:.6g}"
    return cost


def _layer_cost(r, spec) -> dict:
    energy = r.total_energy
    notes = {"macs": "counted from the layer's shape", "latency_s": f"modelled at {spec.clock_hz:g} Hz"}
    if spec.absolute:
        notes["energy_j"] = "modelled: absolute energies from the arch spec (pJ)"
    else:
        notes["energy_normalized"] = f"{energy:.6g}"
    return {
        "macs": r.macs,
        "macs_effective": round(r.macs_effective),
        "latency_s": r.latency_s,
        "energy_j": energy * 1e-12 if spec.absolute else None,
        "notes": notes,
    }


def _write_record(out: Path, kind: str, config: dict, before, after, points, spent: dict, plot) -> Path:
    from frugalml.report import record

    artifacts = {"result": "result.json", "spent": "spent.json"}
    if plot is not None and Path(plot).resolve().parent == out.resolve():
        artifacts["plot"] = Path(plot).name
    rec = record.build(
        kind,
        quality={},
        config=config,
        data=config.get("input"),
        model=config["model"],
        before=before,
        after=after,
        spent=spent,
        points=points,
        artifacts=artifacts,
    )
    return record.write(out, rec)
