"""One small interface for independent jobs (seeds, controls, sweeps, search candidates).

Techniques call `run_jobs(fn, jobs)`; today the jobs run here, serially or in local
processes. A cluster backend (e.g. Ray) can replace `run_jobs` without touching them.
`fn` must be a module-level function and each job a dict of keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def _die_with_parent(parent: int) -> None:
    """Worker initializer: exit as soon as the process that started us is gone (killed, say), so
    no orphaned job keeps computing - competing with a rerun for the CPU and writing into its
    run directory."""
    import os
    import threading
    import time

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def run_jobs(fn: Callable[..., Any], jobs: Sequence[dict], workers: int = 1) -> list[Any]:
    """Run `fn(**job)` for every job and return the results in job order."""
    if workers <= 1 or len(jobs) <= 1:
        return [fn(**job) for job in jobs]
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(fn, **job) for job in jobs]
        return [f.result() for f in futures]
