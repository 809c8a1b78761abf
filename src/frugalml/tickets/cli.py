"""`frugal tickets ...`: find, stability, transfer, export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from frugalml.errors import FrugalError
from frugalml.report.cliopts import (
    config_options,
    deprecated,
    executor_option,
    parse_seeds,
    pick_executor,
    renamed,
    seeds_option,
    workers_option,
)
from frugalml.report.console import print_saved, warn, warn_if_long
from frugalml.tickets.config import TicketConfig

app = typer.Typer(no_args_is_help=True, help="Lottery tickets: find, test, transfer, export.")
JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x['mean']:.2f} ± {100 * x['std']:.2f}"


SEEDS = "0,1"


def _seeded(cfg: TicketConfig, seeds: str, first_seed: int | None) -> TicketConfig:
    """`cfg` with the run's seeds: `--seeds` as a list or range of consecutive seeds (the config
    keeps them as first seed and count, as config.json of earlier runs does). The old spelling,
    `--first-seed F [--seeds N]`, still means the N (default 2) seeds from F."""
    if first_seed is not None:
        text = "2" if seeds == SEEDS else seeds.strip()
        if not text.isdigit():
            raise FrugalError("--first-seed (deprecated) goes only with a count --seeds N: give --seeds F-L instead")
        n = int(text)
        deprecated("--first-seed", f"--seeds {first_seed}-{first_seed + max(n, 1) - 1}")
        return replace(cfg, first_seed=first_seed, seeds=n)
    listed = parse_seeds(seeds)
    if listed != list(range(listed[0], listed[0] + len(listed))):
        raise FrugalError(f"tickets find takes consecutive seeds (e.g. 0-2 or 3,4,5), got '{seeds}'")
    return replace(cfg, first_seed=listed[0], seeds=len(listed))


# one training epoch of LeNet-300-100 (mlp) over one example, evaluation and checkpoints
# included: `tickets find --quick` at --epochs 8 minus at --epochs 2 (23.3 s for 34,488
# example-epochs, nice'd on a shared 2-core machine). Rough on purpose: conv models cost more.
EPOCH_EXAMPLE_S = 6.8e-4
TRAIN_EXAMPLES = {"mnist1d": 4000, "digits": 1437}


def find_seconds(cfg: TicketConfig, workers: int) -> float:
    """Rough wall time of `tickets find`: trainings x epochs x training examples x a measured cost."""
    trainings = cfg.seeds * (1 + cfg.levels * (1 + len(cfg.controls)))
    examples = TRAIN_EXAMPLES.get(cfg.data.split(":")[0], 4000)
    return trainings * cfg.train.epochs * examples * EPOCH_EXAMPLE_S / min(workers, 2)


def _slug_model(model: str) -> str:
    """A directory-name-safe model name (`path/to/nets.py:my_cnn` -> `nets_my_cnn`)."""
    module, _, attr = model.rpartition(":")
    return f"{Path(module).stem}_{attr}" if module else model


def _slug_data(data: str) -> str:
    from frugalml.data.user import slug

    return slug(data)


def below_random_warnings(res: dict) -> list[str]:
    """One warning per pruned level whose ticket is less accurate than its random-pruning control."""
    out = []
    for lv in res["levels"]:
        ticket, control = lv.get("accuracy"), lv.get("random_accuracy")
        if lv["level"] > 0 and ticket and control and ticket["mean"] < control["mean"]:
            out.append(
                f"level {lv['level']} ({100 * lv['remaining']:.1f}% remaining): ticket accuracy "
                f"{_pct(ticket)}% is below its random-pruning control {_pct(control)}%"
            )
    return out


@app.command()
@config_options(
    TicketConfig,
    skip=("seeds", "first_seed", "train.seed", "train.eval_batch_size", "train.threads", "train.device"),
    helps={"train.epochs": "Training epochs per level."},
    quick={"data": "digits", "levels": 1, "train.epochs": 2, "seeds": "0-0"},
)
def find(
    cfg: TicketConfig,
    seeds: str = seeds_option(SEEDS, "Seeds, each a ticket of its own (model init and data order), consecutive"),
    first_seed: int = typer.Option(None, "--first-seed", hidden=True, help="Deprecated: use --seeds F-L."),
    workers: int = workers_option(),
    executor: str = executor_option(),
    out: Path = typer.Option(None, help="Run directory (default runs/tickets/<model>-<data>)."),
    json_out: bool = JSON,
):
    """Iterative magnitude pruning with rewinding, plus controls, over seeds (resumes if killed)."""
    from frugalml.tickets.imp import check
    from frugalml.tickets.imp import find as run_find

    cfg = _seeded(cfg, seeds, first_seed)
    ex = pick_executor(executor, workers)
    check(cfg)  # everything is refused before the note on the run's length, and before --out is made
    model, data = cfg.model, cfg.data
    out = out or Path("runs/tickets") / f"{_slug_model(model)}-{_slug_data(data)}"
    basis = f"{cfg.seeds} seeds x {cfg.levels} levels x {cfg.train.epochs} epochs, controls included"
    warn_if_long(find_seconds(cfg, ex.workers), "tickets find", basis)
    res = run_find(cfg, out, executor=ex, progress=None)
    warnings = below_random_warnings(res)
    if json_out:
        from frugalml.report.console import print_json

        print_json(res | {"warnings": warnings})
        return print_saved(out, json_out)
    from frugalml.report.console import stdout_console, table

    rows = [
        [
            lv["level"],
            f"{100 * lv['remaining']:.2f}",
            _pct(lv["accuracy"]),
            _pct(lv["reinit_accuracy"]),
            _pct(lv["random_accuracy"]),
            f"{lv['macs_effective']:,}",
        ]
        for lv in res["levels"]
    ]
    con = stdout_console()
    con.print(
        table(
            f"tickets: {model} on {data}, seeds {res['seeds']}, rewind {cfg.rewind}",
            ["level", "remaining %", "ticket acc %", "reinit acc %", "random acc %", "MACs (nonzero)"],
            rows,
            justify_right_from=0,
        )
    )
    con.print(f"plot: {res['plot']}")
    for w in warnings:
        warn(w)
    print_saved(out)


@app.command()
def stability(
    run: Path = typer.Option(..., help="Run directory of `frugal tickets find`."),
    level: int = typer.Option(..., help="Level to test."),
    points: int = typer.Option(11, help="Points on the linear path (>= 3)."),
    json_out: bool = JSON,
):
    """Linear mode connectivity: error barrier between two copies trained from the rewind point."""
    from frugalml.tickets.instability import stability as run_stability

    if points < 3:
        raise FrugalError(f"--points must be >= 3 (the two ends and a midpoint), got {points}")
    res = run_stability(run, level, points=points)
    where = Path(run) / f"level_{level}"  # stability.json, its plot and record
    if json_out:
        from frugalml.report.console import print_json

        print_json(res)
        return print_saved(where, json_out)
    from frugalml.report.console import stdout_console, table

    con = stdout_console()
    rows = [
        [s["seed"], f"{100 * s['barrier']:.2f}", f"{100 * s['train_barrier']:.2f}", "yes" if s["stable"] else "no"]
        for s in res["seeds"]
    ]
    con.print(
        table(
            f"stability: level {level} ({100 * res['remaining']:.1f}% remaining), rewind {res['rewind']}",
            ["seed", "test barrier %", "train barrier %", "stable (<2%)"],
            rows,
            justify_right_from=0,
        )
    )
    con.print(
        f"mean barrier {100 * res['barrier']:.2f}%: {'stable' if res['stable'] else 'unstable'}; plot: {res['plot']}"
    )
    print_saved(where)


RUN_TICKET = "Run directory of a ticket of `frugal tickets find`:"


@app.command(context_settings=renamed({"--ticket": "--run"}))
def transfer(
    run: Path = typer.Option(..., "--run", help=f"{RUN_TICKET} DIR/level_L (all seeds) or DIR/level_L/seed_S."),
    data: str = typer.Option(
        ...,
        help="Target task, e.g. digits:classes=5-9 or mnist1d:shear_scale=1.2, or your own data: "
        "a .npz/.pt file or module:loader.",
    ),
    reinit_output: bool = typer.Option(
        None, "--reinit-output/--keep-output", help="Re-initialise the output layer (default: when classes differ)."
    ),
    adapt: str = typer.Option(None, help="How to adapt another input size (none implemented: an error names it)."),
    out: Path = typer.Option(None, help="Output directory (default DIR/level_L/transfer/<task>)."),
    executor: str = executor_option(),
    json_out: bool = JSON,
):
    """Train a ticket found on one task on another; compare with the target's own ticket and random pruning."""
    from frugalml.tickets.transferring import transfer as run_transfer

    ex = pick_executor(executor)
    res = run_transfer(run, data, out=out, reinit_output=reinit_output, adapt=adapt, executor=ex)
    if json_out:
        from frugalml.report.console import print_json

        print_json(res)
        return print_saved(res["out"], json_out)
    from frugalml.report.console import stdout_console, table

    rows = [
        ["transferred ticket", _pct(res["transferred_accuracy"])],
        ["ticket found on target", _pct(res["target_ticket_accuracy"])],
        ["random pruning", _pct(res["random_accuracy"])],
        ["dense on target", _pct(res["target_dense_accuracy"])],
    ]
    con = stdout_console()
    con.print(
        table(
            f"transfer {res['source']} -> {res['target']} at {100 * res['remaining']:.1f}% remaining "
            f"(output layer re-initialised: {res['reinit_output']})",
            ["", "test accuracy %"],
            rows,
        )
    )
    print_saved(res["out"])


@app.command(context_settings=renamed({"--ticket": "--run"}))
def export(
    run: Path = typer.Option(..., "--run", help=f"{RUN_TICKET} DIR/level_L (first seed) or DIR/level_L/seed_S."),
    format: str = typer.Option(
        "compact",
        "--format",
        help="compact (empty units removed) | sparse (CSR Linear where measured faster) | "
        "onnx (model.onnx, checked in onnxruntime; needs frugalml[deploy]).",
    ),
    out: Path = typer.Option(None, help="Output directory (default <run>/export_<format>)."),
    json_out: bool = JSON,
):
    """Export a trained ticket; report file size and measured CPU latency next to the dense model.

    Load the export back with `frugalml.load(DIR)`."""
    from frugalml.tickets.exporting import export as run_export

    res = run_export(run, format, out=out)
    warnings = export_warnings(res)
    for w in warnings:
        warn(w)
    if json_out:
        from frugalml.report.console import print_json

        print_json(res | {"warnings": warnings})
        return print_saved(res["out"], json_out)
    from frugalml.report.console import stdout_console

    con = stdout_console()
    con.print(_onnx_table(res) if format == "onnx" else _export_table(res))
    if res.get("layers"):
        con.print(_layers_table(res["layers"]))
    con.print(f"written: {res['file']}  (max |logit difference| {res['max_abs_diff']:.2e})")
    if format == "onnx":
        con.print(
            f"written: {res['onnx']}  (onnxruntime vs PyTorch: max |logit difference| "
            f"{res['onnx_max_abs_diff']:.2e} on {res['onnx_checked_on']})"
        )
    print_saved(res["out"])


def export_warnings(res: dict) -> list[str]:
    """One warning per latency comparison whose measured ratio lies within its spread."""
    out = []
    for b, lat in (res.get("latency") or {}).items():
        if lat.get("within_spread"):
            out.append(
                f"batch {b}: exported/dense latency {_ratio(lat)} lies within its measurement spread: "
                "no measured difference"
            )
        for pair, r in (lat.get("ratios") or {}).items():
            if r["within_spread"]:
                lo, hi = r["spread"]
                out.append(
                    f"batch {b}: {pair} latency {r['ratio']:.3f}x (rounds {lo:.3f}-{hi:.3f}) includes 1: "
                    "no measured difference"
                )
    return out


def _export_table(res: dict):
    from frugalml.report.console import table

    rows = [
        ["file size (bytes)", f"{res['bytes_dense']:,}", f"{res['bytes_export']:,}", f"{1 / res['size_ratio']:.3f}x"]
    ]
    for b, lat in (res.get("latency") or {}).items():
        rows.append(
            [f"latency, batch {b} (us)", f"{lat['dense_s'] * 1e6:.1f}", f"{lat['export_s'] * 1e6:.1f}", _ratio(lat)]
        )
    rows.append(["test accuracy", f"{res['accuracy_dense']:.4f}", f"{res['accuracy_export']:.4f}", ""])
    return table(
        f"export {res['format']}: {100 * res['remaining']:.2f}% of weights remaining",
        ["", "dense (masked)", "exported", "exported/dense"],
        rows,
    )


def _onnx_table(res: dict):
    """Dense (masked) and exported in PyTorch eager beside the ONNX file in onnxruntime."""
    from frugalml.report.console import table

    rows = [
        ["file size (bytes)", f"{res['bytes_dense']:,}", f"{res['bytes_export']:,}", f"{res['bytes_onnx']:,}", ""],
    ]
    for b, lat in (res.get("latency") or {}).items():
        r = lat["ratios"]["onnxruntime/dense"]
        rows.append(
            [
                f"latency, batch {b} (us)",
                _spread_us(lat, "dense"),
                _spread_us(lat, "export"),
                _spread_us(lat, "onnxruntime"),
                f"{r['ratio']:.3f}x ({r['spread'][0]:.3f}-{r['spread'][1]:.3f})",
            ]
        )
    acc = [f"{res[k]:.4f}" for k in ("accuracy_dense", "accuracy_export", "accuracy_onnx")]
    rows.append(["test accuracy", *acc, ""])
    return table(
        f"export onnx ({res['arch'].get('torch', 'compact')}): {100 * res['remaining']:.2f}% of weights remaining; "
        "latency: median of rounds (range)",
        ["", "dense (masked), eager", "exported, eager", "onnxruntime", "onnxruntime/dense"],
        rows,
    )


def _spread_us(lat: dict, name: str) -> str:
    lo, hi = lat[f"{name}_spread_s"]
    return f"{lat[f'{name}_s'] * 1e6:.1f} ({lo * 1e6:.1f}-{hi * 1e6:.1f})"


def _layers_table(layers: list[dict]):
    """The sparse export's verdict per Linear layer: the kernel kept, and the timings it rests on."""
    from frugalml.report.console import table

    def us(row, k):
        return f"{row[k] * 1e6:.1f}" if k in row else "-"

    rows = [
        [
            r["layer"],
            r["kernel"],
            us(r, "csr_s"),
            us(r, "dense_s"),
            f"{r['csr_over_dense']:.3f}x" if "csr_s" in r else "",
        ]
        for r in layers
    ]
    return table(
        "per layer: CSR kept only where measured faster", ["layer", "kept", "CSR (us)", "dense (us)", "CSR/dense"], rows
    )


def _ratio(lat: dict) -> str:
    """exported/dense latency with its spread (from the two medians' interquartile ranges)."""
    return f"{lat['ratio']:.3f}x ± {lat['ratio_spread']:.3f}"
