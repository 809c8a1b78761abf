"""Wall-clock of `frugal train` on one process against two data-parallel processes (gloo, this machine).

Every side starts fresh processes through `frugalml.distributed.launch` (one process: a world
of one, so start-up costs the same), on the same global batch, in interleaved rounds whose
order rotates, over two seeds. Sides: one process with one torch thread, one process with all
the cores as threads (torch's own choice), two processes with one thread each (as torchrun
shares the cores out). Reported: the ratio of each side to one process, one thread - of the
whole command's wall time and of the training loop alone (median over rounds, min and max) -,
test accuracy per side (mean and spread over the seeds), peak RSS, and the machine's load.

    PYTHONPATH=src python benchmarks/bench_train_ddp.py [--rounds 2] [--epochs 5]
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from frugalml import distributed
from frugalml.files import read_json
from frugalml.report.bench import save_result
from frugalml.train import TRAIN_RESULT, TrainConfig

NOT_MEASURED = (
    "scaling on a machine with more cores, on several machines, or on GPUs (nccl) was not measured: "
    "no such machine was lent this session; this 2-core machine was shared with other jobs"
)


SIDES = {"1p1t": (1, 1), "1p-all": (1, None), "2p1t": (2, 1)}  # name: (processes, threads each)


def one_run(side: str, seed: int, epochs: int, model: str, work: Path) -> dict:
    nproc, threads = SIDES[side]
    threads = threads or os.cpu_count() or 1
    out = work / f"{side}-s{seed}-{time.monotonic_ns()}"
    cfg = TrainConfig(epochs=epochs, lr=0.1, seed=seed)
    job = {"model": model, "data": "digits", "config": asdict(cfg), "out": str(out)}
    t0 = time.perf_counter()
    distributed.launch(nproc, "frugalml.train:train_run", job, threads)
    wall = time.perf_counter() - t0
    res = read_json(out / TRAIN_RESULT)
    shutil.rmtree(out)
    assert res["processes"] == nproc
    return {
        "side": side,
        "nproc": nproc,
        "threads_each": threads,
        "seed": seed,
        "wall_s": wall,
        "loop_s": res["seconds"],
        "test_accuracy": res["final"]["test_accuracy"],
        "cpu_s": (res.get("tracking") or {}).get("cpu_s"),
    }


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summary(runs: list[dict]) -> dict:
    """Per side: wall and loop time as ratios to one process, one thread, in the same round; accuracy."""
    rounds = sorted({(x["seed"], x["round"]) for x in runs})
    at = {(x["seed"], x["round"], x["side"]): x for x in runs}
    out = {}
    for side in SIDES:
        ratio = {
            k: spread([at[(s, r, side)][k] / at[(s, r, "1p1t")][k] for s, r in rounds]) for k in ("wall_s", "loop_s")
        }
        per_seed = [
            statistics.mean(x["test_accuracy"] for x in runs if x["side"] == side and x["seed"] == s) for s in (0, 1)
        ]
        out[side] = {
            "wall_ratio": ratio["wall_s"],
            "loop_ratio": ratio["loop_s"],
            "wall_s_median": statistics.median(x["wall_s"] for x in runs if x["side"] == side),
            "accuracy": {
                "mean": statistics.mean(per_seed),
                "per_seed": per_seed,
                "spread": max(per_seed) - min(per_seed),
            },
        }
    return out


def main(rounds: int = 2, epochs: int = 5, model: str = "mlp") -> dict:
    os.environ.pop("OMP_NUM_THREADS", None)  # each side sets its threads
    load_before = os.getloadavg()
    runs = []
    names = list(SIDES)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (0, 1):
            for r in range(rounds):
                k = (r + seed * rounds) % len(names)
                for side in names[k:] + names[:k]:  # the order rotates from round to round
                    runs.append(one_run(side, seed, epochs, model, Path(tmp)) | {"round": r})
                    x = runs[-1]
                    print(
                        f"seed {seed} round {r} {side}: wall {x['wall_s']:.2f} s, loop {x['loop_s']:.2f} s", flush=True
                    )
    sides = summary(runs)
    payload = {
        "workload": f"frugal train --model {model} --data digits --epochs {epochs} --lr 0.1 (global batch 64)",
        "rounds_per_seed": rounds,
        "seeds": [0, 1],
        "sides": sides,
        "two_processes_over_one": sides["2p1t"]["wall_ratio"]["median"] / sides["1p-all"]["wall_ratio"]["median"],
        "accuracy_gap_points": 100 * abs(sides["2p1t"]["accuracy"]["mean"] - sides["1p-all"]["accuracy"]["mean"]),
        "load_average_before": load_before[0],
        "load_average_after": os.getloadavg()[0],
        "runs": runs,
        "not_measured": NOT_MEASURED,
    }
    for side, v in sides.items():
        w, lp = v["wall_ratio"], v["loop_ratio"]
        print(
            f"{side}: wall x{w['median']:.2f} ({w['min']:.2f}-{w['max']:.2f}), loop x{lp['median']:.2f} "
            f"({lp['min']:.2f}-{lp['max']:.2f}) of 1p1t; accuracy {v['accuracy']['mean']:.4f}"
        )
    print(NOT_MEASURED)
    path = save_result("train_ddp", payload)
    print(f"-> {path}")
    return payload


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=2, help="rounds per seed (each runs every side)")
    ap.add_argument("--epochs", type=int, default=5, help="training epochs of each run")
    a = ap.parse_args()
    main(rounds=a.rounds, epochs=a.epochs)
