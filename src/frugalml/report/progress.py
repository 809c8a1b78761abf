"""One progress style for every long loop, on stderr so --json stays clean: a rich bar on a
terminal, plain periodic lines (percent, elapsed, ETA) in a log (nohup, CI, a notebook)."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

EVERY_ENV = "FRUGAL_PROGRESS_EVERY"  # seconds between plain lines when stderr is not a terminal


def _fields(fields: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def plain_lines(total: int, description: str, every_s: float, stream=None, clock=time.monotonic):
    """`advance(n=1, **fields)` that writes one line per `every_s` seconds:
    `description: 40% (400/1000), elapsed 1:02, ETA 1:33, loss=0.31`."""
    stream = stream if stream is not None else sys.stderr
    start = clock()
    state = {"done": 0, "last": start}

    def advance(n=1, note: str | None = None, **fields):
        if note is not None:  # a one-off line, written at once
            stream.write(f"{description}: {note}\n")
            stream.flush()
        state["done"] += n
        now = clock()
        if now - state["last"] < every_s:
            return
        state["last"] = now
        done, elapsed = state["done"], now - start
        pct = 100.0 * done / total if total else 100.0
        eta = _clock(elapsed * (total - done) / done) if done and total else "?"
        line = f"{description}: {pct:.0f}% ({done}/{total}), elapsed {_clock(elapsed)}, ETA {eta}"
        stream.write(line + (f", {_fields(fields)}" if fields else "") + "\n")
        stream.flush()

    return advance


@contextmanager
def progress(total: int, description: str, enabled: bool | None = None):
    """Yield `advance(n=1, note=None, **fields)`. `enabled=None`: a bar on a terminal, else a plain line
    every FRUGAL_PROGRESS_EVERY seconds (default 30; a short loop prints none); `False`: silent.
    A `note` is a line of its own, printed at once (above the bar on a terminal)."""
    if enabled is None and not sys.stderr.isatty():
        yield plain_lines(total, description, float(os.environ.get(EVERY_ENV, "30")))
        return
    if enabled is False:
        yield lambda n=1, note=None, **kw: None
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

        def advance(n=1, note: str | None = None, **fields):
            if note is not None:
                bar.console.print(f"{description}: {note}", markup=False, highlight=False)
            bar.update(task, advance=n, info=_fields(fields))

        yield advance
