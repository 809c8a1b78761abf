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
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch

from frugalml.errors import FrugalError
from frugalml.files import atomic_save, read_json, write_json
from frugalml.report.plots import save_figure
from frugalml.tickets import tasks
from frugalml.tickets.masks import Mask, MaskEnforcer, check_rate, prune_magnitude, random_like

MASK, REWIND, WEIGHTS, METRICS, COST, TICKET = (
    "mask.safetensors",
    "rewind.safetensors",
    "weights.safetensors",
    "metrics.json",
    "cost.json",
    "ticket.json",
)
CONTROLS = ("reinit", "random")


@dataclass
class TicketConfig:
    model: str = "mlp"
    data: str = "mnist1d"
    levels: int = 12
    rate: float = 0.2
    output_rate: float | None = None  # layerwise only; None means rate / 2 (resolved and recorded)
    strategy: str = "layerwise"  # layerwise | global
    rewind: str = "0"  # 0 | <N>it | <N>ep
    seeds: int = 2
    first_seed: int = 0
    controls: list[str] = field(default_factory=lambda: list(CONTROLS))
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"  # constant | cosine: cosine gives a steady final accuracy to compare levels by

    def validate(self) -> TicketConfig:
        check_rate(self.rate)
        if self.strategy not in ("layerwise", "global"):
            raise FrugalError(f"unknown pruning strategy '{self.strategy}' (layerwise, global)")
        if self.output_rate is None and self.strategy == "layerwise":
            self.output_rate = self.rate / 2
        if self.output_rate is not None:
            check_rate(self.output_rate, "output rate")
        if self.levels < 0 or self.levels > 60:
            raise FrugalError(f"levels must be between 0 and 60, got {self.levels}")
        if self.seeds < 1:
            raise FrugalError(f"seeds must be >= 1, got {self.seeds}")
        bad = [c for c in self.controls if c not in CONTROLS]
        if bad:
            raise FrugalError(f"unknown control '{bad[0]}' (known: {', '.join(CONTROLS)})")
        parse_rewind(self.rewind)
        self.train_config(0).validate()
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def train_config(self, seed: int, threads: int | None = None):
        from frugalml.train import TrainConfig

        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            schedule=self.schedule,
            seed=seed,
            threads=threads,
        )

    def rewind_iteration(self, n_train: int) -> int:
        n, unit = parse_rewind(self.rewind)
        steps = math.ceil(n_train / self.batch_size)
        k = n * steps if unit == "ep" else n
        if k > steps * self.epochs:
            raise FrugalError(
                f"rewind point {self.rewind} is past the end of training ({steps * self.epochs} iterations)"
            )
        return k


def parse_rewind(text: str) -> tuple[int, str]:
    text = str(text).strip().lower()
    if text == "0":
        return 0, "it"
    for unit in ("it", "ep"):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]), unit
    raise FrugalError(f"malformed rewind point '{text}': use 0, <N>it (iterations) or <N>ep (epochs)")


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


def _accuracy(res) -> float:
    return float(res.final["test_accuracy"]) if res.history else float("nan")


def _train(model, ds, cfg: TicketConfig, seed: int, mask: Mask, run: Path, progress, description, **hook_kw):
    from frugalml.train import fit

    mask.apply(model)
    hooks = _Hooks(MaskEnforcer(model, mask), **hook_kw)
    return fit(model, ds, cfg.train_config(seed), run, on_step=hooks, progress=progress, description=description)


def run_seed(out: str, config: dict, seed: int, progress: bool | None = None, threads: int | None = None) -> list[dict]:
    """All IMP levels of one seed: train, prune, rewind; each level resumes on its own."""
    from frugalml.cost.profile import profile
    from frugalml.train import load_weights, save_weights

    if threads:
        torch.set_num_threads(threads)
    cfg = TicketConfig(**config).validate()
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
        hook_kw = {}
        if level == 0:
            mask = Mask.ones(model)
            mask.save(d / MASK)
            if k == 0:
                save_weights(model, d / REWIND)
            else:
                hook_kw = {"rewind_at": k, "rewind_path": d / REWIND}
        else:
            mask = Mask.load(d / MASK, model)
            load_weights(model, d / REWIND)
        res = _train(model, ds, cfg, seed, mask, d / "train", progress, f"level {level} seed {seed}", **hook_kw)
        save_weights(model, d / WEIGHTS)
        prof = profile(model, ds.x_train[:1])
        write_json(d / COST, prof.cost().to_dict())
        if level < cfg.levels:
            nxt = prune_magnitude(model, mask, cfg.rate, cfg.strategy, cfg.output_rate)
            nd = level_dir(out, level + 1, seed)
            nxt.save(nd / MASK)
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
            "accuracy": _accuracy(res),
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
    cfg = TicketConfig(**config).validate()
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
        mask.save(d / MASK)
    else:
        raise FrugalError(f"unknown control '{kind}' (known: {', '.join(CONTROLS)})")
    res = _train(model, ds, cfg, seed, mask, d / "train", progress, f"{kind} level {level} seed {seed}")
    row = {
        "level": level,
        "seed": seed,
        "control": kind,
        "remaining": mask.remaining(),
        "accuracy": _accuracy(res),
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


def check_run_config(out: Path, cfg: TicketConfig) -> None:
    from frugalml.files import check_run_config as bind

    bind(out, cfg.to_dict(), what="ticket run")


def find(cfg: TicketConfig, out: str | Path, workers: int = 1, progress: bool | None = None) -> dict:
    """Run (or resume) IMP for every seed, then the controls at every pruned level."""
    from frugalml.executor import run_jobs

    cfg.validate()
    tasks.load(cfg.data)  # bad data specs fail here, before any directory is made
    out = Path(out)
    check_run_config(out, cfg)
    threads = 1 if workers > 1 else None
    prog = False if workers > 1 else progress
    base = {"out": str(out), "config": cfg.to_dict(), "progress": prog, "threads": threads}
    run_jobs(run_seed, [base | {"seed": s} for s in cfg.seed_list()], workers)
    jobs = [
        base | {"seed": s, "level": lv, "kind": c}
        for lv in range(1, cfg.levels + 1)
        for s in cfg.seed_list()
        for c in cfg.controls
    ]
    run_jobs(run_control, jobs, workers)
    result = summarize(out)
    write_json(out / "result.json", result)
    plot_find(result, out / "accuracy_vs_remaining.png")
    result["plot"] = str(out / "accuracy_vs_remaining.png")
    return result


def summarize(out: str | Path) -> dict:
    out = Path(out)
    cfg = TicketConfig(**read_json(out / "config.json"))
    levels = []
    for level in range(cfg.levels + 1):
        rows = [read_json(level_dir(out, level, s) / METRICS) for s in cfg.seed_list()]
        entry = {
            "level": level,
            "remaining": statistics.fmean(r["remaining"] for r in rows),
            "accuracy": stats([r["accuracy"] for r in rows]),
            "macs_effective": round(statistics.fmean(r["macs_effective"] for r in rows)),
            "macs": rows[0]["macs"],
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
