"""Terminal output: rich tables for people, one JSON object for programs."""

from __future__ import annotations

import sys
from typing import Any


def demo_row(technique: str, what: str, metric: str, before: float, after: float, note: str) -> dict:
    """One before/after row of `frugal demo` (its table, result.json and summary page)."""
    return {
        "technique": technique,
        "what": what,
        "metric": metric,
        "before": before,
        "after": after,
        "ratio": (after / before) if before else None,
        "note": note,
    }


def stdout_console():
    from rich.console import Console

    # Piped output (logs, CI, `| less`) would otherwise be squeezed to 80 columns.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def print_json(obj: Any) -> None:
    """The whole of stdout for `--json`: one JSON object, nothing else."""
    from frugalml.files import to_json

    sys.stdout.write(to_json(obj) + "\n")
    sys.stdout.flush()


def print_saved(path, json_out: bool = False) -> None:
    """The last line of a command that wrote results: `-> PATH`, the path the next command
    takes as printed. On stderr under `--json`, so stdout stays one JSON object."""
    print(f"-> {path}", file=sys.stderr if json_out else sys.stdout, flush=True)


def table(title: str, columns: list[str], rows: list[list[Any]], justify_right_from: int = 1, text_columns: tuple = ()):
    """A rich table; columns from `justify_right_from` on are right-aligned (numbers),
    except those listed in `text_columns`."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        right = i >= justify_right_from and i not in text_columns
        t.add_column(c, justify="right" if right else "left")
    for r in rows:
        t.add_row(*[str(v) for v in r])
    return t


def cost_table(title: str, before, after, before_label="before", after_label="after"):
    """Before/after table of two `Cost`s with the ratio column."""
    from frugalml.cost.currency import comparison_rows

    rows = [list(r) for r in comparison_rows(before, after)]
    return table(title, ["", before_label, after_label, "after/before"], rows)


def fmt_num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def warn(message: str) -> None:
    """One warning line on stderr (a degenerate result: the command still succeeded)."""
    print(f"frugal: warning: {message}", file=sys.stderr, flush=True)


LONG_RUN_S = 600.0


def warn_if_long(seconds: float, command: str, basis: str) -> bool:
    """Before a long run: one line on stderr with a rough estimate of its time and how it was
    reached (`basis`), suggesting `--quick`; nothing for a run expected under LONG_RUN_S."""
    if seconds < LONG_RUN_S:
        return False
    when = f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"
    print(
        f"frugal: note: {command} with these settings takes roughly {when} on 2 CPU cores ({basis}); "
        "--quick runs a smoke-sized version",
        file=sys.stderr,
        flush=True,
    )
    return True
