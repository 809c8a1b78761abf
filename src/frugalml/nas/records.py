"""The run records (`record.json`) of `frugal nas train/search/export`.

- `nas.train`: the supernet's run directory; quality = the largest sub-network's validation
  accuracy as training reports it (before BN recalibration) and the smallest's (recalibrated,
  as the search scores sub-networks); after = the supernet's params and the largest
  sub-network's MACs; spent = `fit`'s own ledger on that directory (not wrapped twice).
- `nas.search`: `<supernet>/search/<device>-<T>ms/`; quality = the winner's test accuracy (and
  the validation accuracy the search optimised); before = the largest sub-network, after = the
  winner, per inference (MACs, latency); spent = the search's ledger. The search does not
  compute what training each evaluated candidate from scratch would cost (the NAS benchmark
  does), so `spent` has no counterfactual.
- `nas.export`: the export directory; quality = the sub-network's test accuracy (after
  fine-tuning if any); before = largest sub-network, after = the exported one (params, MACs).
"""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path

from frugalml.cost.currency import MEASURED, MODELLED, Cost
from frugalml.errors import FrugalError
from frugalml.nas import latency as lat
from frugalml.nas import pipeline
from frugalml.report import record


def _rel(path: Path, run_dir: Path) -> str:
    return os.path.relpath(path, run_dir)


def train(cfg, out: str | Path, progress: bool | None = None) -> dict:
    """`train_supernet` tracked by fit's ledger on `out`, then `record.json` (kind nas.train).

    Returns train_supernet's result with `smallest_val_accuracy` added."""
    from frugalml.nas.supernet import Evaluator, train_supernet

    out = Path(out)
    res = train_supernet(cfg, out, track=True, progress=progress)
    space, net, _meta, train_ds, val, _test = pipeline.load_context(out)
    smallest = Evaluator(space, net, train_ds, val)(space.smallest())
    largest = res["largest_val_accuracy_unrecalibrated"]
    after = Cost(
        params=res["params"],
        macs=space.macs(space.largest()),
        notes={"params": "counted (supernet)", "macs": "counted (largest sub-network)"},
    )
    rec = record.build(
        "nas.train",
        quality={
            "accuracy": record.metric(largest),
            "accuracy_smallest": record.metric(smallest),
        },
        config=res["config"],
        data=f"{cfg.space} (validation split)",
        model=f"supernet {cfg.space}",
        after=after,
        spent=res.get("tracking"),
        artifacts={
            "weights": "supernet.safetensors",
            "result": "result.json",
            "meta": "nas.json",
            "spent": "spent.json",
        },
    )
    record.write(out, rec)
    return res | {"smallest_val_accuracy": smallest}


def search_dir(run: str | Path, device: str, budget_ms: float) -> Path:
    return Path(run) / "search" / f"{device}-{budget_ms:g}ms"


def search(run: str | Path, device: str, budget_ms: float, cfg, **kw) -> dict:
    """`search_step` under a spent ledger in `search_dir(...)`, then `record.json` (kind nas.search).
    Returns the search result with `run_dir` added."""
    from frugalml.cost.tracker import Ledger

    pipeline.check_search(run, device, budget_ms, kw.get("latency_run"), kw.get("calibrated", True))
    cfg.validate()  # all before creating its run directory
    out = search_dir(run, device, budget_ms)
    out.mkdir(parents=True, exist_ok=True)
    # CPU-seconds mode, as every NAS step (see `pipeline`): machine-wide power would charge other jobs
    with Ledger(out, children=True, label="nas.search", use_codecarbon=False) as ledger:
        res = pipeline.search_step(run, device, budget_ms, cfg, **kw)
    space = pipeline.load_supernet(run)[0]
    largest = space.largest()
    factor = res["speed_check"]["factor"] if res.get("speed_check") else 1.0
    how = f"{MODELLED} (roofline of {device})" if res["modelled"] else f"predicted (latency predictor of {device})"
    before = Cost(
        macs=space.macs(largest),
        latency_s=factor * pipeline.predictor_for(space, Path(run), device).predict(largest) / 1e3,
        notes={"macs": "counted (largest sub-network)", "latency_s": how},
    )
    measured = res.get("measured_latency_ms")
    after = Cost(
        macs=res["macs"],
        latency_s=(measured if measured is not None else res["predicted_latency_ms"]) / 1e3,
        notes={
            "macs": "counted (winner)",
            "latency_s": how if measured is None or res["modelled"] else f"{MEASURED} on {device}",
        },
    )
    base = Path(run) / "search" / f"{device}-{budget_ms:g}ms"
    artifacts = {"result": _rel(base.with_name(base.name + "-result.json"), out), "spent": "spent.json"}
    artifacts["state"] = _rel(base.with_name(base.name + ".json"), out)
    rec = record.build(
        "nas.search",
        quality={"accuracy": record.metric(res["test_accuracy"]), "val_accuracy": record.metric(res["accuracy"])},
        config=asdict(cfg) | {"device": device, "budget_ms": budget_ms, "supernet": str(run)},
        data=f"{space.name} (test split)",
        model=f"sub-network of {space.name}",
        before=before,
        after=after,
        spent=ledger.total() | _counterfactual(Path(run), res["evaluations"]),
        artifacts=artifacts,
    )
    record.write(out, rec)
    return res | {"run_dir": str(out)}


def _counterfactual(run: Path, evaluations: int) -> dict:
    """What the search's alternative costs: training every evaluated candidate from scratch.

    Estimated from the supernet's own training, which trains `2 + subnets` sub-networks per
    sandwich step (one per step when sampling uniformly) for the same epochs: one candidate
    from scratch ~ the supernet's CPU-seconds / sub-networks per step. The NAS benchmarks
    measure it instead, by training the scaling family from scratch."""
    sup = run / record.FILENAME
    if not sup.is_file():
        return {}
    rec = record.read(run)
    cpu = (rec.get("spent") or {}).get("cpu_s")
    cfg = rec.get("config") or {}
    if not cpu:
        return {}
    per_step = 2 + int(cfg.get("subnets", 0)) if cfg.get("sampling") == "sandwich" else 1
    per_candidate = cpu / per_step
    return {
        "counterfactual": {
            "candidates": evaluations,
            "from_scratch_cpu_s": evaluations * per_candidate,
            "supernet_cpu_s": cpu,
            "how": f"estimated: {evaluations} candidates x supernet CPU-s / {per_step} sub-networks trained per step",
        }
    }


def export(
    run: str | Path,
    arch: dict,
    out: str | Path,
    finetune_epochs: int = 0,
    target: str | None = None,
    fmt: str = "safetensors",
    data: str | None = None,
) -> dict:
    """`pipeline.export` under a spent ledger in `out`, then `record.json` (kind nas.export).
    With `target`, the exported net's latency there against the largest sub-network's
    (`pipeline.latency_vs_largest`) goes in the result (`latency`) and the record's costs.
    `fmt` "onnx" adds `model.onnx`, checked in onnxruntime and timed beside PyTorch eager at batch
    1 and 256 with the largest sub-network (`deploy.onnx_report`, result key `deploy`). `data`:
    the user's data spec (`frugalml.data.get`) to recalibrate, fine-tune and test on.
    Written whole or not at all (`files.staged_dir`)."""
    from frugalml import data as datasets
    from frugalml.cost.tracker import Ledger
    from frugalml.files import staged_dir
    from frugalml.models import space as spaces

    if fmt not in FORMATS:
        raise FrugalError(f"unknown export format '{fmt}' ({', '.join(FORMATS)})")
    if target is not None:
        lat.check_device(target)  # before creating the export directory
    ds = datasets.get(data) if data else None
    out = Path(out)
    with staged_dir(out, "nas.export") as work:
        with Ledger(work, children=True, label="nas.export", use_codecarbon=False) as ledger:
            info = pipeline.export(run, arch, work, finetune_epochs=finetune_epochs, data=ds)
            if target is not None:
                space, net, _ = pipeline.load_supernet(run)
                info["latency"] = pipeline.latency_vs_largest(space, net, arch, target)
            if fmt == "onnx":
                info["deploy"] = _onnx(run, arch, work, out, ds)
            info["out"] = str(out)
        space = spaces.get(info["space"])
        params = sum(p.numel() for p in pipeline.load_exported(work).parameters())
        acc = info.get("test_accuracy_finetuned", info["test_accuracy"])
        before = Cost(macs=space.macs(space.largest()), notes={"macs": "counted (largest sub-network)"})
        after = Cost(params=params, macs=info["macs"], notes={"params": "counted", "macs": "counted"})
        if target is not None:
            m = info["latency"]
            how = f"{MODELLED} (roofline of {target})" if m["modelled"] else f"{MEASURED} on {target}"
            before = replace(before, latency_s=m["largest_ms"] / 1e3, notes=before.notes | {"latency_s": how})
            after = replace(after, latency_s=m["latency_ms"] / 1e3, notes=after.notes | {"latency_s": how})
        quality = {"accuracy": record.metric(acc)}
        artifacts = {
            "weights": "model.safetensors",
            "arch": "arch.json",
            "export": "export.json",
            "spent": "spent.json",
        }
        if fmt == "onnx":
            quality["onnx_max_abs_diff"] = record.metric(info["deploy"]["onnx_max_abs_diff"], higher_is_better=False)
            artifacts["onnx"] = "model.onnx"
        rec = record.build(
            "nas.export",
            quality=quality,
            config={"supernet": str(run), "arch": arch, "finetune_epochs": finetune_epochs, "target": target}
            | {"format": fmt, "data": data},
            data=data or f"{space.name} (test split)",
            model=f"sub-network of {space.name}",
            before=before,
            after=after,
            spent=ledger.total(),
            artifacts=artifacts,
        )
        record.write(work, rec)
    return info


FORMATS = ("safetensors", "onnx")


def _onnx(run, arch: dict, work: Path, out: Path, ds=None) -> dict:
    """`model.onnx` of the exported sub-network beside the largest sub-network (both recalibrated)."""
    from safetensors.torch import save

    from frugalml.models import deploy

    space, net, _meta, train, _val, test = pipeline.load_context(run)
    if ds is not None:
        train, _val, test = pipeline.user_splits(space, arch, ds)
    sub = pipeline.load_exported(work)
    big = space.extract(net, space.largest())
    space.prepare(big, train)
    xs = {b: deploy.batch_of(test.x_test, b) for b in (1, 256)}
    res = deploy.onnx_report(sub, work / "model.onnx", xs, reference=("largest", big), test=(test.x_test, test.y_test))
    sizes = {
        "bytes_safetensors": (work / "model.safetensors").stat().st_size,
        "bytes_largest": len(save({k: v.contiguous() for k, v in big.state_dict().items()})),
        "accuracy_largest": space.evaluate(big, test),
    }
    return {"onnx": str(out / "model.onnx")} | res | sizes


def latency(run: str | Path, device: str, samples: int, seed: int = 0, **kw) -> dict:
    """`latency_step` under a spent ledger in `<supernet>/latency/<device>/`, then `record.json`
    (kind nas.latency): quality = the MLP predictor's held-out MAPE in % (lower is better; none
    on a modelled device, whose latency is the model itself). Returns the result with `run_dir`."""
    from frugalml.cost.tracker import Ledger

    pipeline.check_latency(run, device, samples)  # before creating its run directory
    out = Path(run) / "latency" / device
    out.mkdir(parents=True, exist_ok=True)
    with Ledger(out, children=True, label="nas.latency", use_codecarbon=False) as ledger:
        res = pipeline.latency_step(run, device, samples, seed=seed, **kw)
    quality = {}
    if "mlp" in res:
        quality["predictor_mape"] = record.metric(res["mlp"]["mape_pct"], higher_is_better=False)
    artifacts = {"metrics": f"../{device}-metrics.json", "spent": "spent.json"}
    if not res["modelled"]:
        artifacts |= {"measurements": f"../{device}.json", "predictor": f"../{device}-mlp.json"}
    rec = record.build(
        "nas.latency",
        quality=quality,
        config={"supernet": str(run), "device": device, "samples": samples, "seed": seed},
        data=f"{res['samples']} sub-networks measured on {device}",
        model="MLP latency predictor (HAT)",
        spent=ledger.total(),
        artifacts=artifacts,
    )
    record.write(out, rec)
    return res | {"run_dir": str(out)}


def _front_point(m: dict, device: str, modelled: bool) -> dict:
    measured = m.get("measured_latency_ms")
    how = f"{MODELLED} (roofline of {device})" if modelled else f"{MEASURED} on {device}"
    if measured is None:
        how = f"predicted (latency predictor of {device})"
    return {
        "label": f"{m['predicted_latency_ms']:.4g} ms predicted",
        "quality": {"accuracy": record.metric(m["test_accuracy"])},
        "cost": Cost(
            macs=m["macs"],
            latency_s=(measured if measured is not None else m["predicted_latency_ms"]) / 1e3,
            notes={"macs": "counted", "latency_s": how},
        ),
    }


def pareto(run: str | Path, device: str, population: int, generations: int, seed: int = 0, **kw) -> dict:
    """`pareto_step` under a spent ledger in `<supernet>/search/<device>-pareto/`, then `record.json`
    (kind nas.pareto): quality = hypervolume of the NSGA-II front and of random search with as many
    evaluations; points = the measured front members (test accuracy, MACs, latency)."""
    from frugalml.cost.tracker import Ledger

    pipeline.check_pareto(run, device, kw.get("latency_run"))  # before creating its run directory
    out = Path(run) / "search" / f"{device}-pareto"
    out.mkdir(parents=True, exist_ok=True)
    with Ledger(out, children=True, label="nas.pareto", use_codecarbon=False) as ledger:
        res = pipeline.pareto_step(run, device, population, generations, seed=seed, **kw)
    hv = res["hypervolume"]
    rec = record.build(
        "nas.pareto",
        quality={"hypervolume": record.metric(hv["nsga2"]), "hypervolume_random": record.metric(hv["random"])},
        config={"supernet": str(run), "device": device, "population": population, "generations": generations}
        | {"seed": seed},
        data="validation split (search), test split (front members)",
        model="sub-networks of the supernet",
        spent=ledger.total(),
        points=[_front_point(m, device, res["modelled"]) for m in res["measured_front"]],
        artifacts={"front": f"../{device}-pareto.json", "spent": "spent.json"},
    )
    record.write(out, rec)
    return res | {"run_dir": str(out)}
