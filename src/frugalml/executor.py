"""One small interface for independent jobs (seeds, controls, sweeps, search candidates).

Techniques call `run_jobs(fn, jobs)`; today the jobs run here, serially or in local
processes. A cluster backend (e.g. Ray) can replace `run_jobs` without touching them.
`fn` must be a module-level function and each job a dict of keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def run_jobs(fn: Callable[..., Any], jobs: Sequence[dict], workers: int = 1) -> list[Any]:
    """Run `fn(**job)` for every job and return the results in job order."""
    if workers <= 1 or len(jobs) <= 1:
        return [fn(**job) for job in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(fn, **job) for job in jobs]
        return [f.result() for f in futures]
