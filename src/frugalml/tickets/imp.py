"""Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020).

A run directory holds every level of every seed, each resumable on its own:

    OUT/config.json                      the resolved TicketConfig (no hidden defaults)
    OUT/level_L/seed_S/ticket.json       what this ticket is (model, data, level, rewind point)
    OUT/level_L/seed_S/mask.safetensors  which weights survive at this level
    OUT/level_L/seed_S/rewind.safetensors  weights at the rewind point (before masking)
    OUT/level_L/seed_S/train/            the `train.fit` run (checkpoint per epoch)
    OUT/level_L/seed_S/weights.safetensors, metrics.json, cost.json
    OUT/level_L/seed_S/controls/{reinit,random}/   the controls of this level
    OUT/result.json, OUT/accuracy_vs_remaining.png

Each level trains the full schedule from the rewind weights with a fresh optimizer
(open_lth instead continues the schedule from the rewind step; at rewind points of a few
percent of training the difference is small, and it keeps every level the same budget).
Other `retrain` modes keep the previous level's trained weights: `finetune` trains them the
same epochs at the schedule's final LR, `lr-rewind` replays the full schedule from its first
step (learning-rate rewinding, Renda, Frankle & Carbin 2020).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import torch

from frugalml.errors import FrugalError
from frugalml.files import CONFIG, atomic_save, open_run, read_json, write_json
from frugalml.report.plots import save_figure
from frugalml.tickets import tasks
from frugalml.tickets.config import CONTROLS, TicketConfig, parse_rewind
from frugalml.tickets.masks import Mask, MaskEnforcer, prune_magnitude, random_like

STRUCTURE = "structure.json"  # structured runs: the channels removed so far, {root layer: [indices]}
MASK, REWIND, WEIGHTS, METRICS, COST, TICKET = (
    "mask.safetensors",
    "rewind.safetensors",
    "weights.safetensors",
    "metrics.json",
    "cost.json",
    "ticket.json",
)
PLOT = "accuracy_vs_remaining.png"
__all__ = ["CONTROLS", "TicketConfig", "parse_rewind", "find", "summarize", "level_dir", "load_ticket"]


def level_dir(out: Path, level: int, seed: int) -> Path:
    return Path(out) / f"level_{level}" / f"seed_{seed}"


def build_model(model: str, input_shape, num_classes: int, init_seed: int):
    """The network for a task, initialised from `init_seed` (fit seeds only the data order)."""
    from frugalml import models

    torch.manual_seed(init_seed)
    return models.for_data(model, SimpleNamespace(input_shape=tuple(input_shape), num_classes=num_classes))


def _copy(src: Path, dst: Path) -> None:
    data = Path(src).read_bytes()
    atomic_save(dst, lambda f: f.write(data))


class _Hooks:
    """Enforce the mask every step; at level 0 also save the weights at the rewind iteration."""

    def __init__(self, enforcer: MaskEnforcer, rewind_at: int | None = None, rewind_path: Path | None = None):
        self.enforcer, self.rewind_at, self.rewind_path = enforcer, rewind_at, rewind_path

    def __call__(self, model, optimizer, iteration: int) -> None:
        self.enforcer(model, optimizer, iteration)
        if self.rewind_at is not None and iteration == self.rewind_at:
            from frugalml.train import save_weights

            save_weights(model, self.rewind_path)  # before the epoch's checkpoint, so resume never misses it


def final_accuracy(res) -> float:
    return float(res.final["test_accuracy"]) if res.history else float("nan")


def train_masked(
    model, ds, cfg: TicketConfig, seed: int, mask: Mask, run: Path, progress, description, full=None, train=None, **kw
):
    """`fit` the masked `model` with the ticket's schedule (or `train`) and data-order `seed`, the mask
    enforced every step; `full` (structured runs) masks every parameter, biases and norm affines included."""
    from frugalml.train import fit

    if full is None:
        mask.apply(model)
        hooks = _Hooks(MaskEnforcer(model, mask), **kw)
    else:
        from frugalml.tickets import structured

        structured.apply_mask(model, full)
        hooks = _Hooks(structured.enforcer(model, full), **kw)
    tc = replace(train or cfg.train, seed=seed)
    return fit(model, ds, tc, run, on_step=hooks, progress=progress, description=description)


def run_seed(out: str, config: dict, seed: int, progress: bool | None = None, threads: int | None = None) -> list[dict]:
    """All IMP levels of one seed: train, prune, rewind; each level resumes on its own."""
    from frugalml.cost.counting import profile
    from frugalml.train import load_weights, save_weights

    if threads:
        torch.set_num_threads(threads)
    cfg = TicketConfig.from_dict(config).validate()
    ds = tasks.load(cfg.data)
    k = cfg.rewind_iteration(len(ds.y_train))
    out = Path(out)
    rows = []
    for level in range(cfg.levels + 1):
        d = level_dir(out, level, seed)
        if (d / METRICS).exists():
            rows.append(read_json(d / METRICS))
            continue
        model = build_model(cfg.model, ds.input_shape, ds.num_classes, init_seed=seed)
        hook_kw, train = {}, None
        if level == 0:
            mask = Mask.ones(model)
            mask.save(d / MASK)
            if cfg.structure != "none":
                write_json(d / STRUCTURE, {})
            if k == 0:
                save_weights(model, d / REWIND)
            else:
                hook_kw = {"rewind_at": k, "rewind_path": d / REWIND}
        else:
            mask = Mask.load(d / MASK, model)
            # rewind: weights of the rewind point; finetune and lr-rewind: the previous level's trained weights
            load_weights(model, level_dir(out, level - 1, seed) / WEIGHTS if cfg.keeps_weights() else d / REWIND)
            train = cfg.finetune_training() if cfg.retrain == "finetune" else None  # lr-rewind: the full schedule
        full = _full_mask(model, cfg, d, ds)
        desc = f"level {level} seed {seed}"
        res = train_masked(model, ds, cfg, seed, mask, d / "train", progress, desc, full, train, **hook_kw)
        save_weights(model, d / WEIGHTS)
        prof = profile(model, ds.x_train[:1])
        write_json(d / COST, prof.cost().to_dict())
        if level < cfg.levels:
            nd = level_dir(out, level + 1, seed)
            _prune_next(model, mask, cfg, d, nd, ds)
            _copy(d / REWIND, nd / REWIND)
        write_json(
            d / TICKET,
            {
                "kind": "frugalml.ticket",
                "level": level,
                "seed": seed,
                "remaining": mask.remaining(),
                "rewind_iteration": k,
                "model": cfg.model,
                "data": cfg.data,
                "input_shape": list(ds.input_shape),
                "num_classes": ds.num_classes,
                "config": cfg.to_dict(),
            },
        )
        row = {
            "level": level,
            "seed": seed,
            "remaining": mask.remaining(),
            "density": mask.density(),
            "accuracy": final_accuracy(res),
            "macs_effective": prof.macs_effective,
            "macs": prof.macs,
            "nonzero_params": prof.nonzero_params,
            "params": prof.params,
            "seconds": res.seconds,
            "resumed_from_epoch": res.resumed_from_epoch,
            "history": res.history,
        }
        write_json(d / METRICS, row)  # last: its presence marks the level done
        rows.append(row)
    return rows


def _full_mask(model, cfg: TicketConfig, d: Path, ds) -> dict | None:
    """A structured level's mask over every parameter (from its plan), or None for an unstructured run."""
    if cfg.structure == "none":
        return None
    from frugalml.tickets import structured

    return structured.param_mask(model, ds.x_train[:2], read_json(d / STRUCTURE))


def _prune_next(model, mask: Mask, cfg: TicketConfig, d: Path, nd: Path, ds) -> None:
    """Write the next level's mask (and, structured, its plan) from the trained `model`."""
    if cfg.structure == "none":
        prune_magnitude(model, mask, cfg.rate, cfg.strategy, cfg.output_rate).save(nd / MASK)
        return
    from frugalml.tickets import structured

    example = ds.x_train[:2]
    plan = structured.prune_structures(model, example, read_json(d / STRUCTURE), cfg.rate, cfg.strategy, cfg.structure)
    structured.weight_mask(model, structured.param_mask(model, example, plan)).save(nd / MASK)
    write_json(nd / STRUCTURE, plan)  # after the mask: a level with a plan has its mask


def _control_mask(model, cfg: TicketConfig, src: Path, d: Path, ds, random_seed: int | None) -> dict | None:
    """A structured control's full mask: the ticket's plan (reinit), or as many random units per layer (random)."""
    if cfg.structure == "none":
        return None
    from frugalml.tickets import structured

    plan = read_json(src / STRUCTURE)
    if random_seed is not None:
        plan = structured.random_plan(model, ds.x_train[:2], plan, random_seed, cfg.structure)
        write_json(d / STRUCTURE, plan)
    return structured.param_mask(model, ds.x_train[:2], plan)


def control_seed(seed: int, level: int, kind: str) -> int:
    """Seed of a control's random draw (new init or random mask), distinct per seed and level."""
    return {"reinit": 1_000_000, "random": 2_000_000}[kind] + 1000 * seed + level


def run_control(
    out: str, config: dict, seed: int, level: int, kind: str, progress: bool | None = None, threads: int | None = None
) -> dict:
    """One control at one level: `reinit` (same mask, new weights) or `random` (random mask, same weights)."""
    from frugalml.train import load_weights

    if threads:
        torch.set_num_threads(threads)
    cfg = TicketConfig.from_dict(config).validate()
    ds = tasks.load(cfg.data)
    src = level_dir(out, level, seed)
    d = src / "controls" / kind
    if (d / METRICS).exists():
        return read_json(d / METRICS)
    if kind == "reinit":
        model = build_model(cfg.model, ds.input_shape, ds.num_classes, init_seed=control_seed(seed, level, kind))
        mask = Mask.load(src / MASK, model)
    elif kind == "random":
        model = build_model(cfg.model, ds.input_shape, ds.num_classes, init_seed=seed)
        load_weights(model, src / REWIND)
        mask = random_like(Mask.load(src / MASK, model), control_seed(seed, level, kind))
    else:
        raise FrugalError(f"unknown control '{kind}' (known: {', '.join(CONTROLS)})")
    full = _control_mask(model, cfg, src, d, ds, control_seed(seed, level, kind) if kind == "random" else None)
    if full is not None:
        from frugalml.tickets import structured

        mask = structured.weight_mask(model, full)
    if kind == "random":
        mask.save(d / MASK)
    res = train_masked(model, ds, cfg, seed, mask, d / "train", progress, f"{kind} level {level} seed {seed}", full)
    row = {
        "level": level,
        "seed": seed,
        "control": kind,
        "remaining": mask.remaining(),
        "accuracy": final_accuracy(res),
        "seconds": res.seconds,
        "history": res.history,
    }
    write_json(d / METRICS, row)
    return row


def stats(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "per_seed": values,
    }


def check(cfg: TicketConfig) -> TicketConfig:
    """Every check `find` makes before it writes: the config, the task spec, and that the model
    builds for the task (the task is cached, so `find` does not load it twice)."""
    cfg.validate()
    ds = tasks.load(cfg.data)
    model = build_model(cfg.model, ds.input_shape, ds.num_classes, init_seed=cfg.first_seed)
    tasks.check_model(model, ds, cfg.model)
    return cfg


def find(cfg: TicketConfig, out: str | Path, workers: int = 1, progress: bool | None = None, executor=None) -> dict:
    """Run (or resume) IMP for every seed, then the controls at every pruned level.

    `executor` (`executor.parse_executor`; default `workers` local processes, or FRUGAL_EXECUTOR)
    runs the seeds, then the controls; in parallel, one progress line counts the jobs."""
    from frugalml.cost.tracker import Ledger
    from frugalml.executor import parse_executor, run_jobs
    from frugalml.report.progress import progress as progress_line

    check(cfg)
    ex = parse_executor(executor if executor is not None else (workers if workers > 1 else None))
    out = open_run(out, cfg, what="ticket run")
    threads = 1 if ex.parallel else None
    prog = False if ex.parallel else progress
    base = {"out": str(out), "config": cfg.to_dict(), "progress": prog, "threads": threads}
    seeds = cfg.seed_list()
    controls = [
        base | {"seed": s, "level": lv, "kind": c}
        for lv in range(1, cfg.levels + 1)
        for s in seeds
        for c in cfg.controls
    ]
    with Ledger(out, children=True, label="tickets.find") as ledger:
        with progress_line(
            len(seeds) + len(controls), f"tickets find ({ex})", progress if ex.parallel else False
        ) as advance:
            kw = {"root": out, "ledger": ledger, "advance": advance}
            run_jobs(run_seed, [base | {"seed": s} for s in seeds], ex, **kw)
            run_jobs(run_control, controls, ex, **kw)
        result = summarize(out)
        write_json(out / "result.json", result)
        plot_find(result, out / PLOT)
    write_find_record(out, result, ledger.total())
    result["plot"] = str(out / PLOT)
    return result


def metric_of(stat: dict | None, seeds: list[int]) -> dict:
    """A `stats` entry as a record metric: per-seed values (with their seeds when none is missing)."""
    from frugalml.report import record

    if stat is None:
        return {"value": None}
    values = stat["per_seed"]
    return record.metric(values, seeds=seeds if len(values) == len(seeds) else None)


def level_cost(level: dict) -> dict:
    """Per-inference cost of one level's tickets (mean over seeds), as a record `Cost` dict."""
    return {
        "params": level.get("params"),
        "nonzero_params": level["nonzero_params"],
        "macs": level["macs"],
        "macs_effective": level["macs_effective"],
        "notes": {
            "nonzero_params": "counted: weights kept by the mask, mean over seeds",
            "macs": "counted: one forward pass of one example",
            "macs_effective": "counted: MACs whose weight is nonzero, mean over seeds",
        },
    }


def find_points(result: dict) -> list[dict]:
    """One point per level (level 0 is the dense net): accuracies of the ticket and its controls, and cost."""
    seeds = result["seeds"]
    points = []
    for lv in result["levels"]:
        quality = {"accuracy": metric_of(lv["accuracy"], seeds)}
        for kind in CONTROLS:
            if lv.get(f"{kind}_accuracy"):
                name = "random_pruning_accuracy" if kind == "random" else f"{kind}_accuracy"
                quality[name] = metric_of(lv[f"{kind}_accuracy"], seeds)
        label = "dense" if lv["level"] == 0 else f"level {lv['level']}: {100 * lv['remaining']:.3g}%"
        points.append({"label": label, "quality": quality, "cost": level_cost(lv)})
    return points


def write_find_record(out: Path, result: dict, spent: dict) -> Path:
    """`record.json` of a ticket run: final-level accuracy per seed, dense -> final ticket, every level a point."""
    from frugalml.report import record

    cfg, levels = result["config"], result["levels"]
    final = levels[-1]
    first = result["seeds"][0]
    rec = record.build(
        "tickets.find",
        quality={"accuracy": metric_of(final["accuracy"], result["seeds"])},
        config=cfg,
        data=cfg["data"],
        model=cfg["model"],
        before=level_cost(levels[0]),
        after=level_cost(final),
        spent=spent,
        points=find_points(result),
        artifacts={
            "result": "result.json",
            "plot": PLOT,
            "config": CONFIG,
            "spent": "spent.json",
            "ticket": f"level_{final['level']}",
            "weights": f"level_{final['level']}/seed_{first}/{WEIGHTS}",
        },
    )
    return record.write(out, rec)


def summarize(out: str | Path) -> dict:
    out = Path(out)
    cfg = TicketConfig.from_dict(read_json(out / CONFIG), str(out / CONFIG))
    levels = []
    for level in range(cfg.levels + 1):
        rows = [read_json(level_dir(out, level, s) / METRICS) for s in cfg.seed_list()]
        entry = {
            "level": level,
            "remaining": statistics.fmean(r["remaining"] for r in rows),
            "accuracy": stats([r["accuracy"] for r in rows]),
            "macs_effective": round(statistics.fmean(r["macs_effective"] for r in rows)),
            "macs": rows[0]["macs"],
            "params": rows[0].get("params"),
            "nonzero_params": round(statistics.fmean(r["nonzero_params"] for r in rows)),
        }
        for kind in CONTROLS:
            paths = [level_dir(out, level, s) / "controls" / kind / METRICS for s in cfg.seed_list()]
            found = [read_json(p)["accuracy"] for p in paths if p.exists()]
            entry[f"{kind}_accuracy"] = stats(found) if level > 0 else None
        levels.append(entry)
    dense = levels[0]["accuracy"]
    return {
        "run_dir": str(out),
        "config": cfg.to_dict(),
        "seeds": cfg.seed_list(),
        "dense_accuracy": dense,
        "levels": levels,
    }


def plot_find(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = result["levels"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x = [100 * lv["remaining"] for lv in levels]
    for key, label, style in (
        ("accuracy", "ticket (IMP)", "o-"),
        ("reinit_accuracy", "random reinit", "s--"),
        ("random_accuracy", "random pruning", "^:"),
    ):
        pts = [(xi, lv[key]) for xi, lv in zip(x, levels) if lv.get(key)]
        if not pts:
            continue
        ax.errorbar(
            [p[0] for p in pts],
            [100 * p[1]["mean"] for p in pts],
            yerr=[100 * p[1]["std"] for p in pts],
            fmt=style,
            capsize=3,
            label=label,
            markersize=4,
        )
    dense = result["dense_accuracy"]
    ax.axhline(100 * dense["mean"], color="grey", lw=0.8, label="dense")
    ax.set_xscale("log")
    ticks = [t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1) if min(x) * 0.8 <= t <= 100]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.set_xlabel("weights remaining (%)")
    ax.set_ylabel("test accuracy (%)")
    cfg = result["config"]
    ax.set_title(f"{cfg['model']} on {cfg['data']}: {len(result['seeds'])} seeds, rewind {cfg['rewind']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=110)
    return path


def load_ticket(path: str | Path) -> list[tuple[Path, dict]]:
    """The seed directories of a ticket: `DIR/level_L` (all seeds) or `DIR/level_L/seed_S`."""
    path = Path(path)
    if not path.is_dir():
        raise FrugalError(f"ticket directory not found: {path}")
    dirs = [path] if (path / TICKET).exists() else sorted(path.glob("seed_*"), key=lambda p: p.name)
    out = []
    for d in dirs:
        if not (d / TICKET).exists():
            continue
        info = read_json(d / TICKET)
        if info.get("kind") != "frugalml.ticket":
            raise FrugalError(f"{d / TICKET} is not a frugalml ticket")
        for f in (MASK, REWIND, WEIGHTS):
            if not (d / f).is_file():
                raise FrugalError(f"ticket {d} is incomplete: {f} is missing")
        out.append((d, info))
    if not out:
        raise FrugalError(f"{path} is not a ticket directory (expected DIR/level_L from `frugal tickets find`)")
    return out
