"""The `frugal` command. Thin: parse, call the package, print.

Heavy libraries (torch, pandas, codecarbon) are imported inside the commands, so
`frugal --help` stays fast. Each technique package adds its own group from
`frugalml/<package>/cli.py` (a `typer.Typer` named `app`), picked up here.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import typer

from frugalml.cost.carbon import DEFAULT_PUE, PUE_HELP
from frugalml.errors import FrugalError
from frugalml.report.cliopts import config_options, renamed
from frugalml.techniques import TECHNIQUES, optional_import
from frugalml.trainconfig import TrainConfig

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
INTENSITY_HELP = "Grid carbon intensity in g CO2e/kWh (default: the region's)."


def _version(value: bool) -> None:
    if value:
        from frugalml import __version__

        print(f"frugal {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
):
    """Measure what deep learning costs - compute, time, energy, carbon, money - and shrink it."""


@app.command()
def profile(
    model: str = typer.Option(
        ...,
        help="Registry name (see `frugal models`), module:factory, path/to/file.py:factory, "
        "or a Hugging Face architecture with random weights: hf:bert, hf:gpt2, hf:path/to/config.json.",
    ),
    input: list[str] = typer.Option(
        None,
        "--input",
        help="An input, repeatable: shape (1,3,224,224 or 1x128), dtype (1x128:int64), name for a keyword "
        "input (input_ids=1x128:int64). Default: the model's.",
    ),
    kw: list[str] = typer.Option(None, "--kw", help="A keyword argument for the call, repeatable: use_cache=false."),
    by: str = typer.Option("module", "--by", help="Table per 'module' (layer) or per aten 'op'; JSON has both."),
    training: bool = typer.Option(False, help="Also count one training step (forward + backward)."),
    latency: bool = typer.Option(False, help="Also measure latency on this machine."),
    threads: int = typer.Option(1, help="Threads for --latency."),
    json_out: bool = JSON,
):
    """Params, nonzeros, MACs and FLOPs per layer or per op (sparsity-aware)."""
    from frugalml.report.profiling import run

    run(model, input, kw, by=by, training=training, latency=latency, threads=threads, json_out=json_out)


@app.command()
def estimate(
    flops: float = typer.Option(None, help="Total FLOPs of the job (e.g. 3.14e23)."),
    hardware: str = typer.Option(None, help="Device profile (see `frugal hardware`)."),
    sustained_tflops: float = typer.Option(None, help="Sustained TFLOPS per device (default: the profile's)."),
    devices: int = typer.Option(1, help="Number of devices working in parallel."),
    power_w: float = typer.Option(None, help="Total power draw of the job in watts."),
    hours: float = typer.Option(None, help="Wall-clock hours of the job."),
    pue: float = typer.Option(DEFAULT_PUE, help=PUE_HELP),
    intensity: float = typer.Option(None, help=INTENSITY_HELP),
    region: str = typer.Option(
        None, help="ISO 3166 alpha-3 country (USA, FRA), cloud region (gcp:us-central1), or world."
    ),
    price_per_hour: float = typer.Option(None, help="USD per device-hour (default: the profile's)."),
    params: float = typer.Option(None, help="Model parameters N: FLOPs = 6 N D to train (with --tokens)."),
    tokens: float = typer.Option(None, help="Tokens D processed (with --params)."),
    inference: bool = typer.Option(False, help="With --params/--tokens: 2 N D (forward only) instead of 6 N D."),
    mfu: float = typer.Option(None, help="Model-FLOPs utilisation: sustained = this fraction of the device's peak."),
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
        params=params,
        tokens=tokens,
        inference=inference,
        mfu=mfu,
    )
    if json_out:
        from frugalml.report.console import print_json

        return print_json(e.to_dict())
    from frugalml.report.console import fmt_num, stdout_console, table

    con = stdout_console()
    rows = [
        ["FLOPs", fmt_num(e.flops)],
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
        value = "?" if v["value"] is None else f"{v['value']:g} {v['unit']}"
        con.print(f"  {k}: {value} ({v['source']})")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def track(
    ctx: typer.Context,
    region: str = typer.Option(None, help="Where the electricity comes from (ISO alpha-3, cloud region, world)."),
    intensity: float = typer.Option(None, help=INTENSITY_HELP),
    pue: float = typer.Option(DEFAULT_PUE, help=PUE_HELP),
    out: Path = typer.Option(
        None, help="Run directory to create for the record (track.json, spent.json, record.json)."
    ),
    json_out: bool = JSON,
):
    """Measure a whole command: frugal track [--region FRA] -- python train.py"""
    cmd = list(ctx.args)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    _check_track(cmd, pue, intensity, region, out)
    result, rc, spent = _tracked_call(cmd, region, intensity, pue, out, json_out)
    status = "ok" if rc == 0 else f"failed (exit status {rc})"
    payload = result.to_dict() | {"returncode": rc, "failed": rc != 0, "status": status}
    if out is not None:
        _write_track_record(out, cmd, payload, spent)
    if json_out:
        from frugalml.report.console import print_json

        print_json(payload)
    else:
        from frugalml.report.console import fmt_num, stdout_console, table

        rows = [
            ["status", status, f"exit status of {cmd[0]}"],
            ["wall time (s)", fmt_num(result.wall_s), result.sources["wall_s"]],
            ["CPU time (s)", fmt_num(result.cpu_s), result.sources["cpu_s"]],
            ["energy (kWh)", fmt_num(result.energy_kwh), result.sources["energy"]],
            *[
                [f"  {name.upper()} (kWh)", fmt_num(p["kwh"]), f"{p['method']}: {p['how']}"]
                for name, p in result.parts.items()
            ],
            ["CO2e (g)", fmt_num(result.co2e_g), result.sources["co2e"]],
        ]
        con = stdout_console()
        con.print(table(f"frugal track: {payload['label']}", ["", "value", "how"], rows, text_columns=(2,)))
        if rc != 0:
            con.print(f"[bold red]the command failed (exit status {rc})[/bold red]: its cost is still counted")
    if out is not None:
        from frugalml.report.console import print_saved

        print_saved(out, json_out)
    raise typer.Exit(rc)


def _check_track(cmd: list[str], pue: float, intensity: float | None, region: str | None, out: Path | None) -> None:
    """Everything `frugal track` can refuse, before the command runs or --out is made."""
    import shutil

    from frugalml.cost import carbon

    if not cmd:
        raise FrugalError("no command given: frugal track [options] -- COMMAND ...")
    if not pue >= 1:
        raise FrugalError(f"--pue is facility over IT energy and cannot be below 1, got {pue}")
    if intensity is not None and not intensity > 0:
        raise FrugalError(f"--intensity must be positive (g CO2e/kWh), got {intensity}")
    if region is not None and intensity is None:
        carbon.intensity(region)
    if out is not None and (out.suffix == ".json" or out.is_file()):
        raise FrugalError(f"--out takes a run directory, got the file {out}: try --out {out.with_suffix('')}")
    if shutil.which(cmd[0]) is None:
        raise FrugalError(f"command not found: {cmd[0]}")


def _tracked_call(cmd: list[str], region, intensity, pue: float, out: Path | None, json_out: bool):
    """Run `cmd` under a tracker (a ledger in the run directory `out`, if any): (result, status, spent)."""
    import subprocess
    from contextlib import nullcontext

    from frugalml.cost.tracker import Ledger, Tracker

    kwargs = {"region": region, "intensity": intensity, "pue": pue, "label": " ".join(cmd), "children": True}
    ledger = Ledger(out, **kwargs) if out is not None else None
    tracker = ledger.tracker if ledger else Tracker(**kwargs).start()
    with ledger or nullcontext():
        try:
            # with --json our stdout carries only the result, so the command's output goes to stderr
            rc = subprocess.call(cmd, stdout=sys.stderr if json_out else None)
        except FileNotFoundError:
            rc = None
    result = ledger.result if ledger else tracker.stop()
    if rc is None:
        raise FrugalError(f"command not found: {cmd[0]}")
    return result, rc, ledger.total() if ledger else None


def _write_track_record(out: Path, cmd: list[str], payload: dict, spent: dict) -> None:
    from frugalml.files import write_json
    from frugalml.report import record

    write_json(out / "track.json", payload)
    rec = record.build(
        "track",
        quality={},
        config={"command": cmd, "returncode": payload["returncode"], "status": payload["status"]},
        spent=spent,
        artifacts={"tracking": "track.json", "spent": "spent.json"},
    )
    record.write(out, rec)


@app.command("train")
@config_options(TrainConfig, "cfg", helps={"seed": "Seed of the weights' initialisation and of the data order."})
def train_cmd(
    cfg: TrainConfig,
    model: str = typer.Option("mlp", help="A registry model (`frugal models`), sized for the data set."),
    data: str = typer.Option(
        "digits", help="A data set (`frugal data`), or your own data: a .npz/.pt file or module:loader."
    ),
    nproc: int = typer.Option(
        1,
        help="Processes training data-parallel on this machine (torch.distributed: gloo on CPU, nccl on GPU), "
        "--batch-size shared among them; under torchrun, its world instead.",
    ),
    out: Path = typer.Option(None, help="Run directory (default runs/train/<model>-<data>-s<seed>)."),
    json_out: bool = JSON,
):
    """Train a registry model on a data set (seeded, resumes if killed), on one process or several."""
    from frugalml import distributed
    from frugalml.data.user import slug
    from frugalml.files import read_json
    from frugalml.train import TRAIN_RESULT, check_run, train_run

    world = distributed.env_world()
    distributed.check_nproc(nproc, cfg.batch_size)
    out = out or Path("runs/train") / f"{slug(model)}-{slug(data)}-s{cfg.seed}"
    check_run(model, data, cfg, out, max(nproc, world.size))  # every refusal before a process starts
    if nproc > 1 and world.size == 1:
        job = {"model": model, "data": data, "config": asdict(cfg), "out": str(out)}
        distributed.launch(nproc, "frugalml.train:train_run", job, cfg.threads)
        res = read_json(out / TRAIN_RESULT)  # what rank 0 returned
    else:
        res = train_run(model, data, asdict(cfg), str(out), progress=None if not json_out else False).to_dict()
    if not world.main:
        return
    payload = {"run_dir": str(out)} | {k: v for k, v in res.items() if k != "history"}
    if json_out:
        from frugalml.report.console import print_json

        print_json(payload)
    else:
        from frugalml.report.console import stdout_console

        f, n = res["final"], res["processes"]
        stdout_console().print(
            f"{model} on {data}: test accuracy {f['test_accuracy']:.3f} after {f['epoch']} epochs "
            f"({res['seconds']:.1f} s of training, {f'{n} processes' if n > 1 else 'one process'})"
        )
    from frugalml.report.console import print_saved

    print_saved(out, json_out)


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
    from frugalml.models import hf  # transformers itself loads only when such a model is built

    listed = {n: {"default_input": e.default_input, "summary": e.summary} for n, e in map(_entry, models.names())}
    named = "token ids (named inputs: frugal profile shows them)"
    listed |= {n: {"default_input": None, "inputs": named, "summary": s} for n, s in hf.summaries().items()}
    listed[hf.PREFIX + "PATH/config.json"] = {
        "default_input": None,
        "inputs": "named, from the config",
        "summary": "any Hugging Face config.json, random weights, offline",
    }
    if json_out:
        from frugalml.report.console import print_json

        return print_json(listed)
    from frugalml.report.console import stdout_console, table

    rows = [
        [n, "x".join(map(str, e["default_input"])) if e["default_input"] else "named", e["summary"]]
        for n, e in listed.items()
    ]
    stdout_console().print(table("models", ["name", "default input", ""], rows, justify_right_from=9))


def _entry(name: str):
    from frugalml import models

    return name, models.entry(name)


@app.command("data")
def data_cmd(
    name: str = typer.Argument(None, help="A dataset to build and describe (its shapes); default: list them all."),
    json_out: bool = JSON,
):
    """The datasets: where each comes from, the options it takes, and (for one) its shapes."""
    import inspect

    from frugalml import data

    if name is not None:
        ds = data.get(name)
        info = {
            "name": name,
            "x_train": list(ds.x_train.shape),
            "x_test": list(ds.x_test.shape),
            "num_classes": ds.num_classes,
            "input_shape": list(ds.input_shape),
        }
        if json_out:
            from frugalml.report.console import print_json

            return print_json(info)
        return print("  ".join(f"{k}: {v}" for k, v in info.items()))
    entries = {}
    for n in data.names():
        fn = data.entry(n)
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        params = [p for p in inspect.signature(fn).parameters.values() if p.kind in named]
        entries[n] = {
            "source": (inspect.getdoc(fn) or "").splitlines()[0] if inspect.getdoc(fn) else "",
            "module": fn.__module__,
            "required": [p.name for p in params if p.default is inspect.Parameter.empty],
            "options": [p.name for p in params if p.default is not inspect.Parameter.empty],
        }
    if json_out:
        from frugalml.report.console import print_json

        return print_json(entries)
    from frugalml.report.console import stdout_console, table

    rows = [[n, ", ".join(e["required"]) or "-", e["source"]] for n, e in entries.items()]
    con = stdout_console()
    con.print(table("datasets (frugal data NAME for shapes)", ["name", "needs", "what it is"], rows, 9))


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Run directory to create (one sub-directory per step)."),
    quick: bool = typer.Option(False, help="Smallest settings (for tests)."),
    json_out: bool = JSON,
):
    """End-to-end tour: train, measure, estimate, then each technique's before/after."""
    from frugalml.demo import run_demo
    from frugalml.report.console import print_saved

    if out.exists() and not out.is_dir():
        raise FrugalError(f"--out {out} is a file, not a directory")
    rows = run_demo(out, quick=quick, quiet=json_out)
    if json_out:
        from frugalml.report.console import print_json

        print_json({"run_dir": str(out), "rows": rows})
    print_saved(out, json_out)


@app.command(context_settings=renamed({"--out": "--html"}))
def report(
    run: Path = typer.Argument(..., help="A run directory (anything holding result.json and/or PNG plots)."),
    html: Path = typer.Option(None, "--html", help="The HTML file to write (default RUN/summary.html)."),
    title: str = typer.Option(None, help="Page title."),
):
    """One self-contained HTML page for a run: before/after table, headline figures, every plot."""
    from frugalml.report.console import print_saved
    from frugalml.report.html import write_summary

    print_saved(write_summary(run, html, title))


@app.command()
def show(
    run: Path = typer.Argument(..., help="A run directory (holding record.json)."),
    json_out: bool = JSON,
):
    """One run's record: quality, per-inference cost before/after, what producing it spent."""
    from frugalml.report import record

    _emit(record.read(run), json_out, "show")


@app.command()
def compare(
    runs: list[Path] = typer.Argument(..., help="Run directories, or sweep directories (every run below them)."),
    metric: str = typer.Option(None, help="Quality metric to compare on (default: the first run's first metric)."),
    plot: Path = typer.Option(None, help="Also write the quality-vs-cost plot to this PNG file."),
    json_out: bool = JSON,
):
    """Runs side by side: quality, per-inference cost, spent; Pareto fronts marked."""
    from frugalml.report import compare as cmp
    from frugalml.report import record

    records = [r for path in runs for r in record.find(path)]
    result = cmp.compare(records, metric)
    for w in result["warnings"]:
        print(f"frugal: warning: {w}", file=sys.stderr)
    if plot is not None:
        from frugalml.report.views import compare_plot

        result["plot"] = str(compare_plot(result, plot))
    _emit(result, json_out, "compare")
    if plot is not None:
        from frugalml.report.console import print_saved

        print_saved(result["plot"], json_out)


@app.command()
def payback(
    run: Path = typer.Argument(..., help="A run directory (holding record.json) with before/after costs."),
    inferences_per_day: float = typer.Option(..., help="Inferences served per day."),
    days: float = typer.Option(365.0, help="Horizon for the net saving, in days."),
    region: str = typer.Option(None, help="Grid region of the inferences (ISO alpha-3, gcp:REGION, world)."),
    hardware: str = typer.Option(None, help="Price inferences on this `frugal hardware` profile, from MACs."),
    pue: float = typer.Option(DEFAULT_PUE, help=PUE_HELP),
    json_out: bool = JSON,
):
    """When does a technique repay its own cost? Break-even inferences and days, net saving."""
    from frugalml.report import compare as cmp
    from frugalml.report import record

    _emit(cmp.payback(record.read(run), inferences_per_day, days, region, hardware, pue), json_out, "payback")


def _emit(result: dict, json_out: bool, view: str) -> None:
    """`result` as one JSON object, or as `frugalml.report.views.<view>` renders it for people."""
    if json_out:
        from frugalml.report.console import print_json

        return print_json(result)
    from frugalml.report import views
    from frugalml.report.console import stdout_console

    con = stdout_console()
    for part in getattr(views, view)(result):
        con.print(part)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> None:
    """`frugal`: a user's mistake (bad value, unknown option, FrugalError) is one line on
    stderr and exit status 2; `frugal GROUP` alone still prints the group's help."""
    try:  # typer >= 0.25 carries its own copy of click
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover - older typer, click itself
        from click import exceptions as click

    _add_groups()
    try:
        rc = app(args=argv, prog_name="frugal", standalone_mode=False)
    except FrugalError as e:
        print(f"frugal: error: {_one_line(e)}", file=sys.stderr)
        sys.exit(2)
    except click.NoArgsIsHelpError as e:
        e.show()
        sys.exit(e.exit_code)
    except click.UsageError as e:
        where = f" (see: {e.ctx.command_path} --help)" if e.ctx is not None else ""
        print(f"frugal: error: {_one_line(e.format_message())}{where}", file=sys.stderr)
        sys.exit(2)
    except click.ClickException as e:  # a bad file argument and the like
        print(f"frugal: error: {_one_line(e.format_message())}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
