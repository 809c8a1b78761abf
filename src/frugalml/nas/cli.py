"""`frugal nas ...`: train a supernet once, then measure, search and export per device."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from frugalml.errors import FrugalError
from frugalml.report.cliopts import executor_option, given_on_command_line, pick_executor, quick_help, renamed

app = typer.Typer(no_args_is_help=True, help="Hardware-aware architecture search (HAT / Once-for-All).")

JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")
RUN = typer.Option(..., "--run", help="Run directory of `frugal nas train` (the trained supernet).")
TARGET = typer.Option(
    "host-1t",
    "--target",
    help="Where latency is measured or modelled: host-1t, host-2t (this machine, 1 or 2 threads, measured) "
    "or a `frugal hardware` profile (modelled), or ray:NAME (measured on a Ray node that advertises "
    "the resource NAME).",
)
SEED = typer.Option(0, help="Seed of the random choices (sampling, search).")
RENAMED = renamed({"--supernet": "--run", "--device": "--target"})

# --quick: smoke-sized values of the options the user did not give (the whole chain runs in minutes)
QUICK_TRAIN = {"epochs": 3}
QUICK_LATENCY = {"samples": 20}
QUICK_SEARCH = {"population": 16, "parents": 4, "mutations": 6, "crossovers": 6, "iterations": 3, "speed_check": 2}
QUICK_PARETO = {"population": 8, "generations": 3}
# seconds per supernet epoch on the full data, measured on the 2-core development VM with the default
# sandwich rule (4 sub-networks per step); other settings scale it by their sub-networks per step
EPOCH_S = {"cnn": 10.5, "transformer": 11.5, "pointvoxel": 15.0, "pointvoxel-scan": 15.0}


def _quick(on: bool, table: dict, values: dict) -> dict:
    """`--quick`: the table's values for the options not given on the command line."""
    if not on:
        return values
    return values | {k: v for k, v in table.items() if not given_on_command_line(k)}


def _join(executor: str, target: str) -> None:
    """A `ray:NAME` target is measured on the Ray cluster `--executor` names (else `ray:auto`)."""
    ex = pick_executor(executor, join=False)
    if target.startswith("ray:"):
        from frugalml.executor import Executor, connect
        from frugalml.nas.latency import check_device

        connect(ex if ex.kind == "ray" else Executor("ray", address="auto"))
        check_device(target)  # a resource no node advertises: refused before anything is read or written


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise FrugalError(message)


def _note_long(seconds: float, what: str, basis: str) -> None:
    """Before a run of more than ten minutes (after every check): one line on stderr."""
    from frugalml.report.console import warn_if_long

    warn_if_long(seconds, what, basis)


def _warn(res: dict, message: str) -> None:
    """A degenerate result: one line on stderr, and in the JSON under `warnings`."""
    from frugalml.report.console import warn

    res.setdefault("warnings", []).append(message)
    warn(message)


def supernet_run(path: Path) -> Path:
    """`--run` as the chain prints it: the supernet's run directory, or a run directory of
    `nas latency/search/pareto` inside it (`<supernet>/latency/<target>`, `<supernet>/search/...`)."""
    from frugalml.nas.supernet import META

    if not (path / META).is_file() and path.parent.name in ("latency", "search"):
        if (path.parent.parent / META).is_file():
            return path.parent.parent
    return path


def _print(obj, json_out: bool, human) -> None:
    if json_out:
        from frugalml.report.console import print_json

        print_json(obj)
    else:
        from frugalml.report.console import stdout_console

        human(stdout_console())


def _saved(path, json_out: bool) -> None:
    from frugalml.report.console import print_saved

    print_saved(path, json_out)


def _space_or_error(name: str) -> None:
    from frugalml.models import space as spaces

    spaces.get(name)


@app.command("spaces")
def spaces_cmd(json_out: bool = JSON):
    """The registered search spaces and their genes."""
    from frugalml.models import space as spaces

    out = {}
    for n in spaces.names():
        sp = spaces.get(n)
        out[n] = {"genes": {g: list(v) for g, v in sp.genes.items()}, "config": sp.config}

    def human(con):
        for n, d in out.items():
            con.print(f"[bold]{n}[/bold]: {len(d['genes'])} genes")
            for g, v in d["genes"].items():
                con.print(f"  {g}: {v}")

    _print(out, json_out, human)


@app.command()
def train(
    space: str = typer.Option("cnn", "--space", help="Search space (see `frugal nas spaces`)."),
    epochs: int = typer.Option(40, help="Supernet training epochs."),
    sampling: str = typer.Option(
        "sandwich",
        help="uniform (HAT: one random sub-network per step), sandwich (largest + smallest + random ones per "
        "step) or progressive (OFA's progressive shrinking: the largest alone, then more genes elastic stage "
        "by stage, sandwich inside each).",
    ),
    subnets: int = typer.Option(2, help="Random sub-networks per sandwich step (besides the largest and smallest)."),
    distill: bool = typer.Option(
        True, help="Sandwich: smaller sub-networks learn from the largest's outputs (--no-distill: from the labels)."
    ),
    lr: float = typer.Option(0.003, help="Adam learning rate."),
    seed: int = typer.Option(0, help="Seed of initialisation, data order and sub-network sampling."),
    quick: bool = typer.Option(
        False, "--quick", help=quick_help(QUICK_TRAIN).replace("path: ", "path: the small data set, ")
    ),
    out: Path = typer.Option(
        None, help="Run directory (default runs/nas/<space>-s<seed>, -quick added under --quick)."
    ),
    nproc: int = typer.Option(
        1,
        help="Processes training data-parallel on this machine (torch.distributed: gloo on CPU), "
        "the batch of 64 examples shared among them; under torchrun, its world instead.",
    ),
    json_out: bool = JSON,
):
    """Train the weight-sharing supernet (resumes if killed), on one process or several."""
    from frugalml import distributed
    from frugalml.nas import records
    from frugalml.nas.supernet import SAMPLINGS, SupernetConfig, check_resumable, supernet_training, train_supernet

    epochs = _quick(quick, QUICK_TRAIN, {"epochs": epochs})["epochs"]
    _space_or_error(space)
    if quick and sampling == "progressive":  # one epoch per stage at least
        from frugalml.models import space as spaces

        epochs = max(epochs, len(spaces.get(space).shrink_stages()))
    _check(sampling in SAMPLINGS, f"unknown --sampling '{sampling}' ({', '.join(SAMPLINGS)})")
    _check(epochs >= 1, f"--epochs must be >= 1, got {epochs}")
    _check(subnets >= 0, f"--subnets must be >= 0, got {subnets}")
    _check(lr > 0, f"--lr must be > 0, got {lr:g}")
    _check(out is None or not out.is_file(), f"--out {out} is a file, not a directory")
    train = supernet_training(epochs=epochs, lr=lr)
    world = distributed.env_world()
    distributed.check_nproc(nproc, train.batch_size)
    cfg = SupernetConfig(
        space=space, sampling=sampling, subnets=subnets, distill=distill, seed=seed, quick=quick, train=train
    )
    out = out or Path("runs/nas") / f"{space}-s{seed}{'-quick' if quick else ''}"
    fresh = not (out / "result.json").exists()
    if fresh and max(nproc, world.size) > 1:
        distributed.backend_for(train.device)
    check_resumable(cfg, out)
    if not quick and fresh:  # after the last check: a long-run note must not precede an error
        per_step = 1 if sampling == "uniform" else 2 + subnets  # sub-networks trained per step (an upper bound)
        per_epoch = EPOCH_S.get(space, 0.0) * per_step / 4
        basis = f"{per_epoch:.3g} s per epoch of the full data, from {EPOCH_S.get(space, 0.0):g} s measured here"
        _note_long(epochs * per_epoch, f"nas train --space {space} --epochs {epochs}", basis)
    if fresh and nproc > 1 and world.size == 1:
        job = {"config": asdict(cfg), "out": str(out)}
        distributed.launch(nproc, "frugalml.nas.supernet:train_job", job, train.threads)
    if not world.main:  # started by torchrun: rank 0 writes and prints
        train_supernet(cfg, out, track=True, progress=False)
        return
    res = records.train(cfg, out, progress=None if not json_out else False)
    res = {"run_dir": str(out)} | {k: v for k, v in res.items() if k != "history"} | {"final": res["history"][-1]}

    def human(con):
        f = res["final"]
        con.print(
            f"supernet '{space}' trained {f['epoch']} epochs in {res['seconds']:.1f} s "
            f"({res['params']:,} params); largest sub-network val accuracy {f['test_accuracy']:.3f} "
            f"(before BN recalibration), smallest {res['smallest_val_accuracy']:.3f} (recalibrated)"
        )

    _print(res, json_out, human)
    _saved(out, json_out)


@app.command("latency", context_settings=RENAMED)
def latency_cmd(
    run: Path = RUN,
    target: str = TARGET,
    samples: int = typer.Option(300, help="Sub-networks to measure (at least 10 on a measured target)."),
    seed: int = SEED,
    quick: bool = typer.Option(False, "--quick", help=quick_help(QUICK_LATENCY)),
    executor: str = executor_option(),
    json_out: bool = JSON,
):
    """Measure sub-networks on a target, fit the latency predictors, report their error vs the noise floor."""
    from frugalml.nas import records

    _join(executor, target)
    samples = _quick(quick, QUICK_LATENCY, {"samples": samples})["samples"]
    run = supernet_run(run)
    res = records.latency(run, target, samples, seed=seed, progress=False if json_out else None)
    for k in ("mlp", "lut"):
        if k in res:
            res[k].pop("scatter", None)
    data = run / "latency" / f"{target}.json"
    if data.is_file():  # the range a --latency-ms budget for `nas search` lies in
        from frugalml.files import read_json

        ms = [r["latency_ms"] for r in read_json(data)["records"]]
        res["latency_range_ms"] = [min(ms), max(ms)]

    def human(con):
        from frugalml.report.console import fmt_num, table

        if "latency_range_ms" in res:
            lo, hi = res["latency_range_ms"]
            how = "modelled" if res["modelled"] else "measured"
            con.print(f"sub-networks {how} on {target}: {lo:.3g}-{hi:.3g} ms (a `nas search --latency-ms` in between)")
        if res["modelled"]:
            con.print(f"{target}: modelled target ({res['note']})")
            return
        rows = []
        for name, label in (
            ("noise_floor", "repeat measurement (noise floor)"),
            ("mlp", "MLP predictor (HAT)"),
            ("lut", "per-operator lookup table"),
        ):
            m = res.get(name)
            if m:
                rows.append([label, fmt_num(m["rmse_ms"]), fmt_num(m["mape_pct"]), fmt_num(m["kendall_tau"])])
        con.print(
            table(
                f"latency predictors on {target}: {res['n_test']} held-out of {res['samples']} measured",
                ["", "RMSE ms", "MAPE %", "Kendall tau"],
                rows,
            )
        )

    _print(res, json_out, human)
    _saved(res["run_dir"], json_out)


@app.command("search", context_settings=RENAMED)
def search_cmd(
    run: Path = RUN,
    target: str = TARGET,
    latency_ms: float = typer.Option(..., "--latency-ms", help="Latency budget in ms (predicted, batch 1)."),
    population: int = typer.Option(125, help="Sub-networks per generation."),
    parents: int = typer.Option(25, help="Best sub-networks kept as parents each generation."),
    mutations: int = typer.Option(50, help="Children made by mutation each generation."),
    crossovers: int = typer.Option(50, help="Children made by crossover each generation."),
    iterations: int = typer.Option(30, help="Generations."),
    mutate_prob: float = typer.Option(0.3, help="Probability that a mutation changes each gene."),
    seed: int = SEED,
    speed_check: int = typer.Option(
        8,
        help="Re-measure this many nets of the latency data near the budget first and scale the predictor "
        "by the target's speed now (0: trust the predictor as fitted).",
    ),
    quick: bool = typer.Option(False, "--quick", help=quick_help(QUICK_SEARCH)),
    executor: str = executor_option(),
    json_out: bool = JSON,
):
    """Evolutionary search (HAT settings by default) for the most accurate sub-network under a budget."""
    _join(executor, target)
    from frugalml.nas import records
    from frugalml.nas.search import EvolutionConfig

    given = {"population": population, "parents": parents, "mutations": mutations, "crossovers": crossovers}
    given |= {"iterations": iterations, "speed_check": speed_check}
    v = _quick(quick, QUICK_SEARCH, given)
    ok = 0 < latency_ms < float("inf")
    _check(ok, f"--latency-ms must be > 0 and finite (a latency budget in ms), got {latency_ms:g}")
    _check(v["population"] >= 1, f"--population must be >= 1, got {v['population']}")
    _check(
        1 <= v["parents"] <= v["population"],
        f"--parents must be in 1..{v['population']} (--population), got {v['parents']}",
    )
    _check(v["mutations"] >= 0 and v["crossovers"] >= 0, "--mutations and --crossovers must be >= 0")
    _check(v["iterations"] >= 1, f"--iterations must be >= 1, got {v['iterations']}")
    _check(0 <= mutate_prob <= 1, f"--mutate-prob must be in [0, 1], got {mutate_prob:g}")
    _check(v["speed_check"] >= 0, f"--speed-check must be >= 0, got {v['speed_check']}")
    speed = v.pop("speed_check")
    cfg = EvolutionConfig(**v, mutate_prob=mutate_prob, seed=seed)
    res = records.search(
        supernet_run(run),
        target,
        latency_ms,
        cfg,
        progress=False if json_out else None,
        speed_check=speed,
        note=None if quick else _note_long,
    )
    res.pop("history", None)
    measured = res.get("measured_latency_ms")
    if measured is not None and not res["modelled"] and measured > latency_ms:
        _warn(
            res,
            f"the winner measures {measured:.3f} ms on {target}, over the {latency_ms:g} ms budget "
            f"by {100 * (measured / latency_ms - 1):.1f}%: lower --latency-ms or remeasure with `frugal nas latency`",
        )
    _print(res, json_out, lambda con: _print_search(con, res, target, latency_ms))
    _saved(res["run_dir"], json_out)


def _print_search(con, res: dict, target: str, latency_ms: float) -> None:
    sc = res["speed_check"]
    if sc:
        ratios = [r["now_ms"] / r["data_ms"] for r in sc["references"]]
        con.print(
            f"speed check: {target} runs {sc['factor']:.2f}x the latency predictor "
            f"(spread {min(ratios):.2f}-{max(ratios):.2f} over {len(ratios)} nets re-measured near the budget)"
        )
    if res["modelled"]:  # a hardware profile: the roofline model is the predictor and the measurement
        latency = f"modelled {res['measured_latency_ms']:.3f} ms"
    else:
        latency = f"predicted {res['predicted_latency_ms']:.3f} ms, measured {res['measured_latency_ms']:.3f} ms"
    con.print(
        f"best under {latency_ms:g} ms on {target}: val accuracy {res['accuracy']:.3f}, test "
        f"{res['test_accuracy']:.3f}; {latency}; {res['macs']:,} MACs; {res['evaluations']} sub-networks "
        f"evaluated in {res['search_seconds']:.1f} s"
    )
    con.print(f"arch: {res['arch']}")


@app.command(context_settings=RENAMED)
def pareto(
    run: Path = RUN,
    target: str = TARGET,
    population: int = typer.Option(40, help="Sub-networks per generation."),
    generations: int = typer.Option(15, help="NSGA-II generations."),
    seed: int = SEED,
    quick: bool = typer.Option(False, "--quick", help=quick_help(QUICK_PARETO)),
    json_out: bool = JSON,
):
    """NSGA-II accuracy/latency front vs random search with the same number of evaluations."""
    from frugalml.nas import records

    v = _quick(quick, QUICK_PARETO, {"population": population, "generations": generations})
    _check(v["population"] >= 2, f"--population must be >= 2, got {v['population']}")
    _check(v["generations"] >= 1, f"--generations must be >= 1, got {v['generations']}")
    res = records.pareto(
        supernet_run(run), target, v["population"], v["generations"], seed=seed, note=None if quick else _note_long
    )

    def human(con):
        from frugalml.report.console import fmt_num, table

        hv = res["hypervolume"]
        ref = fmt_num(hv["reference"]["latency_ms"])
        con.print(
            f"{res['evaluations']} evaluations each; hypervolume NSGA-II {fmt_num(hv['nsga2'])} vs random "
            f"{fmt_num(hv['random'])} (reference: error 1, {ref} ms)"
        )
        how = "modelled" if res["modelled"] else "measured"
        rows = [
            [
                fmt_num(m["predicted_latency_ms"]),
                fmt_num(m["measured_latency_ms"]),
                fmt_num(m["test_accuracy"]),
                f"{m['macs']:,}",
            ]
            for m in res["measured_front"]
        ]
        con.print(table(f"front on {target} ({how} members)", ["predicted ms", f"{how} ms", "test acc", "MACs"], rows))

    _print(res, json_out, human)
    _saved(res["run_dir"], json_out)


@app.command(context_settings=renamed({"--supernet": "--run"}))
def export(
    run: Path = RUN,
    arch: Path = typer.Option(
        ...,
        "--arch",
        help="The sub-network's architecture: arch.json, a search result JSON, or a `frugal nas search` run directory.",
    ),
    out: Path = typer.Option(..., help="Directory to create: arch.json, model.safetensors, record.json."),
    finetune_epochs: int = typer.Option(0, help="Fine-tune the sub-network for this many epochs."),
    target: str = typer.Option(
        None,
        "--target",
        help="Also compare its latency with the largest sub-network's where latency is measured or modelled: "
        "host-1t, host-2t (measured here, interleaved rounds) or a `frugal hardware` profile (modelled); "
        "default: no latency.",
    ),
    format: str = typer.Option(
        "safetensors",
        "--format",
        help="safetensors (arch.json + model.safetensors) | onnx (also model.onnx, checked in onnxruntime and "
        "timed at batch 1 and 256 beside PyTorch; needs frugalml[deploy]).",
    ),
    data: str = typer.Option(
        None,
        "--data",
        help="Your own data to recalibrate, fine-tune and test on: a .npz/.pt file or module:loader "
        "(default: the supernet's data set).",
    ),
    json_out: bool = JSON,
):
    """Write a sub-network as a standalone module: arch.json + model.safetensors (load it with `frugalml.load`)."""
    from frugalml.nas import records
    from frugalml.nas.supernet import load_supernet

    _check(finetune_epochs >= 0, f"--finetune-epochs must be >= 0, got {finetune_epochs}")
    _check(not out.is_file(), f"--out {out} is a file, not a directory")
    run = supernet_run(run)
    space, _, _ = load_supernet(run)
    arch = _arch_of(space, arch)
    res = records.export(run, arch, out, finetune_epochs=finetune_epochs, target=target, fmt=format, data=data)
    m = res.get("latency")
    if m and not m["modelled"] and m["spread"][0] <= 1 <= m["spread"][1]:
        _warn(res, f"on {target} the exported net's latency is within the measurement spread of the largest's")
    for b, row in res.get("deploy", {}).get("latency", {}).items():
        r = row["ratios"]["onnxruntime/export"]
        if r["within_spread"]:
            lo, hi = r["spread"]
            _warn(
                res,
                f"batch {b}: onnxruntime/PyTorch latency {r['ratio']:.2f}x, "
                f"rounds {lo:.2f}-{hi:.2f}: no measured difference",
            )

    def human(con):
        acc = f"test accuracy {res['test_accuracy']:.3f}"
        if "test_accuracy_finetuned" in res:
            acc = (
                f"test accuracy {res['test_accuracy_finetuned']:.3f} after {finetune_epochs} epochs of fine-tuning "
                f"({res['test_accuracy']:.3f} before)"
            )
        con.print(f"exported: {acc}, {res['macs']:,} MACs")
        if m:
            how = "modelled"
            if not m["modelled"]:
                how = f"measured, spread {m['spread'][0]:.2f}-{m['spread'][1]:.2f}x over {m['rounds']} rounds"
            con.print(
                f"latency on {target}: {m['latency_ms']:.3f} ms vs {m['largest_ms']:.3f} ms for the largest "
                f"sub-network: {m['ratio']:.2f}x ({how})"
            )
        if "deploy" in res:
            _print_deploy(con, res["deploy"])

    _print(res, json_out, human)
    _saved(out, json_out)


def _print_deploy(con, dep: dict) -> None:
    """The ONNX file: agreement with PyTorch, size, accuracy and latency beside eager (round ranges)."""
    from frugalml.report.console import table

    acc = f"{dep['accuracy_onnx']:.3f}" if "accuracy_onnx" in dep else "-"

    def cell(lat, name):
        lo, hi = lat[f"{name}_spread_s"]
        return f"{lat[f'{name}_s'] * 1e6:.1f} ({lo * 1e6:.1f}-{hi * 1e6:.1f})"

    rows = [
        [f"batch {b}", cell(lat, "largest"), cell(lat, "export"), cell(lat, "onnxruntime")]
        for b, lat in dep.get("latency", {}).items()
    ]
    con.print(
        table(
            "latency in us: median of rounds (range)",
            ["", "largest, eager", "exported, eager", "exported, onnxruntime"],
            rows,
        )
    )
    con.print(
        f"size on disk: largest {dep['bytes_largest']:,} bytes (safetensors, test accuracy "
        f"{dep['accuracy_largest']:.3f}), exported {dep['bytes_safetensors']:,} (safetensors), "
        f"{dep['bytes_onnx']:,} (ONNX)"
    )
    con.print(
        f"written: {dep['onnx']} ({dep['bytes_onnx']:,} bytes, test accuracy {acc}; "
        f"onnxruntime vs PyTorch: max |difference| {dep['onnx_max_abs_diff']:.2e} on {dep['onnx_checked_on']})"
    )


def _arch_of(space, path: Path) -> dict:
    """`--arch`: an architecture JSON, a search result JSON, or a `frugal nas search` run directory."""
    from frugalml.nas.pipeline import read_arch

    if path.is_dir():  # a search's run directory: the result its record names
        from frugalml.report import record

        rec = record.read(path) if (path / record.FILENAME).is_file() else {}
        if rec.get("kind") != "nas.search" or "result" not in rec.get("artifacts", {}):
            what = f"a {rec['kind']} run" if rec.get("kind") else "no record.json"
            raise FrugalError(f"--arch {path} is not a `frugal nas search` run directory ({what})")
        path = path / rec["artifacts"]["result"]
    try:
        return read_arch(space, path)
    except FrugalError as e:
        raise FrugalError(f"--arch: {e}" if str(path) in str(e) else f"--arch {path}: {e}") from None
