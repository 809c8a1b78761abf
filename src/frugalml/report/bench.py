"""Saving benchmark figures: one JSON per benchmark in benchmarks/results/, with context.

Every result records the command that produced it, the commit it ran on (and whether the
tree was clean), the machine, torch's thread count and the peak resident memory of the
process, so a number can be traced and re-run.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
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


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(script: str | os.PathLike | None = None) -> dict:
    """`git_commit` (HEAD) and `git_clean` (no changes, untracked files included) of the
    repository `script` lives in (default: the running script); both None outside a git checkout.
    Plots and logs under benchmarks/results/ do not count: a benchmark draws them itself (often
    before it saves its JSON) and nothing reads them back; a results JSON does count (some
    benchmarks read another's)."""
    path = Path(script if script is not None else sys.argv[0]).resolve()
    directory = path if path.is_dir() else path.parent
    commit = _git(directory, "rev-parse", "HEAD") if directory.is_dir() else None
    status = _git(directory, "status", "--porcelain", "--untracked-files=all") if commit else None
    if commit is None or status is None:
        return {"git_commit": None, "git_clean": None}
    changed = [line[3:].strip('"') for line in status.splitlines() if line.strip()]
    code = [p for p in changed if not (p.startswith("benchmarks/results/") and not p.endswith(".json"))]
    return {"git_commit": commit.strip(), "git_clean": not code}


def context(script: str | os.PathLike | None = None) -> dict:
    import torch

    from frugalml.cost.hardware import cpu_model_name

    return {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        **git_state(script),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu": cpu_model_name(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        # how busy the machine was when the figures were saved (1, 5, 15 min): timings from a shared machine say so
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def save_result(name: str, payload: dict, results_dir: str | os.PathLike | None = None) -> Path:
    """Write `payload` plus context and peak RSS to `<results>/<name>.json`; return the path."""
    out = Path(results_dir or RESULTS) / f"{name}.json"
    write_json(out, payload | {"context": context(), "peak_rss_mib": round(peak_rss_mib(), 1)})
    return out
