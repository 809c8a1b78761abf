"""`frugal profile`: build the model and its example inputs, count, print per layer or per aten op."""

from __future__ import annotations

import sys

from frugalml.errors import FrugalError

BY = ("module", "op")


def run(
    model: str,
    inputs: list[str] | None = None,
    kws: list[str] | None = None,
    by: str = "module",
    training: bool = False,
    latency: bool = False,
    threads: int = 1,
    json_out: bool = False,
) -> dict:
    """Profile `model` (any `models.get` name) on `inputs` (`--input` grammar; default: the model's) and print it."""
    import warnings

    from frugalml import models
    from frugalml.cost.counting import profile, uncounted_warning
    from frugalml.models.inputs import make_inputs, parse_inputs, parse_kws

    if by not in BY:
        raise FrugalError(f"unknown --by '{by}' (known: {', '.join(BY)})")
    if threads < 1:
        raise FrugalError(f"--threads must be >= 1, got {threads}")
    specs = parse_inputs(list(inputs)) if inputs else None
    extra = parse_kws(list(kws or []))
    specs = specs or parse_inputs(models.default_inputs(model))
    net = models.get(model)
    args, named = make_inputs(specs, net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        prof = profile(net, args=args, kwargs=named | extra, training=training)
    if prof.uncounted_ops:
        print(f"warning: {uncounted_warning(prof.uncounted_ops)}", file=sys.stderr)
    out = prof.to_dict() | {"model": model, "kwargs": dict(extra)}
    if latency:
        out["latency"] = _latency(net, args, named | extra, threads)
    if json_out:
        from frugalml.report.console import print_json

        print_json(out)
    else:
        _print(model, [str(s) for s in specs], prof, by, out.get("latency"), threads)
    return out


def _latency(net, args: tuple, kwargs: dict, threads: int) -> dict:
    from functools import partial

    from frugalml.cost.latency import measure_latency

    net.eval()
    call = partial(net, **kwargs) if kwargs else net
    return measure_latency(call, args, threads=threads).to_dict()


def _layer_rows(prof) -> tuple[list[str], list[list[str]]]:
    columns = ["layer", "type", "params", "nonzero", "MACs", "MACs (nonzero w)", "output"]
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
    return columns, rows


def _op_rows(by_op: dict[str, int]) -> tuple[list[str], list[list[str]]]:
    total = sum(by_op.values()) or 1
    rows = [[op, f"{macs:,}", f"{2 * macs:,}", f"{100 * macs / total:.1f}%"] for op, macs in by_op.items()]
    return ["aten op", "MACs", "FLOPs", "share"], rows


def _print(model: str, specs: list[str], prof, by: str, lat: dict | None, threads: int) -> None:
    from frugalml.cost.currency import si
    from frugalml.report.console import stdout_console, table

    con = stdout_console()
    columns, rows = _layer_rows(prof) if by == "module" else _op_rows(prof.by_op)
    shown = specs[0] if len(specs) == 1 else " ".join(specs)
    con.print(table(f"{model} on input {shown}", columns, rows, justify_right_from=2 if by == "module" else 1))
    con.print(
        f"total: {prof.params:,} params ({prof.nonzero_params:,} nonzero), "
        f"{si(prof.macs, 'MACs')} = {si(prof.flops, 'FLOPs')} forward, "
        f"{si(prof.macs_effective, 'MACs')} on nonzero weights"
    )
    if prof.train_flops is not None:
        con.print(f"training step (fwd+bwd, counted): {si(prof.train_flops, 'FLOPs')}")
    if lat is not None:
        con.print(
            f"latency: {lat['median_s'] * 1e3:.3f} ms median (IQR {lat['iqr_s'] * 1e3:.3f} ms, "
            f"{lat['runs']:,} calls, {threads} thread(s))"
        )
