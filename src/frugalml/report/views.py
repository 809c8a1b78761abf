"""What `frugal show`, `compare` and `payback` print for people, and the compare plot."""

from __future__ import annotations

from pathlib import Path

from frugalml.cost.currency import ROWS, Cost, comparison_rows, si
from frugalml.report.console import fmt_num, table

_SPENT_ROWS = [r for r in ROWS if r[0] in ("wall_s", "cpu_s", "energy_j", "co2e_g", "usd")]


def name_of(part) -> str:
    """A record's data or model: a name, or a dict of settings with a name among them."""
    if isinstance(part, dict):
        return str(part.get("name") or ", ".join(f"{k}={v}" for k, v in part.items()))
    return str(part or "?")


def quality_text(metric: dict) -> str:
    text = fmt_num(metric.get("value"))
    if metric.get("values") and len(metric["values"]) > 1:
        text += f" +- {fmt_num(metric.get('std'))} ({len(metric['values'])} seeds)"
    return text


def show(record: dict) -> list:
    """Renderables of one run record: headline, quality, before/after, spent, points, artifacts."""
    head = f"[bold]{record['kind']}[/bold] run {record['run']}"
    if record.get("data") or record.get("model"):
        head += f" - model {name_of(record.get('model'))} on {name_of(record.get('data'))}"
    out: list = [head]
    quality = [[k, quality_text(v)] for k, v in record["quality"].items()]
    if quality:
        out.append(table("quality", ["metric", "value"], quality))
    if record.get("before") or record.get("after"):
        before, after = Cost.from_dict(record.get("before") or {}), Cost.from_dict(record.get("after") or {})
        rows = [list(r) for r in comparison_rows(before, after)]
        out.append(table("per inference", ["", "before", "after", "after/before"], rows))
    spent = record.get("spent") or {}
    rows = [[label, fmt(spent[name])] for name, label, fmt in _SPENT_ROWS if spent.get(name) is not None]
    rows = _with_energy_parts(rows, spent)
    if rows:
        n = spent.get("segments", 1)
        out.append(table(f"spent ({n} segment{'s' if n != 1 else ''})", ["", "value"], rows))
    for name, note in (spent.get("notes") or {}).items():
        out.append(f"  [dim]{name}: {note}[/dim]")
    if record.get("points"):
        out.append(points_table(record))
    if record.get("artifacts"):
        out.append(table("artifacts", ["role", "file"], [[k, v] for k, v in record["artifacts"].items()]))
    return out


def _with_energy_parts(rows: list[list[str]], spent: dict) -> list[list[str]]:
    """The spent rows with the energy's parts (and a training's prediction) right after the energy row."""
    extra = [
        [f"  {name.upper()} ({p['method']})", si(p["energy_j"], "J")]
        for name, p in (spent.get("energy_parts") or {}).items()
    ]
    pred = spent.get("prediction")
    if pred:
        ratio = f", actual/predicted {pred['ratio']:.3g}" if pred.get("ratio") is not None else ""
        extra.append([f"  predicted from the first epoch ({pred['epochs']} epochs)", si(pred["energy_j"], "J") + ratio])
    at = next((i + 1 for i, r in enumerate(rows) if r[0] == "energy"), len(rows))
    return rows[:at] + extra + rows[at:]


def point_columns(points: list[dict]) -> tuple[list[str], list[tuple]]:
    """The metrics any point has, and the `Cost` rows (field, label, formatter) any point has a value for."""
    metrics = list(dict.fromkeys(m for p in points for m in p["quality"]))
    costs = [p.get("cost") or {} for p in points]
    return metrics, [(n, label, fmt) for n, label, fmt in ROWS if any(c.get(n) is not None for c in costs)]


def points_table(record: dict):
    metrics, cost_keys = point_columns(record["points"])
    rows = []
    for p in record["points"]:
        cost = p.get("cost") or {}
        rows.append(
            [p["label"]]
            + [quality_text(p["quality"][m]) if m in p["quality"] else "-" for m in metrics]
            + [fmt(cost[n]) if cost.get(n) is not None else "-" for n, _, fmt in cost_keys]
        )
    return table("results", ["", *metrics, *(label for _, label, _ in cost_keys)], rows)


def common_root(runs: list[dict]) -> str:
    import os

    return os.path.commonpath([r["run"] for r in runs])


def short_names(runs: list[str]) -> list[str]:
    """Run paths relative to what they share, so a table of a sweep stays narrow."""
    import os

    if len(runs) < 2:
        return [Path(r).name for r in runs]
    root = os.path.commonpath(runs)
    return [os.path.relpath(r, root) for r in runs]


FRONT_NOTE = "front: S = on the Pareto front of quality vs spent, I = of quality vs per-inference cost"


def compare_rows(result: dict) -> tuple[list[str], list[list]]:
    """Columns and rows (numbers left raw, for the terminal or the page to format) of `compare`'s result."""
    metric, sk, ik = result["metric"], result["spent_key"], result["inference_key"]
    rows = []
    for name, r in zip(short_names([r["run"] for r in result["runs"]]), result["runs"]):
        marks = ("S" if r["pareto_spent"] else "") + ("I" if r["pareto_inference"] else "")
        after, spent = r["after"] or {}, r["spent"] or {}
        verdict = r.get("verdict", "cheapest" if "vs_cheapest" not in r and sk else "-")
        rows.append([name, r["kind"], r["quality"][metric], after.get(ik), spent.get(sk), marks or "-", verdict])
    cols = ["run", "kind", metric, f"per inference ({ik or '-'})", f"spent ({sk or '-'})", "front", "vs cheapest"]
    return cols, rows


def compare(result: dict) -> list:
    cols, rows = compare_rows(result)
    rows = [[*r[:2], *(fmt_num(v) if v is not None else "-" for v in r[2:5]), *r[5:]] for r in rows]
    title = "runs compared" + (f" (below {common_root(result['runs'])})" if len(rows) > 1 else "")
    return [table(title, cols, rows, justify_right_from=2, text_columns=(5, 6)), f"[dim]{FRONT_NOTE}[/dim]"]


def payback(result: dict) -> list:
    if result["pays_back"]:
        head = (
            f"[bold]pays back after {fmt_num(result['break_even_inferences'])} inferences "
            f"({fmt_num(result['break_even_days'])} days)[/bold]; net saving over "
            f"{fmt_num(result['assumptions']['days']['value'])} days: {fmt_num(result['saved_co2e_g'])} g CO2e"
        )
    else:
        head = f"[bold]never pays back[/bold]: {result['why']}"
    rows = [[k, fmt_num(v["value"]), v["source"]] for k, v in result["assumptions"].items()]
    out = [head, table("assumptions", ["", "value", "source"], rows, text_columns=(2,))]
    if result.get("counterfactual"):
        cf = result["counterfactual"]
        parts = [f"{k} {fmt_num(v) if isinstance(v, float) else v}" for k, v in cf.items()]
        out.append("counterfactual: " + ", ".join(parts))
    return out


def compare_plot(result: dict, path: str | Path) -> Path:
    """Quality against spent and against per-inference cost, Pareto runs joined and labelled."""
    from frugalml.report.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    metric = result["metric"]
    for ax, section, key, flag in (
        (axes[0], "spent", result["spent_key"], "pareto_spent"),
        (axes[1], "after", result["inference_key"], "pareto_inference"),
    ):
        runs = [r for r in result["runs"] if key and (r.get(section) or {}).get(key) is not None]
        if not runs:
            ax.set_title(f"no common {section} figure")
            continue
        xs = [r[section][key] for r in runs]
        ys = [r["quality"][metric] for r in runs]
        ax.scatter(xs, ys, color=["tab:red" if r[flag] else "tab:gray" for r in runs], zorder=3)
        front = sorted((x, y) for x, y, r in zip(xs, ys, runs) if r[flag])
        if len(front) > 1:
            ax.plot(*zip(*front), color="tab:red", lw=1, zorder=2, label="Pareto front")
            ax.legend(loc="lower right")
        for x, y, r in zip(xs, ys, runs):
            ax.annotate(Path(r["run"]).name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(f"{'spent' if section == 'spent' else 'per inference'} {key}")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
