"""How fast does `frugal --help` answer? (target: well under 2 s)

Timed against the floor of starting Python itself, interleaved, median of N runs each.

    python benchmarks/bench_cli_startup.py [--reps 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from frugalml.report.bench import save_result


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    frugal = str(Path(sys.executable).with_name("frugal"))
    runs = {"python -c pass": [], "frugal --help": []}
    for _ in range(args.reps):
        runs["python -c pass"].append(timed([sys.executable, "-c", "pass"]))
        runs["frugal --help"].append(timed([frugal, "--help"]))
    med = {k: statistics.median(v) for k, v in runs.items()}
    payload = {
        "median_seconds": med,
        "all_seconds": runs,
        "reps": args.reps,
        "target_seconds_below": 2.0,
        "met": med["frugal --help"] < 2.0,
    }
    path = save_result("cli_startup", payload)
    print(f"frugal --help: {med['frugal --help']:.3f} s median (python itself: {med['python -c pass']:.3f} s)")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
