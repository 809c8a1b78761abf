"""The whole pipeline of one search space as one experiment: the harness of `bench_nas_cnn.py` and
`bench_nas_transformer.py` (imported from this directory), built on the public steps of
`frugalml.nas.pipeline`.

Phases (training jobs and the parallel search jobs go through `frugalml.executor.run_jobs`):
  A. supernets (one per seed) and the scaling baseline (every member x seed) trained from scratch
  B. latency data + predictors on each measured device (supernet of the first seed;
     latency depends on the architecture only, so every seed's search reuses them)
  C. in parallel, per seed and device: NSGA-II front vs random front (hypervolume) on each
     measured device; the budget searches of the modelled devices
  D. serially, per measured device and budget: a speed check (reference nets of the latency
     data near the budget measured again: how fast the machine runs now against phase B), then
     per seed the evolutionary search with the predictor scaled by it, the random search with
     the same number of evaluations, optionally a short fine-tune (its cost reported apart), and
     at once the measured latency of the winner and of the random pick - minutes, not the half
     hour of phase C, after the speed was taken
  E. serially, so measurements do not compete with our own jobs: measured latency of every
     baseline member and measured front member on its device
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from frugalml.errors import FrugalError
from frugalml.files import read_json, write_json

# reference nets re-measured in phase E to detect a change of the machine's speed since phase B
DRIFT_REFERENCES = 12
DRIFT_WARN = 0.1  # warn when the median reference runs more than 10% slower or faster
# phase D: extra measurement passes (at most EXTRA_PASSES, EXTRA_PASS_WAIT_S apart) while the
# references measured among the winners run more than SPEED_TOLERANCE off their speed check
SPEED_TOLERANCE = 0.1
EXTRA_PASSES = 4
EXTRA_PASS_WAIT_S = 10.0


@dataclass
class Settings:
    space: str = "cnn"
    seeds: tuple = (0, 1)
    epochs: int = 12
    baseline_epochs: int = 0  # epochs of the scaling baseline trained from scratch (0: as many as the supernet)
    sampling: str = "sandwich"
    subnets: int = 2  # random sub-networks per sandwich step
    distill: bool = True  # sandwich: in-place distillation from the largest (False: every sub-network on labels)
    finetune_epochs: int = 0  # brief fine-tune of each searched winner (0: none)
    quick: bool = False
    devices: tuple = ("host-1t", "host-2t")
    modelled: tuple = ("rpi4",)
    latency_samples: int = 200
    rounds: int = 4
    budget_quantiles: tuple = (0.15, 0.35, 0.6, 0.85)
    # budgets are quantiles of the latencies at or above this multiple of the fastest: a budget
    # within the machine's speed wander of the fastest net may be unmeetable when it is searched
    budget_floor: float = 1.0
    speed_references: int = 8  # nets re-measured for each budget's speed check (0: none)
    # HAT's proportions (parents 20%, mutants 40%, crossovers 40% of the population), scaled down
    evo: dict = field(
        default_factory=lambda: {
            "population": 30,
            "parents": 6,
            "mutations": 12,
            "crossovers": 12,
            "iterations": 8,
            "mutate_prob": 0.3,
        }
    )
    pareto_population: int = 20
    pareto_generations: int = 20  # 400 distinct sub-networks per front (and as many random ones)
    random_devices: tuple = ("host-1t",)
    lut_devices: tuple = ("host-1t",)  # the per-operator table is measured op by op: slow with 2 threads under load
    # members of the scaling family trained from scratch (names from `space.scaling_family()`; empty = all)
    baseline_members: tuple = ()
    workers: int = 3
    # measurements of every measured net (phase D: back to back; phase E: passes over all nets); a
    # net's figure is its fastest, so a burst of load from other processes spoils one of them
    measure_passes: int = 1


def tiny(space: str, baseline_members: tuple, **kw) -> Settings:
    """A smoke-test configuration of the whole pipeline (minutes on 2 cores)."""
    evo = {"population": 12, "parents": 4, "mutations": 4, "crossovers": 4, "iterations": 3, "mutate_prob": 0.3}
    base = dict(
        space=space,
        epochs=2,
        quick=True,
        latency_samples=30,
        rounds=2,
        finetune_epochs=1,
        evo=evo,
        pareto_population=10,
        pareto_generations=3,
        baseline_members=baseline_members,
    )
    return Settings(**(base | kw))


def _supernet_job(
    out: str, space: str, seed: int, epochs: int, sampling: str, subnets: int, distill: bool, quick: bool
) -> dict:
    from frugalml.nas.pipeline import cost_of, tracker
    from frugalml.nas.supernet import SupernetConfig, supernet_training, train_supernet

    done = Path(out) / "result.json"
    if done.exists():
        return read_json(done)
    t = tracker(f"supernet seed {seed}")
    cfg = SupernetConfig(
        space=space,
        sampling=sampling,
        subnets=subnets,
        distill=distill,
        seed=seed,
        quick=quick,
        train=supernet_training(epochs=epochs),
    )
    res = train_supernet(cfg, out, track=False, progress=False)
    res["cost"] = cost_of(t.stop())
    write_json(done, res)
    return res


def _baseline_job(out: str, space: str, name: str, arch: dict, seed: int, epochs: int, quick: bool) -> dict:
    import torch

    from frugalml.models import space as spaces
    from frugalml.nas.pipeline import cost_of, tracker
    from frugalml.train import TrainConfig, fit

    done = Path(out) / "baseline.json"
    if done.exists():
        old = read_json(done)
        if old.get("epochs") != epochs or old.get("arch") != arch:
            raise FrugalError(f"{out} holds a baseline trained with other settings: use another run directory")
        return old
    torch.set_num_threads(1)
    sp = spaces.get(space)
    train, _val, test = sp.dataset(quick=quick)
    t = tracker(f"baseline {name} seed {seed}")
    net = sp.build_subnet(arch, seed=seed)
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=0.003, optimizer="adam", schedule="cosine", seed=seed, threads=1)
    fit(net, train, cfg, out, progress=False, loss_fn=lambda m, x, y: sp.loss(m, x, y)[:2])
    res = {
        "name": name,
        "seed": seed,
        "arch": arch,
        "epochs": epochs,
        "test_accuracy": sp.evaluate(net, test),
        "macs": sp.macs(arch),
        "cost": cost_of(t.stop()),
    }
    write_json(done, res)
    return res


def _search_job(
    run: str,
    latency_run: str,
    seed: int,
    budgets: dict,
    evo: dict,
    pareto_pop: int,
    pareto_gen: int,
    pareto_devices: list,
    random_devices: list,
    finetune_epochs: int = 0,
):
    """Phase C for one supernet: budget searches (budgets: device -> list of ms) and fronts."""
    from frugalml.nas.pipeline import load_context, pareto_step
    from frugalml.nas.supernet import Evaluator

    ctx = load_context(run)
    space, net, _meta, train, val, test = ctx
    ev = Evaluator(space, net, train, val)
    out = {"seed": seed, "searches": [], "random": [], "pareto": {}}
    for device, bs in budgets.items():
        for b in bs:
            r, rr = _one_budget(run, latency_run, seed, device, b, evo, random_devices, finetune_epochs, ctx, ev)
            out["searches"].append(r)
            if rr is not None:
                out["random"].append(rr)
    for device in pareto_devices:
        out["pareto"][device] = pareto_step(
            run,
            device,
            pareto_pop,
            pareto_gen,
            seed=seed,
            evaluator=ev,
            context=ctx,
            latency_run=latency_run,
            measure=False,
        )
    out["evaluator"] = {"evaluations": ev.evaluations, "seconds": ev.seconds}
    return out


def _one_budget(
    run, latency_run, seed, device, budget, evo, random_devices, finetune_epochs, ctx, ev, speed: dict | None = None
) -> tuple[dict, dict | None]:
    """Evolution under one budget, the random-search control with as many distinct sub-networks
    (on `random_devices`) and the optional fine-tune; winners are measured by the caller."""
    from frugalml.nas import search as srch
    from frugalml.nas.pipeline import ScaledPredictor, predictor_for, search_step

    space, net, _meta, train, val, test = ctx
    cfg = srch.EvolutionConfig(seed=seed, **evo)
    before = ev.evaluations
    r = search_step(
        run,
        device,
        budget,
        cfg,
        progress=False,
        evaluator=ev,
        context=ctx,
        latency_run=latency_run,
        measure=False,
        speed_check=speed or 0,
    )
    r["new_evaluations"] = ev.evaluations - before
    r["unique_evaluated"] = _unique_in_search(r)
    if finetune_epochs:
        r["finetune"] = finetune(
            space, net, r["arch"], train, test, finetune_epochs, seed, Path(run) / "finetune" / f"{device}-{budget:g}ms"
        )
    if device not in random_devices:
        return r, None
    pred = predictor_for(space, Path(latency_run), device)
    if speed:
        pred = ScaledPredictor(pred, speed["factor"])
    rr = srch.random_search(space, ev, pred.predict, budget, r["unique_evaluated"], seed=seed)
    sub = space.extract(net, rr["arch"])
    space.prepare(sub, train)
    rr |= {"device": device, "test_accuracy": space.evaluate(sub, test), "macs": space.macs(rr["arch"])}
    return r, rr


def _unmeetable(device, budget, ctx, ev, lrun, speed: dict, why: str) -> dict:
    """The record of a budget no sub-network meets at the machine's current speed: its fastest
    known net stands in (measured like any winner, so it counts against the within-budget figure)."""
    from frugalml.nas import search as srch
    from frugalml.nas.pipeline import ScaledPredictor, predictor_for, score_arch

    space, net, _meta, train, _val, test = ctx
    pred = ScaledPredictor(predictor_for(space, Path(lrun), device), speed["factor"])
    arch = srch.smallest_achievable(space, pred.predict)[1]
    r = score_arch(space, net, train, test, device, arch, pred, measure=False)
    return r | {
        "device": device,
        "budget_ms": budget,
        "accuracy": ev(arch),
        "unmeetable": why,
        "speed_check": speed,
        "unique_evaluated": 0,
        "cost": {"cpu_s": 0.0, "energy_j": 0.0},
    }


def _measure_ms(space, net, arch: dict, device: str, passes: int = 1) -> float:
    """One estimator for winners, controls and baselines alike: the fastest of 8 short rounds per
    pass, the fastest pass; a burst of load has to last through all of them to inflate a figure."""
    from frugalml.nas import latency as lat

    return min(lat.measure(space, net, arch, device, min_run_time=0.4, rounds=8) for _ in range(max(1, passes))) * 1e3


def _budget_searches(s: Settings, out: Path, runs: dict, lrun: str, budgets: dict, searches: list, log) -> None:
    """Phase D: speed check, search and measurement per measured device x budget x seed (serial)."""
    from frugalml.nas.pipeline import checked_speed, load_context, predictor_for
    from frugalml.nas.supernet import Evaluator

    ctxs = {seed: load_context(runs[seed]) for seed in s.seeds}
    evs = {seed: Evaluator(c[0], c[1], c[3], c[4]) for seed, c in ctxs.items()}  # space, net, train, val
    space, net0 = ctxs[s.seeds[0]][:2]
    for device in s.devices:
        pred = predictor_for(space, Path(lrun), device)
        for b in budgets[device]:
            speed = None
            if s.speed_references:
                path = out / "speed" / f"{device}-{b:g}ms.json"
                speed = checked_speed(path, space, net0, lrun, device, b, pred, s.speed_references, s.measure_passes)
            found = []  # (seed, winner, random pick) of this budget
            for res in searches:
                seed = res["seed"]
                ctx, ev = ctxs[seed], evs[seed]
                try:
                    r, rr = _one_budget(
                        runs[seed], lrun, seed, device, b, s.evo, s.random_devices, s.finetune_epochs, ctx, ev, speed
                    )
                except FrugalError as e:
                    if speed is None:
                        raise
                    r, rr = _unmeetable(device, b, ctx, ev, lrun, speed, str(e)), None
                res["searches"].append(r)
                if rr is not None:
                    res["random"].append(rr)
                found.append((seed, r, rr))
            _measure_budget(s, space, ctxs, device, found, speed)
            for seed, r, _rr in found:
                ok = "ok" if r["measured_latency_ms"] <= 1.1 * b else "OVER"
                log(
                    f"D. {device} {b:g} ms seed {seed}: speed {speed['factor'] if speed else 1:.2f}x, predicted "
                    f"{r['predicted_latency_ms']:.3f} ms, measured {r['measured_latency_ms']:.3f} ms {ok}, "
                    f"test {r['test_accuracy']:.3f}" + (" (no sub-network meets it now)" if "unmeetable" in r else "")
                )
    for res in searches:
        ev = evs[res["seed"]]
        res["evaluator"].append({"evaluations": ev.evaluations, "seconds": ev.seconds})


def _measure_budget(s: Settings, space, ctxs: dict, device: str, found: list, speed: dict | None) -> None:
    """Measure one budget's winners and random picks in `s.measure_passes` passes, each followed by
    the speed check's reference nets again: a net's figure is its fastest pass, and the passes are
    spread over tens of seconds, so one of this VM's bursts of slowness (seconds long, up to ~2x)
    spoils a pass rather than a figure. The references' fastest pass gives the speed after."""
    from frugalml.nas import latency as lat

    recs = [(rec, ctxs[seed][1]) for seed, r, rr in found for rec in (r, rr) if rec is not None]
    refs = speed["references"] if speed else []
    now = [None] * len(refs)

    def one_pass():
        for rec, net in recs:
            ms = _measure_ms(space, net, rec["arch"], device)
            rec["measured_latency_ms"] = min(rec.get("measured_latency_ms", ms), ms)
        for i, ref in enumerate(refs):  # as the speed check measured them
            ms = lat.measure(space, ctxs[s.seeds[0]][1], ref["arch"], device) * 1e3
            now[i] = ms if now[i] is None else min(now[i], ms)
        if refs:
            speed["factor_after"] = statistics.median(n / ref["data_ms"] for n, ref in zip(now, refs, strict=True))

    for _ in range(max(1, s.measure_passes)):
        one_pass()
    # The references are the control: if even their fastest pass ran >10% off the speed the search
    # was set for, a slow spell outlasted the passes - wait and add passes (counted in the record)
    extra = 0
    while refs and abs(speed["factor_after"] / speed["factor"] - 1) > SPEED_TOLERANCE and extra < EXTRA_PASSES:
        time.sleep(EXTRA_PASS_WAIT_S)
        one_pass()
        extra += 1
    if speed:
        speed["extra_passes"] = extra


def finetune(space, net, arch: dict, train, test, epochs: int, seed: int, out: Path) -> dict:
    """Train the extracted winner briefly from its supernet weights; accuracy and cost of doing so."""
    import torch

    from frugalml.nas import pipeline
    from frugalml.train import TrainConfig

    done = out / "finetune.json"
    if done.exists():
        return read_json(done)
    torch.set_num_threads(1)
    t = pipeline.tracker("finetune")
    sub = space.extract(net, arch)
    space.prepare(sub, train)
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=1e-3, optimizer="adam", schedule="cosine", seed=seed, threads=1)
    acc = pipeline.finetune(space, sub, train, test, cfg, out)
    res = {"epochs": epochs, "test_accuracy": acc, "cost": pipeline.cost_of(t.stop())}
    write_json(done, res)
    return res


def _family(sp, s: Settings):
    return [(n, a) for n, a in sp.scaling_family() if not s.baseline_members or n in s.baseline_members]


def _unique_in_search(r: dict) -> int:
    c = r["config"]
    return c["population"] + (r["generations"] - 1) * (c["mutations"] + c["crossovers"])


def run(out: str | Path, s: Settings, log=print) -> dict:
    import os

    from frugalml.executor import run_jobs
    from frugalml.models import space as spaces
    from frugalml.nas import latency as lat
    from frugalml.nas.pipeline import latency_step
    from frugalml.nas.supernet import load_supernet

    out = Path(out)
    t_all = time.perf_counter()
    sp = spaces.get(s.space)
    phases = {}  # wall seconds and the machine's 1-minute load average at the end of each phase

    def mark(phase: str, t0: float) -> None:
        phases[phase] = {"wall_s": time.perf_counter() - t0, "loadavg_1min": os.getloadavg()[0]}

    runs = {seed: str(out / f"supernet-s{seed}") for seed in s.seeds}
    # A. training jobs
    t0 = time.perf_counter()
    jobs = [
        dict(
            out=runs[seed],
            space=s.space,
            seed=seed,
            epochs=s.epochs,
            sampling=s.sampling,
            subnets=s.subnets,
            distill=s.distill,
            quick=s.quick,
        )
        for seed in s.seeds
    ]
    supernets = run_jobs(_supernet_job, jobs, workers=s.workers)
    mark("A_supernets", t0)
    log(
        f"A. supernets trained ({time.perf_counter() - t0:.0f} s): "
        + ", ".join(f"seed {r['config']['seed']}: {r['cost']['cpu_s']:.0f} CPU-s" for r in supernets)
    )
    t0 = time.perf_counter()
    bjobs = [
        dict(
            out=str(out / f"baseline-{name}-s{seed}"),
            space=s.space,
            name=name,
            arch=arch,
            seed=seed,
            epochs=s.baseline_epochs or s.epochs,
            quick=s.quick,
        )
        for name, arch in _family(sp, s)
        for seed in s.seeds
    ]
    baselines = run_jobs(_baseline_job, bjobs, workers=s.workers)
    mark("A_baselines", t0)
    log(f"A. {len(baselines)} baseline trainings ({time.perf_counter() - t0:.0f} s)")
    # B. latency data on each measured device, with the first seed's supernet
    lrun = runs[s.seeds[0]]
    latency = {}
    for device in s.devices:
        t0 = time.perf_counter()
        latency[device] = latency_step(
            lrun, device, s.latency_samples, seed=0, rounds=s.rounds, lut=device in s.lut_devices, progress=False
        )
        mark(f"B_latency_{device}", t0)
        m = latency[device]
        log(
            f"B. latency {device} ({time.perf_counter() - t0:.0f} s): noise floor MAPE "
            f"{m['noise_floor']['mape_pct']:.1f}%, MLP MAPE {m['mlp']['mape_pct']:.1f}% tau "
            f"{m['mlp']['kendall_tau']:.2f}, {_lut_text(m)}"
        )
    # budgets: quantiles of the measured latencies of random sub-networks on each device
    budgets = {}
    for device in s.devices:
        lats = sorted(r["latency_ms"] for r in read_json(Path(lrun) / "latency" / f"{device}.json")["records"])
        budgets[device] = [round(q, 3) for q in _budget_points(lats, s)]
    for device in s.modelled:
        space, _net, _ = load_supernet(lrun)
        pred = lat.ModelledLatency(space, device)
        import random

        rng = random.Random(0)
        lats = sorted(pred.predict(space.sample(rng)) for _ in range(200))
        budgets[device] = [float(f"{q:.4g}") for q in _budget_points(lats, s)]
    log(f"   budgets (ms): {budgets}")
    # C. fronts on measured devices and budget searches on modelled ones, one job per (seed, device)
    # so the workers stay busy; each job has its own accuracy cache
    t0 = time.perf_counter()
    sjobs = [
        dict(
            run=runs[seed],
            latency_run=lrun,
            seed=seed,
            budgets={d: budgets[d]} if d in s.modelled else {},
            evo=s.evo,
            pareto_pop=s.pareto_population,
            pareto_gen=s.pareto_generations,
            pareto_devices=[d] if d in s.devices else [],
            random_devices=list(s.random_devices),
            finetune_epochs=s.finetune_epochs,
        )
        for seed in s.seeds
        for d in (*s.devices, *s.modelled)
    ]
    parts = run_jobs(_search_job, sjobs, workers=s.workers)
    searches = []
    for seed in s.seeds:
        mine = [p for p in parts if p["seed"] == seed]
        searches.append(
            {
                "seed": seed,
                "searches": [r for p in mine for r in p["searches"]],
                "random": [r for p in mine for r in p["random"]],
                "pareto": {d: v for p in mine for d, v in p["pareto"].items()},
                "evaluator": [p["evaluator"] for p in mine],
            }
        )
    mark("C_fronts", t0)
    log(f"C. fronts and modelled-device searches ({time.perf_counter() - t0:.0f} s)")
    # D. budget searches on measured devices, each winner measured right after its speed check
    t0 = time.perf_counter()
    _budget_searches(s, out, runs, lrun, budgets, searches, log)
    mark("D_budget_searches", t0)
    log(f"D. budget searches on measured devices ({time.perf_counter() - t0:.0f} s)")
    # E. measurements, serial
    t0 = time.perf_counter()
    base_lat, measure_cost, drift = _measure_all(s, runs, searches)
    mark("E_measure", t0)
    log(f"E. measured fronts and baselines ({time.perf_counter() - t0:.0f} s)")
    payload = analyse(s, supernets, baselines, base_lat, latency, budgets, searches)
    payload["measure_cost"] = measure_cost
    payload["machine_drift"] = drift
    payload["wall_seconds"] = time.perf_counter() - t_all
    payload["phases"] = phases
    payload["settings"] = asdict(s)
    write_json(out / "experiment.json", payload)
    return payload


def _budget_points(lats: list[float], s: Settings) -> list[float]:
    """`s.budget_quantiles` of the sorted latencies at or above `s.budget_floor` x the fastest."""
    above = [x for x in lats if x >= s.budget_floor * lats[0]]
    return [above[int(q * (len(above) - 1))] for q in s.budget_quantiles]


def _measure_all(s: Settings, runs: dict, searches: list) -> tuple[dict, dict]:
    """Measured latency of every front member and baseline member on its device, and of the winners
    of modelled devices or of winners not measured yet (phase D measures its own at once)."""
    from frugalml.models import space as spaces
    from frugalml.nas import latency as lat
    from frugalml.nas.pipeline import cost_of, tracker
    from frugalml.nas.supernet import load_supernet

    t = tracker("measure winners")
    nets = {seed: load_supernet(runs[seed])[1] for seed in s.seeds}
    space = spaces.get(s.space)

    # (record, key, net, arch, device) for every figure, measured in passes over all of them
    items = []
    for res in searches:
        net = nets[res["seed"]]
        for r in res["searches"] + res["random"]:
            if "measured_latency_ms" not in r or lat.is_modelled(r["device"]):
                items.append((r, "measured_latency_ms", net, r["arch"], r["device"]))
        for device, p in res["pareto"].items():
            for m in p["measured_front"]:
                items.append((m, "measured_latency_ms", net, m["arch"], device))
    base_lat = {}
    for name, arch in _family(space, s):
        base_lat[name] = {}
        for d in (*s.devices, *s.modelled):
            items.append((base_lat[name], d, nets[s.seeds[0]], arch, d))
    # reference nets from each device's latency data, measured again among the others: if the
    # machine runs at another speed than when the data (and so the budgets) were taken, it shows
    refs = {}
    for d in s.devices:
        recs = sorted(
            read_json(Path(runs[s.seeds[0]]) / "latency" / f"{d}.json")["records"], key=lambda r: r["latency_ms"]
        )
        pick = sorted({round(i * (len(recs) - 1) / (DRIFT_REFERENCES - 1)) for i in range(DRIFT_REFERENCES)})
        refs[d] = [{"then_ms": recs[i]["latency_ms"]} for i in pick]
        items += [(r, "now_ms", nets[s.seeds[0]], recs[i]["arch"], d) for r, i in zip(refs[d], pick, strict=True)]
    for i in range(max(1, s.measure_passes)):
        for record, key, net, arch, device in items:
            ms = _measure_ms(space, net, arch, device)
            record[key] = ms if i == 0 else min(record[key], ms)
    drift = {
        d: {"ratio_median": statistics.median(r["now_ms"] / r["then_ms"] for r in rs), "references": rs}
        for d, rs in refs.items()
    }
    return base_lat, cost_of(t.stop()), drift


def remeasure(out: str | Path, measure_passes: int | None = None) -> dict:
    """Measure phase E again (e.g. after changing the estimator, or with `measure_passes` passes) and reanalyse;
    the winners of measured devices keep the figures taken right after their speed checks."""
    out = Path(out)
    p = read_json(out / "experiment.json")
    if measure_passes is not None:
        p["settings"]["measure_passes"] = measure_passes
    s = Settings(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in p["settings"].items()})
    runs = {seed: str(out / f"supernet-s{seed}") for seed in s.seeds}
    base_lat, cost, drift = _measure_all(s, runs, p["searches"])
    for n in p["baseline"]:
        p["baseline"][n]["latency_ms"] = base_lat[n]
    p["measure_cost"] = cost
    p["machine_drift"] = drift
    write_json(out / "experiment.json", p)
    return reanalyse(out)


def _interp(points: list[tuple[float, float]], x: float) -> tuple[float | None, str]:
    """Accuracy of the baseline's latency/accuracy front at latency x (piecewise linear)."""
    front = []
    for lt, acc in sorted(points):
        if not front or acc > front[-1][1]:
            front.append((lt, acc))
    if x < front[0][0]:
        return None, "faster than every baseline member"
    if x >= front[-1][0]:
        return front[-1][1], "at or above the slowest useful baseline member"
    for (x0, y0), (x1, y1) in zip(front, front[1:], strict=False):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0), "interpolated"
    return front[-1][1], "interpolated"


def _whole_training_cost(sn: dict) -> dict:
    """A resumed training measured only its last epochs: scale to all epochs (and say so)."""
    c = dict(sn["cost"])
    done = sn["resumed_from_epoch"]
    cfg = sn["config"]
    epochs = cfg["train"]["epochs"] if "train" in cfg else cfg["epochs"]  # SupernetConfig nests its TrainConfig
    if done:
        f = epochs / (epochs - done)
        c = {k: (v * f if isinstance(v, float) else v) for k, v in c.items()}
        c["note"] = f"measured over the last {epochs - done} of {epochs} epochs (run was resumed), scaled x{f:.3g}"
    return c


def reanalyse(out: str | Path) -> dict:
    """Recompute `analyse` from a finished run's files (e.g. after changing the analysis)."""
    out = Path(out)
    p = read_json(out / "experiment.json")
    s = Settings(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in p["settings"].items()})
    supernets = [read_json(out / f"supernet-s{seed}" / "result.json") for seed in s.seeds]
    names = list(p["baseline"])
    baselines = [read_json(out / f"baseline-{n}-s{seed}" / "baseline.json") for n in names for seed in s.seeds]
    base_lat = {n: p["baseline"][n]["latency_ms"] for n in names}
    q = analyse(s, supernets, baselines, base_lat, p["latency"], p["budgets"], p["searches"])
    for k in ("measure_cost", "machine_drift", "wall_seconds", "settings", "phases"):
        if k in p:
            q[k] = p[k]
    write_json(out / "experiment.json", q)
    return q


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def analyse(s: Settings, supernets, baselines, base_lat, latency, budgets, searches) -> dict:

    # baseline: mean test accuracy over seeds per member
    members = {}
    for b in baselines:
        members.setdefault(b["name"], []).append(b["test_accuracy"])
    base = {
        n: {
            "test_accuracy_mean": statistics.mean(v),
            "test_accuracy_spread": max(v) - min(v),
            "latency_ms": base_lat[n],
            "macs": next(b["macs"] for b in baselines if b["name"] == n),
        }
        for n, v in members.items()
    }
    rows, within = [], []
    for res in searches:
        randoms = {(rr["device"], rr["budget"]): rr for rr in res["random"]}
        for r in res["searches"]:
            d = r["device"]
            rr = randoms.get((d, r["budget_ms"]), {})
            speed = r.get("speed_check") or {}
            pts = [(base[n]["latency_ms"][d], base[n]["test_accuracy_mean"]) for n in base]
            b_acc, how = _interp(pts, r["measured_latency_ms"])
            ok = r["measured_latency_ms"] <= 1.1 * r["budget_ms"]
            within.append(ok)
            rows.append(
                {
                    "seed": res["seed"],
                    "device": d,
                    "budget_ms": r["budget_ms"],
                    "predicted_ms": r["predicted_latency_ms"],
                    "measured_ms": r["measured_latency_ms"],
                    "within_10pct": ok,
                    "test_accuracy": r["test_accuracy"],
                    "val_accuracy": r["accuracy"],
                    "baseline_accuracy_at_latency": b_acc,
                    "baseline_how": how,
                    "random_test_accuracy": rr.get("test_accuracy"),
                    "random_measured_ms": rr.get("measured_latency_ms"),
                    "finetuned_test_accuracy": r.get("finetune", {}).get("test_accuracy"),
                    "finetune_cpu_s": r.get("finetune", {}).get("cost", {}).get("cpu_s"),
                    "macs": r["macs"],
                    "evaluations": r["unique_evaluated"],
                    "search_cpu_s": r["cost"]["cpu_s"],
                    "search_energy_j": r["cost"]["energy_j"],
                    "speed_factor": speed.get("factor"),
                    "speed_factor_after": speed.get("factor_after"),
                    "extra_measure_passes": speed.get("extra_passes"),
                    "speed_check_cpu_s": speed.get("cost", {}).get("cpu_s", 0.0),
                    "speed_check_energy_j": speed.get("cost", {}).get("energy_j", 0.0),
                    "unmeetable": r.get("unmeetable"),
                    "arch": r["arch"],
                }
            )
    comparable = [r for r in rows if r["baseline_accuracy_at_latency"] is not None]
    per_device = {}
    for d in {r["device"] for r in rows}:
        rs = [r for r in comparable if r["device"] == d]
        allr = [r for r in rows if r["device"] == d]
        per_device[d] = {
            "within_budget_fraction": sum(r["within_10pct"] for r in allr) / len(allr),
            "within_budget": sum(r["within_10pct"] for r in allr),
            "worst_measured_over_budget": max(r["measured_ms"] / r["budget_ms"] for r in allr),
            "speed_factors": [min(f), max(f)]
            if (f := [r["speed_factor"] for r in allr if r["speed_factor"]])
            else None,
            "searched_mean_accuracy": statistics.mean(r["test_accuracy"] for r in rs) if rs else None,
            "baseline_mean_accuracy": statistics.mean(r["baseline_accuracy_at_latency"] for r in rs) if rs else None,
            "random_mean_accuracy": _mean([r["random_test_accuracy"] for r in allr]),
            "finetuned_mean_accuracy": _mean([r["finetuned_test_accuracy"] for r in rs]),
            "searched_accuracy_per_seed": {
                seed: _mean([r["test_accuracy"] for r in rs if r["seed"] == seed]) for seed in s.seeds
            },
            "finetuned_accuracy_per_seed": {
                seed: _mean([r["finetuned_test_accuracy"] for r in rs if r["seed"] == seed]) for seed in s.seeds
            },
            "searched_mean_accuracy_all": statistics.mean(r["test_accuracy"] for r in allr),
            "comparable": len(rs),
            "n": len(allr),
        }
    hv = {}
    for res in searches:
        for d, p in res["pareto"].items():
            hv.setdefault(d, []).append({"seed": res["seed"], **p["hypervolume"], "evaluations": p["evaluations"]})
    # cost accounting (CPU-seconds and modelled energy of this process)
    train_cost = [_whole_training_cost(sn) for sn in supernets]
    base_cpu = statistics.mean(b["cost"]["cpu_s"] for b in baselines)
    base_j = statistics.mean(b["cost"]["energy_j"] for b in baselines)
    costs = {
        "supernet_training": train_cost,
        "latency": {d: latency[d]["cost"] for d in latency},
        "from_scratch_one_candidate_mean": {
            "cpu_s": base_cpu,
            "energy_j": base_j,
            "note": "mean of the scaling-baseline trainings",
        },
    }
    per_target = {}
    sn0 = train_cost[0]
    for d in budgets:
        srows = [r for r in rows if r["device"] == d and r["seed"] == s.seeds[0]]
        # a speed check serves every seed's search of its budget: counted once, with the first seed
        search_cpu = sum(r["search_cpu_s"] + r["speed_check_cpu_s"] for r in srows)
        search_j = sum(r["search_energy_j"] + r["speed_check_energy_j"] for r in srows)
        lat_cpu = latency[d]["cost"]["cpu_s"] if d in latency else 0.0
        lat_j = latency[d]["cost"]["energy_j"] if d in latency else 0.0
        n_cand = sum(r["evaluations"] for r in srows)
        ft_cpu = sum(r["finetune_cpu_s"] or 0.0 for r in srows)
        per_target[d] = {
            "added_cpu_s": lat_cpu + search_cpu,
            "added_energy_j": lat_j + search_j,
            "finetune_cpu_s": ft_cpu,
            "finetune_note": "fine-tuning the winners, not in added_cpu_s",
            "latency_cpu_s": lat_cpu,
            "search_cpu_s": search_cpu,
            "candidates_evaluated": n_cand,
            "from_scratch_cpu_s": n_cand * base_cpu,
            "from_scratch_energy_j": n_cand * base_j,
            "saving_ratio_added": n_cand * base_cpu / max(lat_cpu + search_cpu, 1e-9),
        }
    total_ours = sn0["cpu_s"] + sum(v["added_cpu_s"] for v in per_target.values())
    total_scratch = sum(v["from_scratch_cpu_s"] for v in per_target.values())
    costs["per_target"] = per_target
    costs["all_targets"] = {
        "ours_cpu_s": total_ours,
        "from_scratch_cpu_s": total_scratch,
        "saving_ratio": total_scratch / total_ours,
        "one_time_cpu_s": sn0["cpu_s"],
    }
    return {
        "baseline": base,
        "rows": rows,
        "per_device": per_device,
        "hypervolume": hv,
        "costs": costs,
        "latency": latency,
        "budgets": budgets,
        "searches": searches,
        "supernets": supernets,
    }


# ---- reporting (shared by the benchmarks) ----------------------------------------------


def plots(p: dict, name: str, results: Path, metric: str = "test accuracy") -> list[str]:
    """Accuracy vs measured latency per device, and predicted vs measured latency; PNG paths."""
    from frugalml.nas import latency as lat
    from frugalml.report.plots import pyplot, save_figure

    plt = pyplot()
    files = []
    devices = list(p["budgets"])
    fig, axes = plt.subplots(1, len(devices), figsize=(5 * len(devices), 4), squeeze=False)
    axes = axes[0]
    for ax, d in zip(axes, devices, strict=True):
        base = sorted((b["latency_ms"][d], b["test_accuracy_mean"], n) for n, b in p["baseline"].items())
        ax.plot([b[0] for b in base], [b[1] for b in base], "s--", color="grey", label="scaling baseline (scratch)")
        for res in p["searches"]:
            if d not in res["pareto"]:
                continue
            m = res["pareto"][d]["measured_front"]
            ax.plot(
                [x["measured_latency_ms"] for x in m],
                [x["test_accuracy"] for x in m],
                "o-",
                alpha=0.6,
                label=f"NSGA-II front seed {res['seed']}",
            )
        rows = [r for r in p["rows"] if r["device"] == d]
        ax.scatter(
            [r["measured_ms"] for r in rows],
            [r["test_accuracy"] for r in rows],
            marker="*",
            s=120,
            color="red",
            zorder=3,
            label="evolution winners",
        )
        ft = [r for r in rows if r.get("finetuned_test_accuracy") is not None]
        if ft:
            ax.scatter(
                [r["measured_ms"] for r in ft],
                [r["finetuned_test_accuracy"] for r in ft],
                marker="*",
                s=120,
                facecolors="none",
                edgecolors="green",
                zorder=3,
                label="winners fine-tuned",
            )
        rr = [r for r in rows if r["random_measured_ms"] is not None]
        ax.scatter(
            [r["random_measured_ms"] for r in rr],
            [r["random_test_accuracy"] for r in rr],
            marker="x",
            color="black",
            zorder=3,
            label="random search (same evaluations)",
        )
        for b in p["budgets"][d]:
            ax.axvline(b, color="red", alpha=0.15)
        modelled = " (modelled)" if lat.is_modelled(d) else " (measured)"
        ax.set(title=f"{d}{modelled}", xlabel="latency ms (batch 1)", ylabel=metric)
        ax.legend(fontsize=7)
    fig.tight_layout()
    files.append(str(save_figure(fig, results / f"{name}_accuracy_latency.png")))
    fig, axes = plt.subplots(1, len(p["latency"]), figsize=(5 * len(p["latency"]), 4), squeeze=False)
    axes = axes[0]
    for ax, (d, m) in zip(axes, p["latency"].items(), strict=True):
        for k, mark in (("mlp", "o"), ("lut", "^")):
            if k in m:
                t, pr = zip(*m[k]["scatter"], strict=True)
                ax.scatter(t, pr, marker=mark, alpha=0.6, label=f"{k}: MAPE {m[k]['mape_pct']:.1f}%")
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], "k:")
        ax.set(
            title=f"{d}: noise floor MAPE {m['noise_floor']['mape_pct']:.1f}%",
            xlabel="measured ms",
            ylabel="predicted ms",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(str(save_figure(fig, results / f"{name}_latency_predictor.png")))
    return files


def bench_main(name: str, full: Settings, tiny: Settings, note: str, metric: str = "test accuracy") -> None:
    """Command line of a `benchmarks/bench_nas_<space>.py`: run (or resume / reanalyse), plot, save, summarise."""
    import argparse

    from frugalml.report.bench import RESULTS, save_result

    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="Smoke run with a tiny configuration.")
    ap.add_argument("--out", default=None)
    ap.add_argument("--reanalyse", action="store_true", help="Recompute the analysis from a finished run's files.")
    ap.add_argument("--remeasure", action="store_true", help="Measure winners/baselines again, then reanalyse.")
    ap.add_argument(
        "--sampling",
        choices=("uniform", "sandwich", "progressive"),
        default=None,
        help="Supernet schedule instead of the benchmark's own; the results file and run directory get its name.",
    )
    ap.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="Supernet epochs instead of the benchmark's own (the scaling baseline keeps the benchmark's own).",
    )
    args = ap.parse_args()
    s, name = (tiny, f"{name}_tiny") if args.tiny else (full, name)
    if args.sampling not in (None, s.sampling):
        s, name = replace(s, sampling=args.sampling), f"{name}_{args.sampling}"
    if args.epochs not in (None, s.epochs):  # the baseline keeps the benchmark's own epochs
        s = replace(s, epochs=args.epochs, baseline_epochs=s.baseline_epochs or s.epochs)
        name = f"{name}_e{args.epochs}"
    out = Path(args.out or f"runs/bench-{name.replace('_', '-')}")
    t0 = time.time()
    if args.remeasure:
        p = remeasure(out, measure_passes=s.measure_passes)
    elif args.reanalyse:
        p = reanalyse(out)
    else:
        p = run(out, s, log=lambda m: print(m, flush=True))
    RESULTS.mkdir(parents=True, exist_ok=True)
    files = plots(p, name, RESULTS, metric)
    slim = {k: v for k, v in p.items() if k not in ("searches",)}
    for d in slim["latency"].values():
        for k in ("mlp", "lut"):
            if k in d:
                d[k]["scatter_n"] = len(d[k].pop("scatter"))
    slim["pareto"] = [
        {
            "seed": r["seed"],
            "device": d,
            "measured_front": pr["measured_front"],
            "hypervolume": pr["hypervolume"],
            "front_size": len(pr["front"]),
            "random_front_size": len(pr["random_front"]),
        }
        for r in p["searches"]
        for d, pr in r["pareto"].items()
    ]
    slim["plots"] = files
    slim["metric"] = metric
    slim["note"] = note
    if s.sampling != full.sampling or s.baseline_epochs:
        slim["note"] += (
            f" This run departs from the benchmark's own schedule: supernets {s.sampling}, {s.epochs} epochs; "
            f"the scaling baseline trained {s.baseline_epochs or s.epochs} epochs."
        )
    path = save_result(name, slim)
    print(f"saved {path} in {time.time() - t0:.0f} s")
    print_summary(p)


def _lut_text(m: dict) -> str:
    """The lookup table's figures, or why there are none (it is built only for `lut_devices`)."""
    if "lut" not in m:
        return "LUT not built for this device"
    return f"LUT MAPE {m['lut']['mape_pct']:.1f}% tau {m['lut']['kendall_tau']:.2f}"


def print_summary(p: dict) -> None:
    for d, m in p["latency"].items():
        nf = m["noise_floor"]
        print(
            f"{d}: noise floor MAPE {nf['mape_pct']:.1f}% | MLP RMSE {m['mlp']['rmse_ms']:.3f} ms MAPE "
            f"{m['mlp']['mape_pct']:.1f}% tau {m['mlp']['kendall_tau']:.2f} | {_lut_text(m)}"
        )
    for d, v in p["per_device"].items():
        f = [r["speed_factor"] for r in p["rows"] if r["device"] == d and r.get("speed_factor")]
        at = f" (speed checks {min(f):.2f}x-{max(f):.2f}x the predictor)" if f else ""
        print(
            f"{d}: within budget {100 * v['within_budget_fraction']:.0f}%{at} | searched "
            f"{v['searched_mean_accuracy']} vs baseline {v['baseline_mean_accuracy']} "
            f"({v['comparable']}/{v['n']} comparable) | random {v['random_mean_accuracy']} | fine-tuned "
            f"{v.get('finetuned_mean_accuracy')} | per seed "
            f"{v.get('searched_accuracy_per_seed')}"
        )
    for d, v in p.get("machine_drift", {}).items():
        r = v["ratio_median"]
        warn = abs(r - 1) > DRIFT_WARN
        print(
            f"{d}: reference nets now run {r:.2f}x their latency-data figures"
            + (
                " - WARNING: the machine changed speed since the latency data was taken; baselines and "
                "fronts were measured at another speed than the budgets were set at"
                if warn
                else ""
            )
        )
    for d, hs in p["hypervolume"].items():
        print(
            f"{d}: hypervolume "
            + ", ".join(f"seed {h['seed']}: NSGA-II {h['nsga2']:.4f} vs random {h['random']:.4f}" for h in hs)
        )
    c = p["costs"]
    for d, v in c["per_target"].items():
        print(
            f"{d}: added {v['added_cpu_s']:.0f} CPU-s vs {v['from_scratch_cpu_s']:.0f} CPU-s training "
            f"{v['candidates_evaluated']} candidates from scratch: {v['saving_ratio_added']:.0f}x"
        )
    a = c["all_targets"]
    print(
        f"all targets: ours {a['ours_cpu_s']:.0f} CPU-s (one-time {a['one_time_cpu_s']:.0f}) vs from scratch "
        f"{a['from_scratch_cpu_s']:.0f} CPU-s: {a['saving_ratio']:.0f}x"
    )
