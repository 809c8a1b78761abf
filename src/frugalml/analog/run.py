"""Whole analog runs: train on devices next to the same training done digitally, and sweeps.

Both runs go through `frugalml.train.fit` (same data order, same initial weights, plain SGD
without momentum, checkpoints and resume); the analog run does its in-place pulsed update
from fit's `on_step` hook, so its optimizer only moves the digital biases.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from frugalml.errors import FrugalError
from frugalml.report.plots import save_figure
from frugalml.trainconfig import TrainConfig

SWEEPS = {
    # param: (device the sweep starts from, values)
    "states": ("gokmen-vlasov", [10, 30, 100, 300, 1200, 3000]),
    "asymmetry": ("ecram", [0.0, 0.1, 0.3, 0.6]),
    "noise": ("gokmen-vlasov", [0.0, 0.3, 1.0, 3.0]),
}
# the device parameter each sweep overrides
SWEEP_KEYS = {"states": "states", "asymmetry": "asymmetry", "noise": "c2c"}
# longest stochastic pulse train (slots) an update may get; also bounds its memory
BL_MAX = 1000


def analog_training(**changes) -> TrainConfig:
    """The training both runs (analog and digital) do by default, with `changes` applied."""
    # plain SGD without momentum in both runs: the pulsed analog update has none
    # one thread: small matmuls are as fast on one, and it is fair to a shared machine
    return TrainConfig(**({"epochs": 10, "batch_size": 10, "lr": 0.1, "momentum": 0.0, "threads": 1} | changes))


@dataclass
class AnalogRunConfig:
    data: str = field(
        default="digits",
        metadata={"help": "Dataset: digits or mnist1d, or your own data: a .npz/.pt file or module:loader."},
    )
    model: str = field(default="mlp", metadata={"help": "Network (mlp)."})
    hidden: tuple[int, ...] = field(default=(64,), metadata={"help": "Hidden layer sizes, e.g. 64 or 128,64."})
    device: str = field(default="ecram", metadata={"help": "Analog device preset (see `frugal analog devices`)."})
    algorithm: str = field(default="sgd", metadata={"help": "sgd or tiki-taka."})
    bl: int = field(default=31, metadata={"help": "Stochastic pulse train length BL."})
    # a sample whose SGD step exceeds BL x dw gets a longer train, up to this many slots
    # (tile.train_lengths); bl_max = bl is the fixed-length rule, which clips such updates
    bl_max: int | None = field(
        default=BL_MAX, metadata={"help": "Longest pulse train, in slots (an update larger than BL x step gets one)."}
    )
    # init, device draws and pulses; the data order too (it replaces train.seed)
    seed: int = field(default=0, metadata={"help": "Seed (init, data order, device draws, pulses)."})
    io: str = field(
        default="realistic",
        metadata={"help": "Peripherals: realistic (7-bit DAC, 9-bit ADC, noise 0.06) or ideal."},
    )
    device_overrides: dict = field(default_factory=dict)  # e.g. {"states": 300, "asymmetry": 0.2}
    transfer_every: int = 1
    transfer_columns: int = 8
    transfer_lr: float = 0.1
    gamma: float = 0.0
    # unidirectional (pcm) pairs: refresh threshold, fraction of the range
    refresh: float | None = field(
        default=None, metadata={"help": "PCM pairs: reset and rewrite when a side passes this fraction of its range."}
    )
    train: TrainConfig = field(default_factory=analog_training)

    def validate(self) -> AnalogRunConfig:
        from frugalml import data
        from frugalml.analog import devices
        from frugalml.analog.tile import ALGORITHMS, IO_PRESETS

        data.entry(self.data)  # an unknown dataset fails here, before a run directory is made
        spec = devices.spec(self.device, **self.device_overrides)
        if self.algorithm not in ALGORITHMS:
            raise FrugalError(f"unknown algorithm '{self.algorithm}' (known: {', '.join(ALGORITHMS)})")
        if self.refresh is not None and not 0 < self.refresh <= 1:
            raise FrugalError(f"refresh threshold must lie in (0, 1] (fraction of the range), got {self.refresh}")
        if self.algorithm == "tiki-taka" and spec.unidirectional:
            raise FrugalError(f"tiki-taka needs a bidirectional device; '{spec.name}' only potentiates")
        if self.io not in IO_PRESETS:
            raise FrugalError(f"unknown io '{self.io}' (known: {', '.join(IO_PRESETS)})")
        if not isinstance(self.bl, int) or self.bl < 1:
            raise FrugalError(f"pulse train length BL must be an integer >= 1, got {self.bl}")
        if self.bl_max is not None and (not isinstance(self.bl_max, int) or self.bl_max < self.bl):
            raise FrugalError(f"the longest pulse train bl_max must be an integer >= BL ({self.bl}), got {self.bl_max}")
        if self.model != "mlp":
            raise FrugalError(f"analog runs support --model mlp for now, got '{self.model}'")
        if not self.hidden or min(self.hidden) < 1:
            raise FrugalError(f"hidden layer sizes must be positive integers like 64 or 128,64, got {self.hidden}")
        t = self.train
        if t.epochs < 1 or t.batch_size < 1 or not t.lr > 0:
            raise FrugalError("epochs and batch size must be >= 1 and the learning rate > 0")
        return self

    @classmethod
    def from_dict(cls, record: dict) -> AnalogRunConfig:
        from frugalml.report.cliopts import config_from_dict

        return config_from_dict(cls, record, "analog run config")

    def name(self) -> str:
        extra = "".join(f"-{k}{v:g}" for k, v in sorted(self.device_overrides.items()))
        extra += f"-refresh{self.refresh:g}" if self.refresh is not None else ""
        extra += f"-blmax{self.bl_max}" if self.bl_max != BL_MAX else ""
        return f"{_slug(self.data)}-{self.device}{extra}-{self.algorithm}-bl{self.bl}-e{self.train.epochs}-s{self.seed}"

    def digital_key(self) -> str:
        h = "x".join(map(str, self.hidden))
        t = self.train
        return f"{_slug(self.data)}-{self.model}{h}-lr{t.lr:g}-b{t.batch_size}-e{t.epochs}-s{self.seed}"


def _slug(spec: str) -> str:
    """A data spec as a directory name (`path/to/my.npz` -> `my`; digits stays digits)."""
    from frugalml.data.user import slug

    return slug(spec)


def _build(cfg: AnalogRunConfig, ds):
    import torch

    from frugalml import models

    torch.manual_seed(cfg.seed)
    return models.for_data(cfg.model, ds, hidden=tuple(cfg.hidden))


def digital_run(cfg: AnalogRunConfig, run_dir: Path, progress: bool | None = False) -> dict:
    """The digital twin: same net, init, data order and SGD; energy from counted MACs."""
    from frugalml import data
    from frugalml.analog.energy import digital_cost
    from frugalml.cost.counting import profile
    from frugalml.train import fit

    ds = data.get(cfg.data)
    net = _build(cfg, ds)
    tc = replace(cfg.train, seed=cfg.seed)
    res = fit(net, ds, tc, run_dir, progress=progress, description="digital")
    prof = profile(net, ds.x_train[:1], training=True)
    train_macs = prof.train_flops / 2 * len(ds.y_train) * cfg.train.epochs
    cost = digital_cost(train_macs)
    cost.params, cost.macs = prof.params, prof.macs
    return {
        "accuracy": res.final["test_accuracy"],
        "history": res.history,
        "train_macs": train_macs,
        "cost": cost.to_dict(),
        "seconds": res.seconds,
    }


def analog_run(cfg: AnalogRunConfig, run_dir: Path, progress: bool | None = False) -> dict:
    from frugalml import data
    from frugalml.analog import devices, tile
    from frugalml.analog.energy import SOURCES, EnergyModel, analog_cost
    from frugalml.train import fit

    cfg.validate()
    ds = data.get(cfg.data)
    spec = devices.spec(cfg.device, **cfg.device_overrides)
    net = tile.convert(
        _build(cfg, ds),
        spec,
        io=tile.IO_PRESETS[cfg.io],
        algorithm=cfg.algorithm,
        bl=cfg.bl,
        bl_max=cfg.bl_max,
        transfer_every=cfg.transfer_every,
        transfer_columns=cfg.transfer_columns,
        transfer_lr=cfg.transfer_lr,
        gamma=cfg.gamma,
        refresh=cfg.refresh,
    )

    def on_step(model, opt, iteration):
        if iteration > 0:
            tile.analog_step(model, opt.param_groups[0]["lr"])

    tc = replace(cfg.train, seed=cfg.seed)
    res = fit(net, ds, tc, run_dir, on_step=on_step, progress=progress, description=f"analog {cfg.device}")
    counts = tile.counts(net)
    cost, parts = analog_cost(counts, spec.energy_per_pulse_j, cfg.bl)
    # weights on the tiles + the digital biases
    on_tiles = sum(t.in_features * t.out_features for t in tile.tiles(net))
    cost.params = on_tiles + sum(p.numel() for p in net.parameters())
    cost.notes["params"] = "weights held on analog tiles plus digital biases"
    return {
        "accuracy": res.final["test_accuracy"],
        "history": res.history,
        "counts": counts,
        "energy_parts_j": parts,
        "cost": cost.to_dict(),
        "spec": spec.to_dict(),
        "energy_model": EnergyModel().to_dict() | {"sources": SOURCES},
        "seconds": res.seconds,
    }


def train(cfg: AnalogRunConfig, out: str | Path, progress: bool | None = False, digital_dir: Path | None = None):
    """Analog run + digital twin in `out/`; returns the result dict (also out/result.json).

    Tracked into `out/spent.json`; `out/record.json` (kind analog.train) is written at the end.
    """
    from frugalml.cost.tracker import Ledger
    from frugalml.files import write_json

    cfg.validate()
    out = Path(out)
    with Ledger(out, children=True, label="analog.train") as ledger:
        dig = digital_run(cfg, Path(digital_dir) if digital_dir else out / "digital", progress)
        ana = analog_run(cfg, out / "analog", progress)
    result = {
        "device": cfg.device,
        "algorithm": cfg.algorithm,
        "data": cfg.data,
        "accuracy": ana["accuracy"],
        "digital_accuracy": dig["accuracy"],
        "pulses": ana["counts"]["device_pulses"],
        "energy_j": ana["cost"]["energy_j"],
        "digital_energy_j": dig["cost"]["energy_j"],
        "config": asdict(cfg),
        "analog": ana,
        "digital": dig,
    }
    write_json(out / "result.json", result)
    _write_train_record(cfg, out, result, ledger.total())
    return result


def inference_costs(cfg: AnalogRunConfig):
    """Per-inference (one example's forward pass) `Cost`s of the net: (digital fp32, analog tiles)."""
    from torch import nn

    from frugalml import data
    from frugalml.analog.energy import inference_costs as costs
    from frugalml.analog.tile import IO_PRESETS

    net = _build(cfg, data.get(cfg.data))
    shapes = [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, nn.Linear)]
    return costs(shapes, IO_PRESETS[cfg.io].array_size, sum(p.numel() for p in net.parameters()))


def _write_train_record(cfg: AnalogRunConfig, out: Path, result: dict, spent: dict) -> Path:
    from frugalml.report import record

    digital, analog = inference_costs(cfg)
    rec = record.build(
        "analog.train",
        quality={
            "accuracy": record.metric([result["accuracy"]], seeds=[cfg.seed]),
            "digital_accuracy": record.metric([result["digital_accuracy"]], seeds=[cfg.seed]),
        },
        config=asdict(cfg),
        data=cfg.data,
        model={"name": cfg.model, "hidden": list(cfg.hidden), "device": cfg.device, "algorithm": cfg.algorithm},
        before=digital,
        after=analog,
        spent=spent,
        artifacts={"result": "result.json"},
    )
    return record.write(out, rec)


def _write_sweep_record(base: AnalogRunConfig, out: Path, payload: dict, spent: dict) -> Path:
    """The sweep's record: every (algorithm, value) cell a point with its per-seed accuracies;
    the headline quality is the best cell's (highest mean analog accuracy)."""
    from frugalml.report import record

    digital, analog = inference_costs(base)
    points = []
    for cell in payload["summary"]:
        rows = [r for r in payload["rows"] if r["algorithm"] == cell["algorithm"] and r["value"] == cell["value"]]
        seeds = [r["seed"] for r in rows]
        quality = {
            "accuracy": record.metric([r["accuracy"] for r in rows], seeds=seeds),
            "digital_accuracy": record.metric([r["digital_accuracy"] for r in rows], seeds=seeds),
        }
        points.append({"label": f"{cell['algorithm']} {payload['param']}={cell['value']:g}", "quality": quality})
    best = max(points, key=lambda p: p["quality"]["accuracy"]["value"])
    rec = record.build(
        "analog.sweep",
        quality=best["quality"],
        config=payload["config"] | {k: payload[k] for k in ("param", "values", "seeds", "algorithms")},
        data=base.data,
        model={"name": base.model, "hidden": list(base.hidden), "device": payload["device"], "best": best["label"]},
        before=digital,
        after=analog,
        spent=spent,
        points=[p | {"cost": analog} for p in points],
        artifacts={"sweep": "sweep.json"},
    )
    return record.write(out, rec)


def _sweep_job(cfg: dict, out: str, digital_dir: str) -> dict:
    import torch

    torch.set_num_threads(1)
    c = AnalogRunConfig.from_dict(cfg)
    r = train(c, Path(out), progress=False, digital_dir=Path(digital_dir))
    return {k: r[k] for k in ("accuracy", "digital_accuracy", "pulses", "energy_j")} | {
        "saturated": r["analog"]["counts"]["saturated"],
        # pulse-train slots per rank-one update: BL, more where trains were stretched
        "slots_per_update": r["analog"]["counts"]["slots"] / max(r["analog"]["counts"]["updates"], 1),
        "history": [h["test_accuracy"] for h in r["analog"]["history"]],
        "digital_history": [h["test_accuracy"] for h in r["digital"]["history"]],
    }


def _digital_job(cfg: dict, out: str) -> dict:
    import torch

    torch.set_num_threads(1)
    return digital_run(AnalogRunConfig.from_dict(cfg), Path(out))


def check_sweep(param: str, base: AnalogRunConfig, values, algorithms, workers: int, device: str | None):
    """Every check `sweep` makes before it writes (each cell's config); returns the base config."""
    if param not in SWEEPS:
        raise FrugalError(f"unknown sweep parameter '{param}' (known: {', '.join(SWEEPS)})")
    base = replace(base, device=device or SWEEPS[param][0]).validate()
    if workers < 1:
        raise FrugalError(f"--workers must be >= 1, got {workers}")
    key = SWEEP_KEYS[param]
    for alg in algorithms:
        for v in values or SWEEPS[param][1]:
            replace(base, algorithm=alg, device_overrides=dict(base.device_overrides, **{key: v})).validate()
    return base


def sweep(
    param: str,
    base: AnalogRunConfig,
    out: str | Path,
    values=None,
    seeds=(0, 1),
    algorithms=("sgd",),
    workers: int = 1,
    device: str | None = None,
    executor=None,
) -> dict:
    """Accuracy vs one device parameter, over seeds (and algorithms), via `executor.run_jobs`
    (`executor`: see `executor.parse_executor`; default `workers` local processes or FRUGAL_EXECUTOR)."""
    from frugalml.cost.tracker import Ledger
    from frugalml.executor import parse_executor
    from frugalml.files import write_json

    out = Path(out)
    base = check_sweep(param, base, values, algorithms, workers, device)
    ex = parse_executor(executor if executor is not None else (workers if workers > 1 else None))
    with Ledger(out, children=True, label="analog.sweep") as ledger:
        payload = _sweep_cells(param, base, out, values, seeds, algorithms, ex, ledger)
    write_json(out / "sweep.json", payload)
    _write_sweep_record(base, out, payload, ledger.total())
    return payload


def _sweep_cells(param: str, base: AnalogRunConfig, out: Path, values, seeds, algorithms, ex, ledger) -> dict:
    from frugalml.executor import run_jobs
    from frugalml.report.progress import progress

    default_values = SWEEPS[param][1]
    values = list(values or default_values)
    key = SWEEP_KEYS[param]
    digital_dirs = {s: out / "digital" / replace(base, seed=s).digital_key() for s in seeds}
    kw = {"root": out, "ledger": ledger}
    run_jobs(
        _digital_job, [{"cfg": asdict(replace(base, seed=s)), "out": str(d)} for s, d in digital_dirs.items()], ex, **kw
    )
    jobs, index = [], []
    for alg in algorithms:
        for v in values:
            for s in seeds:
                c = replace(base, algorithm=alg, seed=s, device_overrides=dict(base.device_overrides, **{key: v}))
                c.validate()
                jobs.append({"cfg": asdict(c), "out": str(out / c.name()), "digital_dir": str(digital_dirs[s])})
                index.append((alg, v, s))
    with progress(len(jobs), f"analog sweep ({ex})", None if ex.parallel else False) as advance:
        results = run_jobs(_sweep_job, jobs, ex, advance=advance, **kw)
    rows = [{"algorithm": a, "value": v, "seed": s} | r for (a, v, s), r in zip(index, results)]
    summary = summarize(rows)
    payload = {
        "param": param,
        "device": base.device,
        "values": values,
        "seeds": list(seeds),
        "algorithms": list(algorithms),
        "config": asdict(base),
        "rows": rows,
        "summary": summary,
    }
    return payload


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and spread (min, max) of accuracy per (algorithm, value), with the digital reference."""
    import statistics

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["algorithm"], r["value"]), []).append(r)
    out = []
    for (alg, v), rs in groups.items():
        acc = [r["accuracy"] for r in rs]
        dig = [r["digital_accuracy"] for r in rs]
        out.append(
            {
                "algorithm": alg,
                "value": v,
                "accuracy_mean": statistics.fmean(acc),
                "accuracy_min": min(acc),
                "accuracy_max": max(acc),
                "digital_mean": statistics.fmean(dig),
                "n": len(rs),
            }
        )
    return out


def plot_sweep(payload: dict, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for alg in payload["algorithms"]:
        rows = sorted((r for r in payload["summary"] if r["algorithm"] == alg), key=lambda r: r["value"])
        xs = [r["value"] for r in rows]
        ax.errorbar(
            xs,
            [r["accuracy_mean"] for r in rows],
            yerr=[
                [r["accuracy_mean"] - r["accuracy_min"] for r in rows],
                [r["accuracy_max"] - r["accuracy_mean"] for r in rows],
            ],
            marker="o",
            capsize=3,
            label=f"analog {alg}",
        )
    dig = payload["summary"][0]["digital_mean"]
    ax.axhline(dig, color="k", ls="--", lw=1, label="digital SGD")
    if payload["param"] == "states":
        ax.set_xscale("log")
    ax.set_xlabel(
        {
            "states": "device states (range / step)",
            "asymmetry": "up/down asymmetry",
            "noise": "cycle-to-cycle noise (x step)",
        }[payload["param"]]
    )
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{payload['config']['data']}: {payload['device']}, {len(payload['seeds'])} seeds (min-max)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def plot_curves(curves: dict[str, list[float]], path: str | Path, title: str) -> Path:
    """Test accuracy vs epoch, one line per label (digital and each device)."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, ys in curves.items():
        ax.plot(range(1, len(ys) + 1), ys, marker=".", label=label, ls="--" if label.startswith("digital") else "-")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
