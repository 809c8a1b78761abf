"""`frugal accel`: energy of a model on a dataflow accelerator, dataflows compared, specs."""

from __future__ import annotations

from pathlib import Path

import typer

from frugalml.report.cliopts import renamed

app = typer.Typer(no_args_is_help=True, help="Dataflow accelerator energy model (Eyeriss-style).")

JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")
MODEL = typer.Option(
    "alexnet-grouped", help="Registry model (see `frugal models`), module:factory or path/to/file.py:factory."
)
INPUT = typer.Option(None, "--input", help="Input shape incl. batch, e.g. 1,3,227,227 (default: the model's).")
OUT = typer.Option(None, "--out", help="Also write a run directory here: result.json, the plot, record.json.")
# one default accelerator for every command; isca16 is the dataflow comparison setup of ISCA 2016
ACCEL = typer.Option(
    "eyeriss-v1", "--accel", help="Accelerator spec: a shipped name (see `frugal accel archs`) or a YAML file."
)
BATCH_SIZE = typer.Option(None, "--batch-size", help="Batch size in examples (default: the input's).")
RENAMED = renamed({"--arch": "--accel", "--batch": "--batch-size"})


def _check_files(plot: Path | None, run_dir: Path | None) -> None:
    """--plot a .png file name, --out not a file: refused before anything is computed or written."""
    from frugalml.errors import FrugalError

    if plot is not None and (plot.suffix.lower() != ".png" or plot.is_dir()):
        raise FrugalError(f"--plot {plot}: expected a .png file name")
    if run_dir is not None and run_dir.is_file():
        raise FrugalError(f"--out {run_dir} is a file, not a directory")


def _saved(plot: Path | None, run_dir: Path | None, json_out: bool) -> None:
    """`-> PATH`: the run directory, else the plot (nothing when the command wrote no file)."""
    from frugalml.report.console import print_saved

    if run_dir is not None or plot is not None:
        print_saved(run_dir if run_dir is not None else plot, json_out)


def _layers(model: str, input: str | None, batch: int | None, kinds: str):
    from frugalml.accel.energy import model_layers
    from frugalml.errors import FrugalError
    from frugalml.models import parse_shape

    if batch is not None and batch < 1:
        raise FrugalError(f"--batch-size must be positive, got {batch}")
    layers = model_layers(model, parse_shape(input) if input else None, batch)
    wanted = {"all": ("conv", "fc", "matmul"), "conv": ("conv",), "fc": ("fc", "matmul")}
    if kinds not in wanted:
        raise FrugalError(f"--layers must be one of {', '.join(wanted)}, got '{kinds}'")
    picked = [layer for layer in layers if layer.kind in wanted[kinds]]
    if not picked:
        raise FrugalError(f"model '{model}' has no {kinds} layers")
    return picked


def _fractions(text: str) -> list[float]:
    """'0.1,0.5' -> [0.1, 0.5], each in [0, 1]."""
    from frugalml.errors import FrugalError

    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise FrugalError(f"--input-zeros '{text}': expected comma-separated numbers in [0, 1]") from None
    if not vals or any(not 0.0 <= v <= 1.0 for v in vals):
        raise FrugalError(f"--input-zeros '{text}': expected comma-separated numbers in [0, 1]")
    return vals


def _print_energy(out: dict, model: str, dataflow: str, spec, run_dir) -> None:
    """`accel energy`'s table and totals, for people."""
    from frugalml.report.console import fmt_num, stdout_console, table

    con = stdout_console()
    rows = []
    for r in [*out["layers"], out["total"] | {"name": "total"}]:
        e = r["energy"]
        rows.append(
            [
                r["name"],
                f"{r['macs'] / 1e6:,.0f}",
                *(f"{e[lv] / r['macs']:.3g}" for lv in ("dram", "glb", "array", "rf", "mac")),
                f"{r['energy_per_mac']:.4g}",
                f"{r['dram_per_mac']:.2g}",
                f"{r['utilization']:.2f}",
            ]
        )
    con.print(
        f"{model}, batch {out['layers'][0]['shape']['N']}: {dataflow} on {spec.name}; energy per MAC by level, "
        f"{out['energy_unit']}"
    )
    con.print(table("", ["layer", "MMACs", "DRAM", "GLB", "array", "RF", "MAC", "E/MAC", "DRAM/MAC", "util"], rows))
    tot = out["total"]
    con.print(
        f"total energy {fmt_num(tot['energy']['total'])} ({out['energy_unit']}); "
        f"{fmt_num(tot['cycles'])} cycles = {tot['latency_s'] * 1e3:.3f} ms at {spec.clock_hz / 1e6:g} MHz; "
        f"mapped in {tot['mapped_in_s']:.2f} s"
    )
    if spec.absolute:
        con.print(
            f"{tot['energy_j'] * 1e3:.4g} mJ: {tot['onchip_energy_j'] * 1e3:.4g} mJ on chip = "
            f"{tot['onchip_power_w'] * 1e3:.0f} mW over the modelled time ({tot['power_w'] * 1e3:.0f} mW with DRAM)"
        )
    con.print(out["sparse_model"])
    if spec.rlc or spec.zero_gating:
        con.print(f"activation zeros: {out['activation_zeros']}")
    if "plot" in out and run_dir:
        con.print(f"plot: {out['plot']}")


@app.command(context_settings=RENAMED)
def energy(
    model: str = MODEL,
    accel: str = ACCEL,
    dataflow: str = typer.Option("rs", help="Dataflow: rs, ws, os or nlr."),
    batch_size: int = BATCH_SIZE,
    input: str = INPUT,
    layers: str = typer.Option("all", help="all, conv or fc (fc includes attention matmuls)."),
    sparse: bool = typer.Option(None, "--sparse/--dense", help="Skip zeros (default: the accelerator's setting)."),
    objective: str = typer.Option(
        "energy", help="What the mapper minimises: energy, delay, edp, or dram (DRAM words, then energy)."
    ),
    input_zeros: str = typer.Option(
        None,
        "--input-zeros",
        help="Fractions of zeros in each picked layer's input, comma-separated, in place of the ones measured on "
        "the forward pass (random weights); each layer's output is taken as sparse as the next one's input.",
    ),
    plot: Path = typer.Option(None, help="Write the stacked energy-per-layer plot (PNG) here."),
    run_dir: Path = OUT,
    json_out: bool = JSON,
):
    """Per-layer accesses and energy of a model on one accelerator and dataflow."""
    from frugalml.accel.arch import load
    from frugalml.accel.dataflows import get
    from frugalml.accel.runs import energy_run
    from frugalml.errors import FrugalError

    spec = load(accel)
    get(dataflow)  # fail on a bad name before building the model
    from frugalml.accel.mapper import OBJECTIVES

    if objective not in OBJECTIVES:
        raise FrugalError(f"unknown --objective '{objective}' ({', '.join(OBJECTIVES)})")
    zeros = _fractions(input_zeros) if input_zeros is not None else None
    _check_files(plot, run_dir)
    # the record keeps its keys ("arch", "batch") so records of earlier versions read the same
    config = {"model": model, "arch": spec.name, "dataflow": dataflow, "batch": batch_size, "input": input}
    config |= {"layers": layers, "sparse": sparse, "objective": objective}
    if zeros is not None:
        config["input_zeros"] = zeros
    picked = _layers(model, input, batch_size, layers)
    if zeros is not None:
        from frugalml.accel.workload import with_zero_fractions

        if len(zeros) != len(picked):
            names = ", ".join(layer.name for layer in picked)
            raise FrugalError(f"--input-zeros has {len(zeros)} fractions for {len(picked)} layers ({names})")
        picked = with_zero_fractions(picked, zeros)
    out = energy_run(picked, spec, dataflow, objective, sparse, config, plot, run_dir, progress=not json_out)
    if json_out:
        from frugalml.report.console import print_json

        print_json(out)
        return _saved(plot, run_dir, json_out)
    _print_energy(out, model, dataflow, spec, run_dir)
    _saved(plot, run_dir, json_out)


@app.command(context_settings=RENAMED)
def compare(
    model: str = MODEL,
    accel: str = ACCEL,
    batch_size: int = BATCH_SIZE,
    input: str = INPUT,
    dataflows: str = typer.Option("rs,ws,os,nlr", help="Comma-separated dataflows (the first is the baseline)."),
    sparse: bool = typer.Option(None, "--sparse/--dense", help="Skip zeros (default: the accelerator's setting)."),
    equal_area: bool = typer.Option(
        None,
        "--equal-area/--equal-storage",
        help="Equal area: each dataflow on the RF/buffer split of the spec's storage area that suits it best, "
        "as ISCA 2016 compares them; equal storage: all on the spec's own sizes (default: equal area when the "
        "spec has an area model, as isca16).",
    ),
    plot: Path = typer.Option(None, help="Write the dataflow comparison bars (PNG) here."),
    run_dir: Path = OUT,
    json_out: bool = JSON,
):
    """All dataflows side by side (energy per MAC on CONV and FC layers); `--accel isca16` is the ISCA 2016 setup."""
    from frugalml.accel.arch import load
    from frugalml.accel.runs import compare_run
    from frugalml.errors import FrugalError

    spec = load(accel)
    names = [n.strip().lower() for n in dataflows.split(",") if n.strip()]
    if not names:
        raise FrugalError("--dataflows is empty")
    if len(set(names)) != len(names):
        raise FrugalError(f"--dataflows '{dataflows}' names a dataflow twice")
    for n in names:
        from frugalml.accel.dataflows import get

        get(n)
    _check_files(plot, run_dir)
    if equal_area is None:
        equal_area = spec.area is not None
    config = {"model": model, "arch": spec.name, "batch": batch_size, "input": input, "dataflows": names}
    config |= {"sparse": sparse, "equal_area": equal_area}
    picked = _layers(model, input, batch_size, "all")
    out = compare_run(picked, spec, names, sparse, config, plot, run_dir, progress=not json_out)
    base, table_ = out["baseline"], out["dataflows"]
    if json_out:
        from frugalml.report.console import print_json

        print_json(out)
        return _saved(plot, run_dir, json_out)
    from frugalml.report.console import fmt_num, stdout_console, table

    con = stdout_console()
    rows = [
        [
            n,
            fmt_num(r["conv_energy_per_mac"]),
            fmt_num(r["conv_vs_" + base], 3),
            fmt_num(r["fc_energy_per_mac"]),
            fmt_num(r["fc_vs_" + base], 3),
            fmt_num(r["total_energy"]),
            fmt_num(r["dram_per_mac"], 3),
            f"{r['utilization']:.2f}",
            f"{r['rf_bytes']} B / {r['glb_bytes'] / 1024:.4g} kB",
        ]
        for n, r in table_.items()
    ]
    con.print(
        table(
            f"{model} on {spec.name}: energy per MAC ({out['energy_unit']})",
            ["dataflow", "CONV", f"/ {base}", "FC", f"/ {base}", "total", "DRAM acc/MAC", "util", "RF / buffer"],
            rows,
        )
    )
    con.print("equal area: each dataflow on its best RF/buffer split" if equal_area else "equal storage")
    if "plot" in out and run_dir:
        con.print(f"plot: {out['plot']}")
    _saved(plot, run_dir, json_out)


@app.command()
def archs(json_out: bool = JSON):
    """The shipped accelerator specs."""
    from frugalml.accel.arch import load, names

    specs = [load(n) for n in names()]
    if json_out:
        from frugalml.report.console import print_json

        return print_json({"archs": [s.to_dict() for s in specs]})
    from frugalml.report.console import stdout_console, table

    rows = [
        [
            s.name,
            f"{s.pe_array[0]}x{s.pe_array[1]} = {s.pes}",
            f"{s.rf_bytes} B",
            f"{s.glb_bytes / 1024:g} kB",
            f"{8 * s.word_bytes}-bit",
            f"{s.clock_hz / 1e6:g} MHz",
            s.energy_unit,
            "yes" if s.sparse else "no",
        ]
        for s in specs
    ]
    con = stdout_console()
    con.print(table("accelerator specs", ["name", "PEs", "RF/PE", "buffer", "word", "clock", "energy", "sparse"], rows))
    for s in specs:
        con.print(f"[bold]{s.name}[/bold]: {s.description}. Source: {s.source}")
