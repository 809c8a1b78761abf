"""`frugal analog ...`: train on simulated analog devices, sweep device quality, list presets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from frugalml.analog.run import AnalogRunConfig
from frugalml.errors import FrugalError
from frugalml.report.cliopts import (
    config_options,
    executor_option,
    parse_seeds,
    pick_executor,
    renamed,
    seeds_option,
    workers_option,
)
from frugalml.report.console import print_saved, warn_if_long

app = typer.Typer(no_args_is_help=True, help="Analog training on crossbar arrays.")

JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")


@app.command()
def devices(json_out: bool = JSON):
    """The device presets, their parameters and sources."""
    from frugalml.analog.devices import PRESETS

    if json_out:
        from frugalml.report.console import print_json

        return print_json({"devices": [p.to_dict() for p in PRESETS.values()]})
    from frugalml.report.console import fmt_num, stdout_console, table

    rows = [
        [
            p.name,
            p.model,
            f"{p.states:,.0f}",
            fmt_num(p.dw),
            f"[{p.w_min:g}, {p.w_max:g}]",
            f"{p.asymmetry:g}",
            f"{p.c2c:g}",
            f"{p.dw_dtod:g}",
            "uni" if p.unidirectional else "bi",
            fmt_num(p.energy_per_pulse_j),
        ]
        for p in PRESETS.values()
    ]
    con = stdout_console()
    con.print(
        table(
            "analog device presets",
            ["name", "model", "states", "step", "range", "asym", "c2c", "d2d", "dir", "J/pulse"],
            rows,
            justify_right_from=2,
        )
    )
    for p in PRESETS.values():
        con.print(f"[bold]{p.name}[/bold]: {p.source}")


TRAIN_HELP = {
    "train.epochs": "Training epochs.",
    "train.lr": "Learning rate (plain SGD, both runs).",
    "train.batch_size": "Mini-batch size (each example is one rank-one pulsed update).",
}


@app.command(context_settings=renamed({"--device": "--preset"}))
@config_options(
    AnalogRunConfig,
    only=("data", "model", "hidden", "device", "algorithm", "bl", "seed", "io", "refresh", *TRAIN_HELP),
    flags={"device": "preset"},  # the field keeps its name: config.json of earlier runs reads the same
    helps=TRAIN_HELP,
    quick={"train.epochs": 1, "hidden": [32]},
)
def train(
    cfg: AnalogRunConfig,
    states: float = typer.Option(None, help="Override the device's number of states (range / step)."),
    asymmetry: float = typer.Option(None, help="Override the device's up/down asymmetry."),
    noise: float = typer.Option(None, help="Override the cycle-to-cycle noise (in units of the step)."),
    out: Path = typer.Option(None, help="Run directory (default runs/analog/<name>); reruns resume."),
    plot: Path = typer.Option(None, help="Write test accuracy vs epoch (analog and digital) as PNG."),
    json_out: bool = JSON,
):
    """Train on analog devices next to the same training done digitally; accuracy and energy."""
    from frugalml.analog.run import plot_curves
    from frugalml.analog.run import train as run_train

    overrides = {k: v for k, v in {"states": states, "asymmetry": asymmetry, "c2c": noise}.items() if v is not None}
    cfg = replace(cfg, device_overrides=overrides).validate()
    out = out or Path("runs/analog") / cfg.name()
    warn_if_long(run_seconds(cfg), "analog train", f"{cfg.train.epochs} epochs on {cfg.data}, analog and digital")
    r = run_train(cfg, out, progress=None if not json_out else False)
    if plot:
        plot_curves(
            {
                f"analog {cfg.device} ({cfg.algorithm})": [h["test_accuracy"] for h in r["analog"]["history"]],
                "digital SGD": [h["test_accuracy"] for h in r["digital"]["history"]],
            },
            plot,
            f"{cfg.data}: {cfg.device}, {cfg.algorithm}, seed {cfg.seed}",
        )
    if json_out:
        from frugalml.report.console import print_json

        print_json(_train_json(r, out))
        return print_saved(out, json_out)
    _print_train(cfg, r, out)
    print_saved(out)


# one example through one analog training epoch and its digital twin (hidden 64, BL 31), one
# thread: `analog train --quick --epochs 3 --hidden 64` minus `--quick` (0.8 s for ~3,600
# example-epochs, nice'd on a shared 2-core machine), plus RUN_OVERHEAD_S per run. Rough.
ANALOG_EXAMPLE_EPOCH_S = 2.5e-4
RUN_OVERHEAD_S = 3.0
TRAIN_EXAMPLES = {"digits": 1437, "mnist1d": 4000}


def run_seconds(cfg: AnalogRunConfig) -> float:
    """Rough wall time of one analog run and its digital twin (the twin is cheap)."""
    examples = TRAIN_EXAMPLES.get(cfg.data, 4000)
    size = sum(cfg.hidden) / 64 * cfg.bl / 31
    return RUN_OVERHEAD_S + cfg.train.epochs * examples * ANALOG_EXAMPLE_EPOCH_S * max(size, 0.1)


def _train_json(r: dict, out: Path) -> dict:
    keep = ("accuracy", "digital_accuracy", "pulses", "energy_j", "digital_energy_j", "device", "algorithm", "data")
    return {k: r[k] for k in keep} | {
        "run_dir": str(out),
        "analog_cost": r["analog"]["cost"],
        "digital_cost": r["digital"]["cost"],
        "energy_parts_j": r["analog"]["energy_parts_j"],
        "counts": r["analog"]["counts"],
        "history": [h["test_accuracy"] for h in r["analog"]["history"]],
        "digital_history": [h["test_accuracy"] for h in r["digital"]["history"]],
    }


def _print_train(cfg, r: dict, out: Path) -> None:
    from frugalml.cost.currency import Cost
    from frugalml.report.console import cost_table, stdout_console

    con = stdout_console()
    con.print(
        f"[bold]{cfg.data}[/bold], MLP hidden {'-'.join(map(str, cfg.hidden))}, {cfg.train.epochs} epochs: "
        f"analog [bold]{cfg.device}[/bold] ({cfg.algorithm}, BL={cfg.bl}) "
        f"test accuracy {r['accuracy']:.4f} vs digital {r['digital_accuracy']:.4f}; "
        f"{r['pulses']:,.0f} device pulses"
    )
    con.print(
        cost_table(
            "training cost (modelled)",
            Cost.from_dict(r["digital"]["cost"]),
            Cost.from_dict(r["analog"]["cost"]),
            "digital fp32",
            f"analog {cfg.device}",
        )
    )
    parts = r["analog"]["energy_parts_j"]
    con.print("analog energy by part: " + ", ".join(f"{k} {v:.3g} J" for k, v in parts.items()))


@app.command(context_settings=renamed({"--device": "--preset"}))
@config_options(
    AnalogRunConfig,
    "base",
    only=("data", "hidden", "bl", "train.epochs"),
    helps={"train.epochs": "Epochs per run."},
    quick={"train.epochs": 1, "hidden": [32], "seeds": "0-0"},
    quick_also="--values: the default grid's two ends",
)
def sweep(
    base: AnalogRunConfig,
    param: str = typer.Option(..., help="The device parameter swept: states, asymmetry or noise."),
    preset: str = typer.Option(
        None,
        "--preset",
        help="Base device preset (default: gokmen-vlasov for states/noise, ecram for asymmetry).",
    ),
    values: str = typer.Option(None, help="Comma-separated values (default: a built-in grid)."),
    algorithm: str = typer.Option("sgd", help="sgd, tiki-taka, or both (comma-separated)."),
    seeds: str = seeds_option("0,1", "Seeds of every point"),
    workers: int = workers_option(),
    executor: str = executor_option(),
    out: Path = typer.Option(None, help="Sweep directory (default runs/analog/sweep-<param>-<data>)."),
    plot: Path = typer.Option(None, help="Write accuracy vs the parameter as PNG."),
    json_out: bool = JSON,
    quick: bool = False,  # the --quick flag of config_options: also only the grid's two ends
):
    """Accuracy vs number of states, asymmetry or noise (analog vs digital), over seeds."""
    from frugalml.analog.run import SWEEPS, check_sweep, plot_sweep
    from frugalml.analog.run import sweep as run_sweep

    if param not in SWEEPS:
        raise FrugalError(f"unknown sweep parameter '{param}' (known: {', '.join(SWEEPS)})")
    vals = None
    if values:
        try:
            vals = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise FrugalError(f"malformed --values '{values}': expected numbers like 10,100,1000") from None
    if quick and vals is None:
        grid = SWEEPS[param][1]
        vals = [grid[0], grid[-1]]
    algs = tuple(a.strip() for a in algorithm.split(",") if a.strip())
    seed_list = parse_seeds(seeds)
    from frugalml.data.user import slug

    data = base.data
    out = out or Path("runs/analog") / f"sweep-{param}-{slug(data)}"
    ex = pick_executor(executor, workers)
    check_sweep(param, base, vals, algs, ex.workers, preset)  # refused before the note on its length
    runs = len(vals or SWEEPS[param][1]) * len(algs) * len(seed_list)
    basis = f"{runs} runs of {base.train.epochs} epochs, executor {ex}"
    warn_if_long(runs * run_seconds(base) / min(ex.workers, 2), "analog sweep", basis)
    payload = run_sweep(
        param, base, out, values=vals, seeds=tuple(seed_list), algorithms=algs, device=preset, executor=ex
    )
    if plot:
        plot_sweep(payload, plot)
    if json_out:
        from frugalml.report.console import print_json

        print_json(
            {k: payload[k] for k in ("param", "device", "values", "seeds", "algorithms", "summary")}
            | {"run_dir": str(out)}
        )
        return print_saved(out, json_out)
    from frugalml.report.console import stdout_console, table

    rows = [
        [
            s["algorithm"],
            f"{s['value']:g}",
            f"{s['accuracy_mean']:.4f}",
            f"{s['accuracy_min']:.4f}",
            f"{s['accuracy_max']:.4f}",
            f"{s['digital_mean']:.4f}",
        ]
        for s in payload["summary"]
    ]
    stdout_console().print(
        table(
            f"{data}: accuracy vs {param} ({payload['device']}, {len(seed_list)} seeds)",
            ["algorithm", param, "mean", "min", "max", "digital"],
            rows,
        )
    )
    print_saved(out)
