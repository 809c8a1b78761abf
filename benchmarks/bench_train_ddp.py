"""Wall-clock of `frugal train` on one process against two data-parallel processes (gloo, this machine).

Both sides start fresh processes through `frugalml.distributed.launch` (one process: a world of
one, so start-up costs the same), on the same global batch, in interleaved rounds whose order
alternates, over two seeds. One process gets all the cores as torch threads; two get half each
(as torchrun shares them out). Reported: the ratio two/one of the whole command's wall time
and of the training loop alone (median over rounds, with min and max), test accuracy per side
(mean and spread over the seeds), peak RSS, and the machine's load while it ran.

    PYTHONPATH=src python benchmarks/bench_train_ddp.py [--rounds 3] [--epochs 10]
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


def one_run(nproc: int, seed: int, epochs: int, model: str, work: Path) -> dict:
    out = work / f"n{nproc}-s{seed}-{time.monotonic_ns()}"
    cfg = TrainConfig(epochs=epochs, lr=0.1, seed=seed)
    job = {"model": model, "data": "digits", "config": asdict(cfg), "out": str(out)}
    threads = max(1, (os.cpu_count() or 1) // nproc)
    t0 = time.perf_counter()
    distributed.launch(nproc, "frugalml.train:train_run", job, threads)
    wall = time.perf_counter() - t0
    res = read_json(out / TRAIN_RESULT)
    shutil.rmtree(out)
    assert res["processes"] == nproc
    return {
        "nproc": nproc,
        "seed": seed,
        "threads_each": threads,
        "wall_s": wall,
        "loop_s": res["seconds"],
        "test_accuracy": res["final"]["test_accuracy"],
        "cpu_s": (res.get("tracking") or {}).get("cpu_s"),
    }


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def main(rounds: int = 3, epochs: int = 10, model: str = "mlp") -> dict:
    os.environ.pop("OMP_NUM_THREADS", None)  # the launcher shares the cores out
    load_before = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (0, 1):
            for r in range(rounds):
                order = (1, 2) if r % 2 == 0 else (2, 1)
                pair = {n: one_run(n, seed, epochs, model, Path(tmp)) for n in order}
                for n in (1, 2):
                    runs.append(pair[n] | {"round": r})
                print(
                    f"seed {seed} round {r}: wall 1 proc {pair[1]['wall_s']:.2f} s, 2 procs {pair[2]['wall_s']:.2f} s; "
                    f"loop {pair[1]['loop_s']:.2f} / {pair[2]['loop_s']:.2f} s",
                    flush=True,
                )
    by = {n: [x for x in runs if x["nproc"] == n] for n in (1, 2)}
    wall_ratio = [b["wall_s"] / a["wall_s"] for a, b in zip(by[1], by[2])]
    loop_ratio = [b["loop_s"] / a["loop_s"] for a, b in zip(by[1], by[2])]
    cpu_ratio = [b["cpu_s"] / a["cpu_s"] for a, b in zip(by[1], by[2]) if a["cpu_s"] and b["cpu_s"]]
    accuracy = {}
    for n in (1, 2):
        per_seed = [statistics.mean(x["test_accuracy"] for x in by[n] if x["seed"] == s) for s in (0, 1)]
        accuracy[str(n)] = {
            "mean": statistics.mean(per_seed),
            "per_seed": per_seed,
            "spread": max(per_seed) - min(per_seed),
        }
    payload = {
        "workload": f"frugal train --model {model} --data digits --epochs {epochs} --lr 0.1 (global batch 64)",
        "rounds_per_seed": rounds,
        "seeds": [0, 1],
        "wall_ratio_2_over_1": spread(wall_ratio),
        "loop_ratio_2_over_1": spread(loop_ratio),
        "cpu_ratio_2_over_1": spread(cpu_ratio) if cpu_ratio else None,
        "accuracy": accuracy,
        "accuracy_gap_points": 100 * abs(accuracy["2"]["mean"] - accuracy["1"]["mean"]),
        "load_average_before": load_before[0],
        "load_average_after": os.getloadavg()[0],
        "runs": runs,
        "not_measured": NOT_MEASURED,
    }
    w, lp = payload["wall_ratio_2_over_1"], payload["loop_ratio_2_over_1"]
    print(f"wall ratio 2/1: median {w['median']:.2f} (min {w['min']:.2f}, max {w['max']:.2f})")
    print(f"loop ratio 2/1: median {lp['median']:.2f} (min {lp['min']:.2f}, max {lp['max']:.2f})")
    print(f"accuracy 1 proc {accuracy['1']['mean']:.4f}, 2 procs {accuracy['2']['mean']:.4f}")
    print(NOT_MEASURED)
    path = save_result("train_ddp", payload)
    print(f"-> {path}")
    return payload


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3, help="rounds per seed (each runs both sides)")
    ap.add_argument("--epochs", type=int, default=10, help="training epochs of each run")
    a = ap.parse_args()
    main(rounds=a.rounds, epochs=a.epochs)
