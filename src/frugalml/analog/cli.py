"""`frugal analog ...`: train on simulated analog devices, sweep device quality, list presets."""

from __future__ import annotations

from pathlib import Path

import typer

from frugalml.errors import FrugalError

app = typer.Typer(no_args_is_help=True, help="Analog training on crossbar arrays.")

JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        raise FrugalError(f"malformed --hidden '{text}': expected positive integers like 64 or 128,64")
    return sizes


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


@app.command()
def train(
    device: str = typer.Option("ecram", help="Device preset (see `frugal analog devices`)."),
    data: str = typer.Option("digits", help="Dataset: digits or mnist1d."),
    model: str = typer.Option("mlp", help="Network (mlp)."),
    hidden: str = typer.Option("64", help="Hidden layer sizes, e.g. 64 or 128,64."),
    algorithm: str = typer.Option("sgd", help="sgd or tiki-taka."),
    epochs: int = typer.Option(10, help="Training epochs."),
    lr: float = typer.Option(0.1, help="Learning rate (plain SGD, both runs)."),
    batch_size: int = typer.Option(10, help="Mini-batch size (each example is one rank-one pulsed update)."),
    bl: int = typer.Option(31, "--bl", help="Stochastic pulse train length BL."),
    io: str = typer.Option("realistic", help="Peripherals: realistic (7-bit DAC, 9-bit ADC, noise 0.06) or ideal."),
    states: float = typer.Option(None, help="Override the device's number of states (range / step)."),
    asymmetry: float = typer.Option(None, help="Override the device's up/down asymmetry."),
    noise: float = typer.Option(None, help="Override the cycle-to-cycle noise (x step)."),
    refresh: float = typer.Option(
        None, help="PCM pairs: reset and rewrite when a side passes this fraction of its range."
    ),
    seed: int = typer.Option(0, help="Seed (init, data order, device draws, pulses)."),
    out: Path = typer.Option(None, help="Run directory (default runs/analog/<name>); reruns resume."),
    plot: Path = typer.Option(None, help="Write test accuracy vs epoch (analog and digital) as PNG."),
    json_out: bool = JSON,
):
    """Train on analog devices next to the same training done digitally; accuracy and energy."""
    from frugalml.analog.run import AnalogRunConfig, plot_curves
    from frugalml.analog.run import train as run_train

    overrides = {k: v for k, v in {"states": states, "asymmetry": asymmetry, "c2c": noise}.items() if v is not None}
    cfg = AnalogRunConfig(
        data=data,
        model=model,
        hidden=_hidden(hidden),
        device=device,
        algorithm=algorithm,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        bl=bl,
        seed=seed,
        io=io,
        device_overrides=overrides,
        refresh=refresh,
    ).validate()
    out = out or Path("runs/analog") / cfg.name()
    r = run_train(cfg, out, progress=None if not json_out else False)
    if plot:
        plot_curves(
            {
                f"analog {device} ({algorithm})": [h["test_accuracy"] for h in r["analog"]["history"]],
                "digital SGD": [h["test_accuracy"] for h in r["digital"]["history"]],
            },
            plot,
            f"{data}: {device}, {algorithm}, seed {seed}",
        )
    if json_out:
        from frugalml.report.console import print_json

        keep = ("accuracy", "digital_accuracy", "pulses", "energy_j", "digital_energy_j", "device", "algorithm", "data")
        return print_json(
            {k: r[k] for k in keep}
            | {
                "run_dir": str(out),
                "analog_cost": r["analog"]["cost"],
                "digital_cost": r["digital"]["cost"],
                "energy_parts_j": r["analog"]["energy_parts_j"],
                "counts": r["analog"]["counts"],
                "history": [h["test_accuracy"] for h in r["analog"]["history"]],
                "digital_history": [h["test_accuracy"] for h in r["digital"]["history"]],
            }
        )
    from frugalml.cost.currency import Cost
    from frugalml.report.console import cost_table, stdout_console

    con = stdout_console()
    con.print(
        f"[bold]{data}[/bold], MLP hidden {'-'.join(map(str, cfg.hidden))}, {epochs} epochs: "
        f"analog [bold]{device}[/bold] ({algorithm}, BL={bl}) "
        f"test accuracy {r['accuracy']:.4f} vs digital {r['digital_accuracy']:.4f}; "
        f"{r['pulses']:,.0f} device pulses"
    )
    con.print(
        cost_table(
            "training cost (modelled)",
            Cost.from_dict(r["digital"]["cost"]),
            Cost.from_dict(r["analog"]["cost"]),
            "digital fp32",
            f"analog {device}",
        )
    )
    parts = r["analog"]["energy_parts_j"]
    con.print("analog energy by part: " + ", ".join(f"{k} {v:.3g} J" for k, v in parts.items()))
    con.print(f"run directory: {out}")


@app.command()
def sweep(
    param: str = typer.Option(..., help="states, asymmetry or noise."),
    data: str = typer.Option("digits", help="Dataset: digits or mnist1d."),
    device: str = typer.Option(
        None, help="Base device (default: gokmen-vlasov for states/noise, ecram for asymmetry)."
    ),
    values: str = typer.Option(None, help="Comma-separated values (default: a built-in grid)."),
    algorithm: str = typer.Option("sgd", help="sgd, tiki-taka, or both (comma-separated)."),
    seeds: int = typer.Option(2, help="Number of seeds per point."),
    epochs: int = typer.Option(10, help="Epochs per run."),
    hidden: str = typer.Option("64", help="Hidden layer sizes."),
    bl: int = typer.Option(31, "--bl", help="Stochastic pulse train length BL."),
    workers: int = typer.Option(1, help="Local worker processes."),
    out: Path = typer.Option(None, help="Sweep directory (default runs/analog/sweep-<param>-<data>)."),
    plot: Path = typer.Option(None, help="Write accuracy vs the parameter as PNG."),
    json_out: bool = JSON,
):
    """Accuracy vs number of states, asymmetry or noise (analog vs digital), over seeds."""
    from frugalml.analog.run import SWEEPS, AnalogRunConfig, plot_sweep
    from frugalml.analog.run import sweep as run_sweep

    if param not in SWEEPS:
        raise FrugalError(f"unknown sweep parameter '{param}' (known: {', '.join(SWEEPS)})")
    vals = None
    if values:
        try:
            vals = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise FrugalError(f"malformed --values '{values}': expected numbers like 10,100,1000") from None
    algs = tuple(a.strip() for a in algorithm.split(",") if a.strip())
    if seeds < 1:
        raise FrugalError(f"--seeds must be >= 1, got {seeds}")
    base = AnalogRunConfig(data=data, hidden=_hidden(hidden), epochs=epochs, bl=bl)
    out = out or Path("runs/analog") / f"sweep-{param}-{data}"
    payload = run_sweep(
        param, base, out, values=vals, seeds=tuple(range(seeds)), algorithms=algs, workers=workers, device=device
    )
    if plot:
        plot_sweep(payload, plot)
    if json_out:
        from frugalml.report.console import print_json

        return print_json(
            {k: payload[k] for k in ("param", "device", "values", "seeds", "algorithms", "summary")}
            | {"run_dir": str(out)}
        )
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
            f"{data}: accuracy vs {param} ({payload['device']}, {seeds} seeds)",
            ["algorithm", param, "mean", "min", "max", "digital"],
            rows,
        )
    )
