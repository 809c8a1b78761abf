"""`frugal demo`: the end-to-end tour.

Trains a small model on digits with tracking, profiles it, estimates the same training on
other devices, then lets every technique package that has a `demo` module add its own
before/after rows (`frugalml.<package>.demo.demo(out_dir, quick, console) -> list[dict]`).
"""

from __future__ import annotations

from pathlib import Path

from frugalml.report.console import demo_row
from frugalml.techniques import TECHNIQUES, optional_import


def foundation(out: Path, quick: bool, console) -> list[dict]:
    import torch

    from frugalml import data, models
    from frugalml.cost.counting import profile
    from frugalml.cost.estimate import estimate
    from frugalml.report.console import fmt_num, table
    from frugalml.train import TrainConfig, fit

    ds = data.get("digits")
    torch.manual_seed(0)
    net = models.for_data("mlp", ds)
    cfg = TrainConfig(epochs=3 if quick else 10, batch_size=32, lr=0.05, seed=0)
    res = fit(net, ds, cfg, out / "train", track=True, progress=console is not None)
    prof = profile(net, ds.x_train[:1], training=True)
    train_flops = prof.train_flops * len(ds.y_train) * cfg.epochs
    tracking = res.tracking or {}
    rows = [
        [
            "host (measured)",
            fmt_num(res.seconds),
            fmt_num(tracking.get("energy_j")),
            fmt_num(tracking.get("co2e_g")),
            tracking.get("sources", {}).get("energy", "-"),
        ]
    ]
    estimates = {}
    for hw in ("v100", "rpi4"):
        e = estimate(flops=train_flops, hardware_name=hw, pue=1.0, region="world")
        estimates[hw] = e
        rows.append(
            [
                f"{hw} (estimated)",
                fmt_num(e.wall_hours * 3600),
                fmt_num(e.energy_kwh * 3.6e6),
                fmt_num(e.co2e_kg * 1000),
                "sustained TFLOPS x TDP, world grid",
            ]
        )
    if console is not None:
        console.print(
            f"[bold]1. Training[/bold] mlp on digits, {cfg.epochs} epochs: test accuracy "
            f"{res.final['test_accuracy']:.3f}; {prof.params:,} params, {prof.macs:,} MACs/example "
            f"forward, {fmt_num(train_flops)} training FLOPs counted (fwd+bwd)"
        )
        console.print(
            table(
                "what this training cost",
                ["where", "time (s)", "energy (J)", "CO2e (g)", "how"],
                rows,
                text_columns=(4,),
            )
        )
    return [
        demo_row(
            "foundation",
            "digits MLP training: host vs V100 estimate",
            "seconds",
            res.seconds,
            estimates["v100"].wall_hours * 3600,
            "measured vs estimated from counted FLOPs",
        ),
    ]


def _point_cost(metric: str, value: float | None) -> dict | None:
    """A demo row's figure as a per-inference `Cost` field, where its metric is one (else None)."""
    if value is None:
        return None
    m = metric.lower()
    if "gflops" in m:
        return {"macs": value * 1e9 / 2}
    if m.startswith("macs"):
        return {"macs_effective" if "nonzero" in m else "macs": value}
    if m.startswith("latency ms") or m.startswith("ms/"):
        return {"latency_s": value / 1e3}
    if m == "seconds":
        return {"wall_s": value}
    if m.startswith("energy (j"):
        return {"energy_j": value}
    return None


def row_points(rows: list[dict]) -> list[dict]:
    """The demo's before/after rows as record points: one per side, its accuracy or its cost."""
    from frugalml.report import record

    points = []
    for r in rows:
        for side in ("before", "after"):
            value = r[side]
            is_acc = "accuracy" in r["metric"] and value is not None
            points.append(
                {
                    "label": f"{r['technique']}: {r['what']}, {r['metric']} ({side})",
                    "quality": {"accuracy": record.metric(value)} if is_acc else {},
                    "cost": None if is_acc else _point_cost(r["metric"], value),
                }
            )
    return points


def _write_record(out: Path, quick: bool, rows: list[dict], spent: dict) -> Path:
    """`out/record.json` (kind demo): the foundation training's accuracy, every row as points, the demo's spent."""
    from frugalml.report import record

    train = record.read(out / "train")
    artifacts = {"result": "result.json", "summary": "summary.html", "foundation": "train/record.json"}
    rec = record.build(
        "demo",
        quality=train["quality"],
        config={"quick": quick},
        data="digits",
        model="mlp",
        spent=spent,
        points=row_points(rows),
        artifacts=artifacts,
    )
    return record.write(out, rec)


def _run_steps(out: Path, quick: bool, console) -> list[dict]:
    rows = foundation(out, quick, console)
    for t in TECHNIQUES:
        mod = optional_import(t.demo)
        if mod is not None:  # None: that technique is not built yet
            rows += mod.demo(out / t.name, quick=quick, console=console)
    return rows


def run_demo(out: Path, quick: bool = False, quiet: bool = False) -> list[dict]:
    from frugalml.cost.tracker import Ledger
    from frugalml.files import write_json
    from frugalml.report.console import fmt_num, stdout_console, table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    console = None if quiet else stdout_console()
    with Ledger(out, children=True, label="demo") as ledger:
        rows = _run_steps(out, quick, console)
    write_json(out / "result.json", {"rows": rows})
    _write_record(out, quick, rows, ledger.total())  # before the page, which is built from it
    from frugalml.report.html import write_summary

    page = write_summary(out, title="frugal demo: what each technique saves")
    if console is not None:
        t = table(
            "frugal demo: before / after",
            ["technique", "what", "metric", "before", "after", "after/before"],
            [
                [r["technique"], r["what"], r["metric"], fmt_num(r["before"]), fmt_num(r["after"]), fmt_num(r["ratio"])]
                for r in rows
            ],
            justify_right_from=3,
        )
        console.print(t)
        console.print(f"run directory: {out}  (one-page summary with every plot: {page})")
    return rows
