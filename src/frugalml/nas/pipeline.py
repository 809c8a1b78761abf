"""The steps behind `frugal nas ...`, on one supernet run directory.

    runs/nas/<name>/                  nas.json, supernet.safetensors, result.json (train)
        latency/<device>.json         measured sub-networks + noise floor (resumable)
        latency/<device>-metrics.json predictor RMSE / MAPE / Kendall tau on held-out nets
        latency/<device>-mlp.*        the fitted latency predictor
        search/<device>-<T>ms.json    evolution state after every generation (resumable)
        search/<device>-<T>ms-result.json

Every step records its cost (wall time, CPU time, energy, CO2e) with `frugalml.cost.tracker`
in CPU-seconds mode: on a machine shared with other jobs, machine-wide power would charge
us for their work, while CPU-seconds of this process x TDP per core is attributable.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from frugalml.errors import FrugalError
from frugalml.files import read_json, write_json
from frugalml.nas import latency as lat
from frugalml.nas import search as srch
from frugalml.nas.supernet import Evaluator, load_supernet


def tracker(label: str):
    from frugalml.cost.tracker import Tracker

    return Tracker(label=label, use_codecarbon=False).start()


def cost_of(result) -> dict:
    d = result.to_dict()
    return {k: d[k] for k in ("wall_s", "cpu_s", "energy_j", "co2e_g")} | {"energy_source": d["sources"]["energy"]}


def check_samples(device: str, samples: int) -> None:
    """A measured target needs 10 sub-networks to fit and test a predictor; a modelled one needs 1."""
    least = 1 if lat.is_modelled(device) else 10
    if samples < least:
        what = "on a modelled target" if least == 1 else "to fit and test a predictor"
        raise FrugalError(f"--samples must be at least {least} {what}, got {samples}")


def check_latency(run: str | Path, device: str, samples: int) -> None:
    """What `latency_step` refuses, checked before anything is written: target, run, samples."""
    lat.check_device(device)
    load_supernet(run)
    check_samples(device, samples)


def latency_step(
    run: str | Path,
    device: str,
    samples: int = 300,
    seed: int = 0,
    rounds: int = 4,
    progress: bool | None = None,
    lut: bool = True,
) -> dict:
    """Measure sub-networks on `device`, fit and score the predictors, save the MLP predictor."""
    lat.check_device(device)
    run = Path(run)
    done = run / "latency" / f"{device}-metrics.json"
    if done.exists():
        old = read_json(done)
        if old.get("samples") == samples and old.get("seed", 0) == seed:
            return old  # finished: keep its measurements, predictor and recorded cost
    check_samples(device, samples)
    space, net, _ = load_supernet(run)
    t = tracker(f"nas latency {device}")
    data = lat.collect(
        space, net, device, samples, run / "latency" / f"{device}.json", seed=seed, rounds=rounds, progress=progress
    )
    out = {"device": device, "modelled": lat.is_modelled(device), "samples": len(data["records"]), "seed": seed}
    if lat.is_modelled(device):
        out["note"] = "modelled device: latency is the roofline model itself, no predictor needed"
    else:
        metrics, predictor = lat.evaluate_predictors(space, data, seed=seed, lut=lut)
        predictor.save(run / "latency" / f"{device}-mlp")
        out |= metrics
    out["cost"] = cost_of(t.stop())
    out["measure_seconds"] = data["seconds"]
    write_json(run / "latency" / f"{device}-metrics.json", out)
    return out


def predictor_for(space, run: Path, device: str):
    lat.check_device(device)
    if lat.is_modelled(device):
        return lat.ModelledLatency(space, device)
    path = run / "latency" / f"{device}-mlp"
    if not path.with_suffix(".json").exists():
        raise FrugalError(f"no latency predictor for '{device}' in {run}: run `frugal nas latency --target {device}`")
    return lat.MLPPredictor.load(space, path)


def effective_budget(run: Path, device: str, budget_ms: float) -> float:
    """budget x min(1, 1.1 / (1 + e90)), e90 = 90th percentile of the predictor's held-out under-prediction."""
    if lat.is_modelled(device):
        return budget_ms
    path = Path(run) / "latency" / f"{device}-metrics.json"
    e90 = read_json(path)["mlp"].get("under_p90", 0.0) if path.exists() else 0.0
    return budget_ms * min(1.0, 1.1 / (1.0 + max(e90, 0.0)))


def _search_target(space, predictor, run: Path, device: str, budget_ms: float, calibrated: bool) -> float:
    """The predicted-latency limit the search works to: the calibrated budget, except that the
    margin never pushes an achievable budget below the smallest achievable latency."""
    if not calibrated:
        return budget_ms
    low, _ = srch.smallest_achievable(space, predictor.predict)
    return max(effective_budget(run, device, budget_ms), min(low, budget_ms))


class ScaledPredictor:
    """A latency predictor times a speed factor (see `measure_speed`)."""

    def __init__(self, base, factor: float):
        self.base, self.factor = base, factor

    def predict(self, arch: dict) -> float:
        return self.factor * self.base.predict(arch)

    def predict_many(self, archs) -> list[float]:
        return [self.factor * v for v in self.base.predict_many(archs)]


def measure_speed(
    space, net, latency_run: str | Path, device: str, budget_ms: float, predictor, references: int = 8, passes: int = 3
) -> dict:
    """How fast `device` runs now, against when its latency data was taken.

    The `references` nets of the latency data whose latency lay nearest `budget_ms` are measured
    again now, in `passes` passes (a net's fastest counts, so a burst of slowness lasting
    seconds spoils a pass, not the check); factor = median(measured now / measured then). A
    shared VM's speed wanders by ~10% over tens of minutes (as much as a 10% latency
    tolerance), so a predictor fitted an hour earlier can put every winner over its budget; the
    search then works to `factor x predicted`. The predictor's own error is left to the margin
    of `effective_budget` (`predictor_ratio`, the median of now / predicted, is reported).
    """
    import statistics

    recs = read_json(Path(latency_run) / "latency" / f"{device}.json")["records"]
    near = sorted(recs, key=lambda r: abs(r["latency_ms"] - budget_ms))[: max(1, references)]
    t = tracker(f"nas speed check {device}")
    rows = [{"arch": r["arch"], "data_ms": r["latency_ms"], "predicted_ms": predictor.predict(r["arch"])} for r in near]
    for _ in range(max(1, passes)):
        for r in rows:
            ms = lat.measure(space, net, r["arch"], device) * 1e3
            r["now_ms"] = min(r.get("now_ms", ms), ms)
    return {
        "device": device,
        "budget_ms": budget_ms,
        "factor": statistics.median(r["now_ms"] / r["data_ms"] for r in rows),
        "predictor_ratio": statistics.median(r["now_ms"] / r["predicted_ms"] for r in rows),
        "references": rows,
        "cost": cost_of(t.stop()),
    }


def checked_speed(
    path: Path, space, net, latency_run, device: str, budget_ms: float, predictor, references=8, passes=3, reuse=True
) -> dict:
    """`measure_speed`, saved to `path`; with `reuse`, a check saved there before is taken instead
    (a resumed search keeps the speed it started with)."""
    if reuse and path.exists():
        speed = read_json(path)
    else:
        speed = measure_speed(space, net, latency_run, device, budget_ms, predictor, references, passes)
    write_json(path, speed)
    return speed


def load_context(run: str | Path):
    """(space, net, meta, train, val, test) of a supernet run: what searching and scoring it need."""
    space, net, meta = load_supernet(run)
    train, val, test = space.dataset(quick=meta["config"].get("quick", False))
    return space, net, meta, train, val, test


def score_arch(space, net, train, test, device: str, arch: dict, predictor, measure: bool = True) -> dict:
    """A found sub-network's record: predicted latency, test accuracy, MACs and (`measure`) its measured latency."""
    sub = space.extract(net, arch)
    space.prepare(sub, train)
    out = {
        "arch": arch,
        "predicted_latency_ms": predictor.predict(arch),
        "test_accuracy": space.evaluate(sub, test),
        "macs": space.macs(arch),
    }
    if measure:
        out["measured_latency_ms"] = lat.measure(space, net, arch, device) * 1e3
    return out


def _speed_checked(space, net, predictor, state: Path, lrun: Path, device: str, budget_ms: float, speed_check):
    """(predictor scaled by the device's speed now, the speed check) - or (predictor, None) without one.
    See `search_step`."""
    if not speed_check or lat.is_modelled(device):
        return predictor, None
    path = state.with_name(f"{device}-{budget_ms:g}ms-speed.json")
    if isinstance(speed_check, dict):
        speed = speed_check
        write_json(path, speed)
    else:
        speed = checked_speed(path, space, net, lrun, device, budget_ms, predictor, speed_check, reuse=state.exists())
    return ScaledPredictor(predictor, speed["factor"]), speed


def _check_meetable(space, predictor, target: float, device: str, budget_ms: float, speed: dict) -> None:
    low, _ = srch.smallest_achievable(space, predictor.predict)
    if target < low:
        raise FrugalError(
            f"no sub-network of '{space.name}' meets {budget_ms:g} ms on {device} now: the "
            f"device runs {speed['factor']:.2f}x as slow as in its latency data and the smallest "
            f"achievable is {low:.4g} ms"
        )


def check_search(run, device: str, budget_ms: float, latency_run=None, calibrated: bool = True) -> None:
    """What `search_step` refuses, checked before anything is written: run, target, predictor, budget."""
    lat.check_device(device)
    space = load_supernet(run)[0]
    lrun = Path(latency_run or run)
    predictor = predictor_for(space, lrun, device)
    srch.check_budget(space, predictor.predict, _search_target(space, predictor, lrun, device, budget_ms, calibrated))


def check_pareto(run, device: str, latency_run=None) -> None:
    """What `pareto_step` refuses, checked before anything is written: run, target, latency data."""
    lat.check_device(device)
    space = load_supernet(run)[0]
    _data_digest(Path(latency_run or run), device)
    predictor_for(space, Path(latency_run or run), device)


def estimate_seconds(space, net, train, val, evaluations: int) -> float:
    """Rough time of `evaluations` sub-network evaluations: the smallest's and the largest's, timed now."""
    ev = Evaluator(space, net, train, val)
    t0 = time.perf_counter()
    ev(space.smallest())
    ev(space.largest())
    return evaluations * (time.perf_counter() - t0) / 2


def search_step(
    run: str | Path,
    device: str,
    budget_ms: float,
    cfg: srch.EvolutionConfig | None = None,
    progress: bool | None = None,
    evaluator: Evaluator | None = None,
    context=None,
    latency_run: str | Path | None = None,
    measure: bool = True,
    calibrated: bool = True,
    speed_check: int | dict = 0,
    note=None,
) -> dict:
    """Evolutionary search for `device` under `budget_ms` (predicted); the winner is then measured.

    `calibrated`: constrain the predicted latency to `effective_budget(...)`, which leaves room
    for the predictor's held-out under-prediction so the measured latency lands within 10%.

    `speed_check`: on a measured device, first re-measure this many nets of the latency data near
    the budget and scale the predictor by how much faster or slower the device runs now
    (`measure_speed`; a resumed search reuses its check); or a check already taken (a dict).

    `latency_run`: take the latency predictor from another run of the same space (latency
    depends on the architecture, not on the weights).

    `note(seconds, what, basis)`: told, before a new search starts, roughly how long it will take.
    """
    run = Path(run)
    cfg = cfg or srch.EvolutionConfig()
    lrun = Path(latency_run or run)
    if context is None:  # fail fast on a bad device or budget, before loading data
        check_search(run, device, budget_ms, lrun, calibrated)
    space, net, meta, train, val, test = context or load_context(run)
    state = run / "search" / f"{device}-{budget_ms:g}ms.json"
    fresh = not state.exists()
    predictor = predictor_for(space, lrun, device)
    predictor, speed = _speed_checked(space, net, predictor, state, lrun, device, budget_ms, speed_check)
    target = _search_target(space, predictor, lrun, device, budget_ms, calibrated)
    if speed:
        _check_meetable(space, predictor, target, device, budget_ms, speed)
    if note is not None and fresh:  # after every check
        most = cfg.population + (cfg.iterations - 1) * (cfg.mutations + cfg.crossovers)
        per = estimate_seconds(space, net, train, val, 1)
        note(most * per, f"nas search ({most} evaluations at most)", f"{per:.2g} s per evaluation timed now")
    ev = evaluator or Evaluator(space, net, train, val)
    t = tracker(f"nas search {device} {budget_ms}")
    t0 = time.perf_counter()
    res = srch.evolve(space, ev, predictor.predict, target, cfg, state_path=state, progress=progress)
    seconds = time.perf_counter() - t0
    final = score_arch(space, net, train, test, device, res["arch"], predictor, measure=measure)
    out = final | {
        "device": device,
        "modelled": lat.is_modelled(device),
        "budget_ms": budget_ms,
        "search_budget_ms": target,
        "speed_check": speed,
        "accuracy": res["accuracy"],  # validation accuracy the search optimised
        "search_seconds": res["search_seconds"],
        "wall_seconds": seconds,
        "generations": res["generations"],
        "resumed_from_generation": res["resumed_from_generation"],
        "evaluations": ev.evaluations,
        "config": asdict(cfg),
        "history": res["history"],
        "cost": cost_of(t.stop()),
    }
    done = run / "search" / f"{device}-{budget_ms:g}ms-result.json"
    if res["resumed_from_generation"] == res["generations"] and done.exists():
        out["cost"] = read_json(done)["cost"]  # finished before: what the search cost is what it cost then
    write_json(done, out)
    return out


def pareto_step(
    run: str | Path,
    device: str,
    population: int = 40,
    generations: int = 15,
    seed: int = 0,
    measure_front: int = 8,
    evaluator: Evaluator | None = None,
    context=None,
    latency_run: str | Path | None = None,
    measure: bool = True,
    note=None,
) -> dict:
    """NSGA-II accuracy/latency front vs random search with the same number of evaluations (hypervolume).

    A finished front with the same settings and latency data is returned as it was saved;
    `note(seconds, what, basis)` is told roughly how long a new one will take."""
    run = Path(run)
    done = run / "search" / f"{device}-pareto.json"
    key = {
        "population": population,
        "generations": generations,
        "seed": seed,
        "measure_front": measure_front,
        "latency_data": _data_digest(Path(latency_run or run), device),
    }
    old = read_json(done) if done.exists() else {}
    if old.get("settings") == key:
        return old
    space, net, meta, train, val, test = context or load_context(run)
    predictor = predictor_for(space, Path(latency_run or run), device)
    if note is not None:  # NSGA-II's evaluations and as many for random search, at most
        per = estimate_seconds(space, net, train, val, 1)
        most = 2 * population * generations
        note(most * per, f"nas pareto ({most} evaluations at most)", f"{per:.2g} s per evaluation timed now")
    ev = evaluator or Evaluator(space, net, train, val)
    t = tracker(f"nas pareto {device}")
    nsga = srch.pareto(space, ev, predictor.predict, population, generations, seed=seed)
    rnd = srch.random_front(space, ev, predictor.predict, nsga["evaluations"], seed=seed)
    ref = 1.1 * predictor.predict(space.largest())
    hv_nsga, hv_rand = srch.hypervolume(nsga["front"], ref), srch.hypervolume(rnd["front"], ref)

    def pts(front):
        return [{"val_accuracy": a, "predicted_latency_ms": lt, "arch": arch} for a, lt, arch in front]

    # measure a spread of front members for real (accuracy on test, latency on the device)
    front = nsga["front"]
    pick = sorted({round(i * (len(front) - 1) / max(measure_front - 1, 1)) for i in range(measure_front)})
    measured = [score_arch(space, net, train, test, device, front[i][2], predictor, measure) for i in pick]
    out = {
        "device": device,
        "modelled": lat.is_modelled(device),
        "evaluations": nsga["evaluations"],
        "hypervolume": {"nsga2": hv_nsga, "random": hv_rand, "reference": {"error": 1.0, "latency_ms": ref}},
        "front": pts(front),
        "random_front": pts(rnd["front"]),
        "measured_front": measured,
        "search_seconds": nsga["search_seconds"],
        "random_seconds": rnd["search_seconds"],
        "cost": cost_of(t.stop()),
    }
    out["settings"] = key
    write_json(done, out)
    return out


def _data_digest(latency_run: Path, device: str) -> str:
    """Fingerprint of the latency data a predictor was fitted on ("modelled" for a modelled device)."""
    import hashlib

    if lat.is_modelled(device):
        return "modelled"
    data = latency_run / "latency" / f"{device}.json"
    if not data.is_file():
        raise FrugalError(
            f"no latency data for '{device}' in {latency_run}: run `frugal nas latency --run {latency_run} "
            f"--target {device}` first"
        )
    return hashlib.sha1(data.read_bytes()).hexdigest()


# ---- export ------------------------------------------------------------------------------


def read_arch(space, path: str | Path) -> dict:
    arch = read_json(path)
    if isinstance(arch, dict) and "arch" in arch and isinstance(arch["arch"], dict):
        arch = arch["arch"]  # a search result file works as well
    return space.validate(arch)


def finetune(space, sub, data, test, cfg, out: Path) -> float:
    """Train the extracted sub-network `sub` further from its supernet weights, in place, on `data`
    with `cfg` (a `TrainConfig`) and the space's loss; its accuracy on `test` after, in eval mode."""
    from frugalml.train import fit

    fit(sub, data, cfg, out, progress=False, loss_fn=lambda m, x, y: space.loss(m, x, y)[:2])
    return space.evaluate(sub.eval(), test)


def export(run: str | Path, arch: dict, out: str | Path, finetune_epochs: int = 0, seed: int = 0, data=None) -> dict:
    """Write the sub-network `arch` as `arch.json` + `model.safetensors` (+ `export.json`).
    `data` (a `frugalml.data.Dataset`, e.g. the user's own): BatchNorm recalibration, fine-tuning
    and test accuracy on it instead of the space's data; fine-tuning reports on its x_val/y_val,
    else on its test split (the schedule is fixed, so nothing is chosen by it)."""
    from frugalml.data.base import Dataset
    from frugalml.train import TrainConfig, save_weights

    space, net, meta, train, val, test = load_context(run)
    space.validate(arch)
    if data is not None:
        train, val, test = user_splits(space, arch, data)
    out = Path(out)
    sub = space.extract(net, arch)
    space.prepare(sub, train)
    info = {
        "space": meta["config"]["space"],
        "space_config": space.config,
        "supernet": str(run),
        "test_accuracy": space.evaluate(sub, test),
        "macs": space.macs(arch),
    }
    if data is not None:
        info["data"] = data.name
    if finetune_epochs > 0:
        cfg = TrainConfig(epochs=finetune_epochs, batch_size=128, lr=3e-4, optimizer="adam", seed=seed)
        ft_data = Dataset("finetune", train.x_train, train.y_train, val.x_test, val.y_test, test.num_classes)
        info["finetuned_epochs"] = finetune_epochs
        info["test_accuracy_finetuned"] = finetune(space, sub, ft_data, test, cfg, out / "finetune")
    write_json(out / "arch.json", arch)
    save_weights(sub, out / "model.safetensors")
    write_json(out / "export.json", info)
    return info | {"out": str(out)}


def user_splits(space, arch: dict, data):
    """(train, val, test) Datasets of the user's `data` for a sub-network of `space`: its examples
    must have the shape the sub-network takes and its labels index the sub-network's outputs."""
    from frugalml.data.base import Dataset

    x = space.example_input(arch)
    want = tuple(x.shape[1:]) if hasattr(x, "shape") else None
    if want != tuple(data.input_shape):
        raise FrugalError(f"--data {data.name}: examples of shape {tuple(data.input_shape)}; this space takes {want}")
    n_out = getattr(space, "num_classes", None)
    if n_out is not None and data.num_classes > n_out:
        raise FrugalError(f"--data {data.name} has {data.num_classes} classes; the sub-networks give {n_out} outputs")
    xv, yv = data.info.get("x_val", data.x_test), data.info.get("y_val", data.y_test)
    n = n_out or data.num_classes
    train = Dataset(data.name, data.x_train, data.y_train, xv, yv, n)
    val = Dataset(f"{data.name}-val", data.x_train, data.y_train, xv, yv, n)
    test = Dataset(f"{data.name}-test", data.x_train, data.y_train, data.x_test, data.y_test, n)
    return train, val, test


def latency_vs_largest(space, net, arch: dict, device: str, rounds: int = 8) -> dict:
    """The sub-network `arch`'s latency on `device` against the largest sub-network's.

    Measured: `rounds` interleaved rounds (each times both nets, in alternating order, with the
    estimator of `measure`); ratio = median of the per-round ratios, spread = their range - a
    ratio whose spread includes 1 is no measured difference. Modelled: one ratio, no spread."""
    import statistics

    lat.check_device(device)
    largest = space.largest()
    if lat.is_modelled(device):
        a, b = lat.modelled_latency_s(space, arch, device), lat.modelled_latency_s(space, largest, device)
        return {"device": device, "modelled": True, "latency_ms": a * 1e3, "largest_ms": b * 1e3, "ratio": a / b}
    sub, big = space.extract(net, arch), space.extract(net, largest)
    xs, xb = space.example_input(arch), space.example_input(largest)
    pairs = []
    for i in range(rounds):
        order = [(sub, xs), (big, xb)] if i % 2 == 0 else [(big, xb), (sub, xs)]
        t = dict(zip((id(m) for m, _ in order), lat.time_on(device, order, 0.05)[0], strict=True))
        pairs.append((t[id(sub)], t[id(big)]))
    ratios = [a / b for a, b in pairs]
    return {
        "device": device,
        "modelled": False,
        "latency_ms": statistics.median(a for a, _ in pairs) * 1e3,
        "largest_ms": statistics.median(b for _, b in pairs) * 1e3,
        "ratio": statistics.median(ratios),
        "spread": [min(ratios), max(ratios)],
        "rounds": rounds,
    }


def load_exported(path: str | Path):
    """Rebuild an exported sub-network (standalone nn.Module, eval mode) from its directory."""
    from frugalml.models import space as spaces
    from frugalml.train import load_weights

    path = Path(path)
    info = read_json(path / "export.json")
    space = spaces.get(info["space"])
    arch = space.validate(read_json(path / "arch.json"))
    module = space.build_subnet(arch)
    load_weights(module, path / "model.safetensors")
    return module.eval()
