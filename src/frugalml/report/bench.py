"""Saving benchmark figures: one JSON per benchmark in benchmarks/results/, with context.

Every result records the command that produced it, the machine, torch's thread count and
the peak resident memory of the process, so a number can be traced and re-run.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from pathlib import Path

from frugalml.files import write_json

RESULTS = Path(os.environ.get("FRUGAL_BENCH_RESULTS", "benchmarks/results"))


def peak_rss_mib() -> float:
    """Peak resident set size of this process (and finished children) in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024  # Linux reports KiB


def context() -> dict:
    import torch

    from frugalml.cost.hardware import cpu_model_name

    return {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu": cpu_model_name(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def save_result(name: str, payload: dict, results_dir: str | os.PathLike | None = None) -> Path:
    """Write `payload` plus context and peak RSS to `<results>/<name>.json`; return the path."""
    out = Path(results_dir or RESULTS) / f"{name}.json"
    write_json(out, payload | {"context": context(), "peak_rss_mib": round(peak_rss_mib(), 1)})
    return out
