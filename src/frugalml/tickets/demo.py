"""`frugal demo` step: a short lottery-ticket search on digits, and what the ticket saves."""

from __future__ import annotations

from pathlib import Path


def demo(out: Path, quick: bool, console) -> list[dict]:
    from frugalml.report.console import demo_row
    from frugalml.tickets.config import ticket_training
    from frugalml.tickets.exporting import export
    from frugalml.tickets.imp import TicketConfig, find

    levels = 3
    cfg = TicketConfig(
        model="mlp",
        data="digits",
        levels=levels,
        rate=0.5,
        seeds=1,
        controls=["reinit"],
        train=ticket_training(epochs=3 if quick else 8, batch_size=32, schedule="cosine"),
    )
    res = find(cfg, Path(out) / "find", progress=console is not None and not quick)
    dense, last = res["levels"][0], res["levels"][-1]
    exp = export(Path(out) / "find" / f"level_{levels}", "sparse", measure=False)
    if console is not None:
        console.print(
            f"[bold]Lottery ticket[/bold] mlp on digits, {levels} IMP levels at 50%: "
            f"{100 * last['remaining']:.1f}% of weights left, test accuracy "
            f"{dense['accuracy']['mean']:.3f} dense -> {last['accuracy']['mean']:.3f} ticket "
            f"({last['reinit_accuracy']['mean']:.3f} re-initialised); sparse export "
            f"{exp['bytes_dense']:,} -> {exp['bytes_export']:,} bytes"
        )
    note = (
        f"accuracy {dense['accuracy']['mean']:.3f} -> {last['accuracy']['mean']:.3f} "
        f"(reinit {last['reinit_accuracy']['mean']:.3f})"
    )
    return [
        demo_row(
            "tickets",
            f"digits MLP, IMP {levels} levels",
            "MACs on nonzero weights / example",
            dense["macs_effective"],
            last["macs_effective"],
            note,
        ),
        demo_row(
            "tickets",
            "ticket saved as CSR (int16 indices)",
            "file bytes",
            exp["bytes_dense"],
            exp["bytes_export"],
            f"{100 * exp['sparsity']:.1f}% sparse, same outputs",
        ),
    ]
