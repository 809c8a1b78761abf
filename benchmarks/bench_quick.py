"""`frugal <technique> ... --quick`: wall time and peak memory of each smoke-sized run.

Each command runs as a subprocess of the installed code (`python -m frugalml.cli`-style, the
same `cli.main` the `frugal` script calls), into a fresh run directory under --work; the
benchmark asserts it exits 0 and ends by printing `-> PATH` with PATH a directory that exists,
and that the next command of the usual chain (`tickets stability --run`, `video eval --run`,
`pointcloud eval --run`, `show`) accepts that path as printed; nas runs its whole chain
(train -> latency -> search -> export), each command on the path the one before printed.
Peak RSS of each command is that child's own maximum (`os.wait4`). `demo` is the full tour
`make demo` runs (the README quotes its time and peak memory), followed by `show` of its record.

    nice -n 10 python benchmarks/bench_quick.py [--only tickets,video,analog,pointcloud,nas,demo] [--work DIR]

Saves benchmarks/results/quick_runs.json (`frugalml.report.bench.save_result`). Target:
each --quick command under 90 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (technique, command after `frugal`, then the next command of the chain with {out} for the printed path)
CHAINS = {
    "tickets": [
        (["tickets", "find", "--quick", "--out", "{work}/tickets"], ["tickets", "stability", "--run", "{out}"]),
    ],
    "video": [
        (["video", "train", "--quick", "--out", "{work}/video"], ["video", "eval", "--run", "{out}"]),
    ],
    "analog": [
        (["analog", "train", "--quick", "--out", "{work}/analog"], ["show", "{out}"]),
        (["analog", "sweep", "--param", "states", "--quick", "--out", "{work}/sweep"], ["compare", "{out}"]),
    ],
    "pointcloud": [
        (["pointcloud", "train", "--quick", "--out", "{work}/pointcloud"], ["pointcloud", "eval", "--run", "{out}"]),
    ],
    # nas is a chain of four commands, each taking the path the one before printed: run_nas_chain
    # the whole tour `make demo` runs (not --quick: the README quotes its time and memory)
    "demo": [
        (["demo", "--out", "{work}/demo"], ["show", "{out}"]),
    ],
}
CHAIN_EXTRA = {"tickets stability": ["--level", "1", "--points", "3"], "video eval": ["--latency-videos", "3"]}
TECHNIQUES = [*CHAINS, "nas"]
CODE = "import sys; from frugalml.cli import main; main(sys.argv[1:])"


def _frugal(args: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run `frugal ARGS`; (process, wall seconds, peak RSS in MiB of that child: `os.wait4`'s own)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", CODE, *args], stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        done = subprocess.CompletedProcess(child.args, child.returncode, out.read(), err.read())
    return done, wall, usage.ru_maxrss / 1024


def _saved_path(p: subprocess.CompletedProcess) -> str:
    lines = [line for line in p.stdout.splitlines() if line.startswith("-> ")]
    assert p.returncode == 0, p.stderr[-2000:]
    assert lines, f"no '-> PATH' line:\n{p.stdout[-2000:]}"
    return lines[-1][3:]


def run_chain(command: list[str], follow: list[str], work: Path) -> dict:
    args = [a.format(work=work) for a in command]
    p, wall, rss = _frugal(args)
    out = _saved_path(p)
    assert Path(out).is_dir(), f"printed path {out} is not a directory"
    nxt = [a.format(out=out) for a in follow]
    nxt += CHAIN_EXTRA.get(" ".join(follow[:2]), [])
    q, next_wall, _ = _frugal(nxt)
    assert q.returncode == 0, f"{' '.join(nxt)} refused the printed path: {q.stderr[-2000:]}"
    row = {"command": "frugal " + " ".join(args), "wall_s": round(wall, 2), "peak_rss_mib": round(rss, 1)}
    row |= {"printed": out, "next": "frugal " + " ".join(nxt), "next_wall_s": round(next_wall, 2)}
    print(f"{wall:7.1f} s  {rss:7.0f} MiB  {row['command']}  (then {row['next']}: {next_wall:.1f} s)", flush=True)
    return row


def _step(args: list[str], rows: list, technique: str) -> tuple[str, subprocess.CompletedProcess]:
    """One command of a chain: run it, check it printed where its results are, keep its row."""
    p, wall, rss = _frugal(args)
    lines = [line for line in (p.stdout + p.stderr).splitlines() if line.startswith("-> ")]
    assert p.returncode == 0, p.stderr[-2000:]
    assert lines and Path(lines[-1][3:]).exists(), f"no '-> PATH' that exists:\n{p.stdout[-2000:]}"
    row = {"technique": technique, "command": "frugal " + " ".join(args), "wall_s": round(wall, 2)}
    rows.append(row | {"peak_rss_mib": round(rss, 1), "printed": lines[-1][3:]})
    print(f"{wall:7.1f} s  {rss:7.0f} MiB  {row['command']}", flush=True)
    return lines[-1][3:], p


def run_nas_chain(work: Path) -> list[dict]:
    """nas train -> latency -> search -> export, all --quick, each on the path the one before printed;
    the search budget is the middle of the latency range `nas latency` reports."""
    import json

    rows: list[dict] = []
    supernet, _ = _step(["nas", "train", "--quick", "--out", str(work / "nas")], rows, "nas")
    latency, p = _step(["nas", "latency", "--run", supernet, "--target", "host-1t", "--quick", "--json"], rows, "nas")
    low, high = json.loads(p.stdout)["latency_range_ms"]
    budget = f"{(low + high) / 2:.4f}"
    search, _ = _step(["nas", "search", "--run", latency, "--quick", "--latency-ms", budget], rows, "nas")
    export = ["nas", "export", "--run", supernet, "--arch", search, "--out", str(work / "nas-export")]
    _step(export, rows, "nas")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(TECHNIQUES), help="Techniques to run, comma-separated.")
    ap.add_argument("--work", default=None, help="Directory for the run directories (default: a temporary one).")
    opts = ap.parse_args()
    work = Path(opts.work or tempfile.mkdtemp(prefix="frugal-quick-"))
    rows = []
    try:
        for tech in opts.only.split(","):
            if tech == "nas":
                rows += run_nas_chain(work)
                continue
            for command, follow in CHAINS[tech]:
                rows.append({"technique": tech} | run_chain(command, follow, work))
    finally:
        if opts.work is None:
            shutil.rmtree(work, ignore_errors=True)
    from frugalml.report.bench import save_result

    slow = [r["command"] for r in rows if r["wall_s"] > 90]
    payload = {"runs": rows, "target_s": 90, "over_target": slow}
    print(f"saved {save_result('quick_runs', payload)}; over 90 s: {slow or 'none'}")


if __name__ == "__main__":
    main()
