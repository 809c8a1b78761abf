"""One self-contained HTML page for a run directory: its before/after table, its headline
figures and every plot it wrote, embedded, so the page can be mailed or archived alone.

A run with a `record.json` gets its headline quality, the per-inference before/after
table, what it spent and its per-point results (levels, budgets) from the record; a sweep
directory (records below it) gets the `frugal compare` table and its Pareto plot; older
runs fall back to `result.json`. Every plot below the directory is embedded.
"""

from __future__ import annotations

import base64
import html
import os
import time
from pathlib import Path
from typing import Any

from frugalml.errors import FrugalError
from frugalml.files import read_json, write_text

MAX_IMAGES = 60  # a sweep directory can hold hundreds of plots; the page names what it left out

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 520px; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
.note { color: #666; font-size: 0.9em; }
"""


def _num(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return html.escape(str(x))
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x == 0 or 1e-3 <= abs(x) < 1e6:
            return f"{x:.4g}"
        return f"{x:.3e}"
    return html.escape(str(x))


def _table(columns: list[str], rows: list[list[Any]], numeric_from: int) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = [
            f'<td class="num">{_num(v)}</td>'
            if i >= numeric_from and isinstance(v, (int, float))
            else f"<td>{_num(v)}</td>"
            for i, v in enumerate(row)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _before_after(rows: list[dict]) -> str:
    cols = ["technique", "what", "metric", "before", "after", "after/before", "how"]
    keys = ["technique", "what", "metric", "before", "after", "ratio", "note"]
    return _table(cols, [[r.get(k) for k in keys] for r in rows], numeric_from=3)


def _scalars(result: dict) -> str:
    """Top-level numbers and strings of a result (nested parts are in result.json)."""
    rows = [[k, v] for k, v in result.items() if isinstance(v, (int, float, str, bool)) or v is None]
    return _table(["field", "value"], rows, numeric_from=1) if rows else ""


def _figure(png: Path, root: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    name = html.escape(png.relative_to(root).as_posix())
    return f'<figure><img alt="{name}" src="data:image/png;base64,{data}"><figcaption>{name}</figcaption></figure>'


def _record_sections(rec: dict, points: bool = True) -> list[str]:
    from frugalml.cost.currency import ROWS

    parts = ["<h2>Quality</h2>"]
    parts.append(
        _table(["metric", "value", "spread (std)", "seeds"], [_metric_row(k, v) for k, v in rec["quality"].items()], 1)
    )
    before, after = rec.get("before") or {}, rec.get("after") or {}
    rows = []
    for name, label, fmt in ROWS:
        b, a = before.get(name), after.get(name)
        if b is not None or a is not None:
            ratio = a / b if (a is not None and b) else None
            rows.append([label, "-" if b is None else fmt(b), "-" if a is None else fmt(a), ratio])
    if rows:
        parts += ["<h2>Per inference: before / after</h2>", _table(["", "before", "after", "after/before"], rows, 1)]
    spent = rec.get("spent") or {}
    rows = [[label, fmt(spent[name])] for name, label, fmt in ROWS if name in spent and spent[name] is not None]
    if rows:
        title = f"Spent producing it ({spent.get('segments', 1)} segment(s))"
        parts += [f"<h2>{title}</h2>", _table(["what", "value"], rows, 1)]
        notes = "; ".join(f"{k}: {v}" for k, v in (spent.get("notes") or {}).items())
        parts.append(f"<p class='note'>{html.escape(notes)}</p>" if notes else "")
    if points and rec.get("points"):
        parts += ["<h2>Results</h2>", _points(rec["points"])]
    return parts


def _metric_row(name: str, m: dict) -> list:
    return [name, m.get("value"), m.get("std"), ", ".join(map(str, m.get("seeds", []))) or None]


def _points(points: list[dict]) -> str:
    from frugalml.report.views import point_columns

    metrics, keys = point_columns(points)
    rows = [
        [p["label"]]
        + [p["quality"].get(m, {}).get("value") for m in metrics]
        + [(p.get("cost") or {}).get(n) for n, _, _ in keys]
        for p in points
    ]
    return _table(["", *metrics, *(label for _, label, _ in keys)], rows, 1)


def _sweep_sections(records: list[dict], root: Path) -> list[str]:
    from frugalml.report.compare import compare
    from frugalml.report.views import FRONT_NOTE, compare_plot, compare_rows

    result = compare(records)
    cols, rows = compare_rows(result)
    compare_plot(result, root / "compare.png")
    return [
        f"<h2>Runs compared ({len(records)})</h2>",
        _table(cols, rows, 2),
        f"<p class='note'>{FRONT_NOTE}</p>",
        *(f"<p class='note'>warning: {html.escape(w)}</p>" for w in result["warnings"]),
    ]


def render(run: str | os.PathLike, title: str | None = None) -> str:
    """The page for `run` as a string."""
    from frugalml.report import record
    from frugalml.report.views import name_of

    root = Path(run)
    if not root.is_dir():
        raise FrugalError(f"{root} is not a directory")
    result_path = root / "result.json"
    result = read_json(result_path) if result_path.is_file() else None
    rec = record.read(root) if (root / record.FILENAME).is_file() else None
    # a sweep directory: the runs below it, as `frugal compare` sees them
    below = [] if rec is not None or next(root.rglob(record.FILENAME), None) is None else record.find(root)
    has_rows = isinstance(result, dict) and bool(result.get("rows"))
    # a page with before/after rows (the demo) shows them, not the same figures again as points
    sections = _record_sections(rec, points=not has_rows) if rec is not None else []
    if len(below) > 1:
        sections = _sweep_sections(below, root)
    pngs = sorted(root.rglob("*.png"))
    if result is None and not pngs and not sections:
        raise FrugalError(f"{root} holds no record.json, no result.json and no plots: nothing to summarise")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title or root.name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title or f'frugalml run: {root}')}</h1>",
        f"<p class='note'>written {time.strftime('%Y-%m-%d %H:%M:%S %Z')} from {html.escape(str(root))}; "
        "the full figures are in the JSON files beside this page</p>",
    ]
    if rec is not None:
        parts.insert(
            3,
            f"<p>{html.escape(rec['kind'])}: model {html.escape(name_of(rec.get('model')))} on "
            f"{html.escape(name_of(rec.get('data')))}</p>",
        )
    parts += sections
    if isinstance(result, dict):
        if isinstance(result.get("rows"), list) and result["rows"] and isinstance(result["rows"][0], dict):
            parts += ["<h2>Before / after</h2>", _before_after(result["rows"])]
        scalars = _scalars(result) if not sections else ""
        if scalars:
            parts += ["<h2>Result</h2>", scalars]
    if pngs:
        parts.append(f"<h2>Plots ({len(pngs)})</h2>")
        parts += [_figure(p, root) for p in pngs[:MAX_IMAGES]]
        if len(pngs) > MAX_IMAGES:
            parts.append(
                f"<p class='note'>{len(pngs) - MAX_IMAGES} more plots not shown (first {MAX_IMAGES} in path order)</p>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_summary(run: str | os.PathLike, out: str | os.PathLike | None = None, title: str | None = None) -> Path:
    """Write `<run>/summary.html` (or `out`) atomically; return its path."""
    page = render(run, title)
    return write_text(Path(out) if out else Path(run) / "summary.html", page)
