"""`frugal nas ...`: train a supernet once, then measure, search and export per device."""

from __future__ import annotations

from pathlib import Path

import typer

from frugalml.report.cliopts import renamed

app = typer.Typer(no_args_is_help=True, help="Hardware-aware architecture search (HAT / Once-for-All).")

JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")
RUN = typer.Option(..., "--run", help="Run directory of `frugal nas train` (the trained supernet).")
TARGET = typer.Option(
    "host-1t",
    "--target",
    help="Where latency is measured or modelled: host-1t, host-2t (this machine, 1 or 2 threads, measured) "
    "or a `frugal hardware` profile (modelled).",
)
SEED = typer.Option(0, help="Seed of the random choices (sampling, search).")
RENAMED = renamed({"--supernet": "--run", "--device": "--target"})


def _print(obj, json_out: bool, human) -> None:
    if json_out:
        from frugalml.report.console import print_json

        print_json(obj)
    else:
        from frugalml.report.console import stdout_console

        human(stdout_console())


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
    sampling: str = typer.Option("sandwich", help="uniform (HAT: one random sub-network per step) or sandwich."),
    subnets: int = typer.Option(2, help="Random sub-networks per sandwich step (besides the largest and smallest)."),
    distill: bool = typer.Option(
        True, help="Sandwich: smaller sub-networks learn from the largest's outputs (--no-distill: from the labels)."
    ),
    lr: float = typer.Option(0.003, help="Adam learning rate."),
    seed: int = typer.Option(0, help="Seed of initialisation, data order and sub-network sampling."),
    quick: bool = typer.Option(False, help="Small data set (tests)."),
    out: Path = typer.Option(None, help="Run directory (default runs/nas/<space>-s<seed>)."),
    json_out: bool = JSON,
):
    """Train the weight-sharing supernet (resumes if killed)."""
    from frugalml.nas import records
    from frugalml.nas.supernet import SupernetConfig, supernet_training

    _space_or_error(space)
    train = supernet_training(epochs=epochs, lr=lr)
    cfg = SupernetConfig(
        space=space, sampling=sampling, subnets=subnets, distill=distill, seed=seed, quick=quick, train=train
    )
    out = out or Path("runs/nas") / f"{space}-s{seed}"
    res = records.train(cfg, out, progress=None if not json_out else False)
    res = {"run_dir": str(out)} | {k: v for k, v in res.items() if k != "history"} | {"final": res["history"][-1]}

    def human(con):
        f = res["final"]
        con.print(
            f"supernet '{space}' trained {f['epoch']} epochs in {res['seconds']:.1f} s "
            f"({res['params']:,} params); largest sub-network val accuracy {f['test_accuracy']:.3f} "
            f"(before BN recalibration), smallest {res['smallest_val_accuracy']:.3f} (recalibrated)"
        )
        con.print(f"run directory: {out}")

    _print(res, json_out, human)


@app.command("latency", context_settings=RENAMED)
def latency_cmd(
    run: Path = RUN,
    target: str = TARGET,
    samples: int = typer.Option(300, help="Sub-networks to measure."),
    seed: int = SEED,
    json_out: bool = JSON,
):
    """Measure sub-networks on a target, fit the latency predictors, report their error vs the noise floor."""
    from frugalml.nas import records

    res = records.latency(run, target, samples, seed=seed, progress=False if json_out else None)
    for k in ("mlp", "lut"):
        if k in res:
            res[k].pop("scatter", None)

    def human(con):
        from frugalml.report.console import fmt_num, table

        if res["modelled"]:
            con.print(f"{target}: modelled target ({res['note']})")
            con.print(f"run directory: {res['run_dir']}")
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
        con.print(f"run directory: {res['run_dir']}")

    _print(res, json_out, human)


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
    json_out: bool = JSON,
):
    """Evolutionary search (HAT settings by default) for the most accurate sub-network under a budget."""
    from frugalml.nas import records
    from frugalml.nas.search import EvolutionConfig

    cfg = EvolutionConfig(
        population=population,
        parents=parents,
        mutations=mutations,
        crossovers=crossovers,
        iterations=iterations,
        mutate_prob=mutate_prob,
        seed=seed,
    )
    res = records.search(
        run, target, latency_ms, cfg, progress=False if json_out else None, speed_check=max(speed_check, 0)
    )
    res.pop("history", None)

    def human(con):
        if res["speed_check"]:
            con.print(
                f"speed check: {target} runs {res['speed_check']['factor']:.2f}x the latency predictor "
                f"({len(res['speed_check']['references'])} nets re-measured near the budget)"
            )
        con.print(
            f"best under {latency_ms:g} ms on {target}: val accuracy {res['accuracy']:.3f}, test "
            f"{res['test_accuracy']:.3f}; predicted {res['predicted_latency_ms']:.3f} ms, measured "
            f"{res['measured_latency_ms']:.3f} ms; {res['macs']:,} MACs; {res['evaluations']} sub-networks "
            f"evaluated in {res['search_seconds']:.1f} s"
        )
        con.print(f"arch: {res['arch']}")
        con.print(f"run directory: {res['run_dir']}")

    _print(res, json_out, human)


@app.command(context_settings=RENAMED)
def pareto(
    run: Path = RUN,
    target: str = TARGET,
    population: int = typer.Option(40, help="Sub-networks per generation."),
    generations: int = typer.Option(15, help="NSGA-II generations."),
    seed: int = SEED,
    json_out: bool = JSON,
):
    """NSGA-II accuracy/latency front vs random search with the same number of evaluations."""
    from frugalml.nas import records

    res = records.pareto(run, target, population, generations, seed=seed)

    def human(con):
        from frugalml.report.console import fmt_num, table

        hv = res["hypervolume"]
        ref = fmt_num(hv["reference"]["latency_ms"])
        con.print(
            f"{res['evaluations']} evaluations each; hypervolume NSGA-II {fmt_num(hv['nsga2'])} vs random "
            f"{fmt_num(hv['random'])} (reference: error 1, {ref} ms)"
        )
        rows = [
            [
                fmt_num(m["predicted_latency_ms"]),
                fmt_num(m["measured_latency_ms"]),
                fmt_num(m["test_accuracy"]),
                f"{m['macs']:,}",
            ]
            for m in res["measured_front"]
        ]
        con.print(
            table(f"front on {target} (measured members)", ["predicted ms", "measured ms", "test acc", "MACs"], rows)
        )
        con.print(f"run directory: {res['run_dir']}")

    _print(res, json_out, human)


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
    json_out: bool = JSON,
):
    """Write a sub-network as a standalone module: arch.json + model.safetensors."""
    from frugalml.nas import records
    from frugalml.nas.pipeline import read_arch
    from frugalml.nas.supernet import load_supernet

    if arch.is_dir():  # a search's run directory: the result its record names
        from frugalml.errors import FrugalError
        from frugalml.report import record

        result = record.read(arch).get("artifacts", {}).get("result")
        if result is None:
            raise FrugalError(f"{arch} is not a `frugal nas search` run directory (its record names no result)")
        arch = arch / result
    space, _, _ = load_supernet(run)
    res = records.export(run, read_arch(space, arch), out, finetune_epochs=finetune_epochs)

    def human(con):
        con.print(f"exported to {out}: test accuracy {res['test_accuracy']:.3f}, {res['macs']:,} MACs")

    _print(res, json_out, human)
