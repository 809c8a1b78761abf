"""One progress bar style for every long loop (rich, on stderr so --json stays clean)."""

from __future__ import annotations

import sys
from contextlib import contextmanager


@contextmanager
def progress(total: int, description: str, enabled: bool | None = None):
    """Yield `advance(n=1, **fields)`; draws a bar only when stderr is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda n=1, **kw: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n=1, **fields):
            info = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
            bar.update(task, advance=n, info=info)

        yield advance
