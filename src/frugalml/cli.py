"""The `frugal` command. Thin: parse, call the package, print.

Heavy libraries (torch, pandas, codecarbon) are imported inside the commands, so
`frugal --help` stays fast. Each technique package adds its own group from
`frugalml/<package>/cli.py` (a `typer.Typer` named `app`), picked up here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from frugalml.errors import FrugalError
from frugalml.techniques import TECHNIQUES, optional_import

app = typer.Typer(
    help="Measure what deep learning costs - compute, time, energy, carbon, money - and shrink it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (group name, module with a Typer `app`, help), one per technique
GROUPS = [(t.name, t.cli, t.help) for t in TECHNIQUES]


def _add_groups() -> None:
    for name, module, help_ in GROUPS:
        mod = optional_import(module)
        if mod is not None:  # None: that technique is not built yet
            app.add_typer(mod.app, name=name, help=help_)


JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")


@app.command()
def profile(
    model: str = typer.Option(..., help="Registry name (see `frugal models`) or package.module:factory."),
    input: str = typer.Option(None, "--input", help="Input shape, e.g. 1,3,224,224 (default: the model's)."),
    training: bool = typer.Option(False, help="Also count one training step (forward + backward)."),
    latency: bool = typer.Option(False, help="Also measure latency on this machine."),
    threads: int = typer.Option(1, help="Threads for --latency."),
    json_out: bool = JSON,
):
    """Params, nonzeros, MACs and FLOPs per layer (sparsity-aware)."""
    from frugalml import models
    from frugalml.cost.profile import profile as run_profile

    shape = models.parse_shape(input) if input else models.default_input(model)
    net = models.get(model)
    import torch

    prof = run_profile(net, torch.randn(*shape), training=training)
    out = prof.to_dict() | {"model": model}
    if latency:
        from frugalml.cost.latency import measure_latency

        out["latency"] = measure_latency(net, torch.randn(*shape), threads=threads).to_dict()
    if json_out:
        from frugalml.report.console import print_json

        return print_json(out)
    from frugalml.report.console import stdout_console, table

    con = stdout_console()
    rows = [
        [
            layer.name,
            layer.type,
            f"{layer.params:,}",
            f"{layer.nonzero_params:,}",
            f"{layer.macs:,}",
            f"{layer.macs_effective:,}",
            "x".join(map(str, layer.output_shape or [])),
        ]
        for layer in prof.layers
    ]
    con.print(
        table(
            f"{model} on input {list(shape)}",
            ["layer", "type", "params", "nonzero", "MACs", "MACs (nonzero w)", "output"],
            rows,
            justify_right_from=2,
        )
    )
    from frugalml.cost.currency import si

    con.print(
        f"total: {prof.params:,} params ({prof.nonzero_params:,} nonzero), "
        f"{si(prof.macs, 'MACs')} = {si(prof.flops, 'FLOPs')} forward, "
        f"{si(prof.macs_effective, 'MACs')} on nonzero weights"
    )
    if training:
        con.print(f"training step (fwd+bwd, counted): {si(prof.train_flops, 'FLOPs')}")
    if latency:
        lat = out["latency"]
        con.print(
            f"latency: {lat['median_s'] * 1e3:.3f} ms median (IQR {lat['iqr_s'] * 1e3:.3f} ms, {threads} thread(s))"
        )


@app.command()
def estimate(
    flops: float = typer.Option(None, help="Total FLOPs of the job (e.g. 3.14e23)."),
    hardware: str = typer.Option(None, help="Device profile (see `frugal hardware`)."),
    sustained_tflops: float = typer.Option(None, help="Sustained TFLOPS per device (default: the profile's)."),
    devices: int = typer.Option(1, help="Number of devices working in parallel."),
    power_w: float = typer.Option(None, help="Total power draw of the job in watts."),
    hours: float = typer.Option(None, help="Wall-clock hours of the job."),
    pue: float = typer.Option(None, help="Data-centre PUE (default 1.58 when energy is estimated)."),
    intensity: float = typer.Option(None, help="Grid carbon intensity in g CO2e/kWh."),
    region: str = typer.Option(
        None, help="ISO 3166 alpha-3 country (USA, FRA), cloud region (gcp:us-central1), or world."
    ),
    price_per_hour: float = typer.Option(None, help="USD per device-hour (default: the profile's)."),
    json_out: bool = JSON,
):
    """Footprint of a job too big to run: device-years, kWh, CO2e, dollars."""
    from frugalml.cost.estimate import estimate as run_estimate

    e = run_estimate(
        flops=flops,
        hardware_name=hardware,
        sustained_tflops=sustained_tflops,
        devices=devices,
        power_w=power_w,
        hours=hours,
        pue=pue,
        intensity=intensity,
        region=region,
        price_per_hour=price_per_hour,
    )
    if json_out:
        from frugalml.report.console import print_json

        return print_json(e.to_dict())
    from frugalml.report.console import fmt_num, stdout_console, table

    con = stdout_console()
    rows = [
        ["device-hours", fmt_num(e.device_hours)],
        ["device-years", fmt_num(e.device_years)],
        ["wall-clock hours", fmt_num(e.wall_hours)],
        ["energy (kWh)", fmt_num(e.energy_kwh)],
        ["CO2e (kg)", fmt_num(e.co2e_kg)],
        ["CO2e (lbs)", fmt_num(e.co2e_lbs)],
        ["cost (USD)", "-" if e.cost_usd is None else f"${e.cost_usd:,.0f}"],
    ]
    con.print(table("estimate", ["", "value"], rows))
    for k, v in e.assumptions.items():
        con.print(f"  {k}: {v}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def track(
    ctx: typer.Context,
    region: str = typer.Option(None, help="Where the electricity comes from (ISO alpha-3, cloud region, world)."),
    pue: float = typer.Option(1.0, help="PUE of the machine room (1.0 for a desk)."),
    out: Path = typer.Option(None, help="Also write the result JSON here."),
    json_out: bool = JSON,
):
    """Measure a whole command: frugal track [--region FRA] -- python train.py"""
    import subprocess

    cmd = list(ctx.args)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise FrugalError("no command given: frugal track [options] -- COMMAND ...")
    from frugalml.cost.tracker import Tracker

    tracker = Tracker(region=region, pue=pue, label=" ".join(cmd), out=out, children=True).start()
    try:
        # with --json our stdout carries only the result, so the command's output goes to stderr
        rc = subprocess.call(cmd, stdout=sys.stderr if json_out else None)
    except FileNotFoundError:
        tracker.stop()
        raise FrugalError(f"command not found: {cmd[0]}") from None
    result = tracker.stop()
    payload = result.to_dict() | {"returncode": rc}
    if json_out:
        from frugalml.report.console import print_json

        print_json(payload)
    else:
        from frugalml.report.console import fmt_num, stdout_console, table

        rows = [
            ["wall time (s)", fmt_num(result.wall_s), result.sources["wall_s"]],
            ["CPU time (s)", fmt_num(result.cpu_s), result.sources["cpu_s"]],
            ["energy (J)", fmt_num(result.energy_j), result.sources["energy"]],
            ["CO2e (g)", fmt_num(result.co2e_g), result.sources["co2e"]],
        ]
        stdout_console().print(
            table(f"frugal track: {payload['label']}", ["", "value", "how"], rows, text_columns=(2,))
        )
    raise typer.Exit(rc)


@app.command("hardware")
def hardware_cmd(
    measure: bool = typer.Option(False, help="Measure the host's sustained matmul throughput."),
    json_out: bool = JSON,
):
    """Device profiles and where each figure comes from."""
    from frugalml.cost import hardware as hw

    profiles = hw.all_profiles(measure_host=measure)
    if json_out:
        from frugalml.report.console import print_json

        return print_json({"hardware": [p.to_dict() for p in profiles]})
    from frugalml.report.console import fmt_num, stdout_console, table

    rows = [
        [
            p.name,
            p.description,
            fmt_num(p.peak_fp32_tflops),
            fmt_num(p.peak_fp16_tflops),
            fmt_num(p.sustained_tflops),
            fmt_num(p.tdp_w),
            fmt_num(p.mem_bw_gbs),
            "-" if p.price_per_hour_usd is None else f"${p.price_per_hour_usd:g}",
        ]
        for p in profiles
    ]
    con = stdout_console()
    con.print(
        table(
            "hardware profiles",
            ["name", "device", "FP32 TFLOPS", "FP16 TFLOPS", "sustained", "TDP W", "GB/s", "$/h"],
            rows,
            justify_right_from=2,
        )
    )
    for p in profiles:
        con.print(f"[bold]{p.name}[/bold]: {p.source}")


@app.command("models")
def models_cmd(json_out: bool = JSON):
    """The model registry."""
    from frugalml import models

    entries = {n: models.entry(n) for n in models.names()}
    if json_out:
        from frugalml.report.console import print_json

        return print_json({n: {"default_input": e.default_input, "summary": e.summary} for n, e in entries.items()})
    from frugalml.report.console import stdout_console, table

    rows = [[n, "x".join(map(str, e.default_input)), e.summary] for n, e in entries.items()]
    stdout_console().print(table("models", ["name", "default input", ""], rows, justify_right_from=9))


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Run directory."),
    quick: bool = typer.Option(False, help="Smallest settings (for tests)."),
    json_out: bool = JSON,
):
    """End-to-end tour: train, measure, estimate, then each technique's before/after."""
    from frugalml.demo import run_demo

    rows = run_demo(out, quick=quick, quiet=json_out)
    if json_out:
        from frugalml.report.console import print_json

        print_json({"run_dir": str(out), "rows": rows})


@app.command()
def report(
    run: Path = typer.Argument(..., help="A run directory (anything holding result.json and/or PNG plots)."),
    out: Path = typer.Option(None, help="Where to write the page (default RUN/summary.html)."),
    title: str = typer.Option(None, help="Page title."),
):
    """One self-contained HTML page for a run: before/after table, headline figures, every plot."""
    from frugalml.report.html import write_summary

    print(write_summary(run, out, title))


def main(argv: list[str] | None = None) -> None:
    _add_groups()
    try:
        app(args=argv, prog_name="frugal", standalone_mode=True)
    except FrugalError as e:
        print(f"frugal: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
