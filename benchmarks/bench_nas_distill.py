"""Does in-place distillation help a transformer supernet on sorting? Same supernet, with and without.

Sandwich sampling (largest, smallest and 2 random sub-networks per step) in the `transformer`
space, 30 epochs, seeds 0 and 1; with distillation the smaller sub-networks learn from the
largest's outputs, without it every sub-network learns from the labels. Reported: exact match
of the greedy decode on the validation strings for the smallest and the largest sub-network
(BatchNorm-free space: no recalibration), per seed and mean. This is the evidence behind
`bench_nas_transformer.py` training with distill=False.

    .venv/bin/python benchmarks/bench_nas_distill.py [--quick] [--out runs/bench-nas-distill]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def _one(out: Path, seed: int, distill: bool, epochs: int, quick: bool) -> dict:
    from frugalml.nas.supernet import Evaluator, SupernetConfig, load_supernet, supernet_training, train_supernet

    cfg = SupernetConfig(
        space="transformer", distill=distill, seed=seed, quick=quick, train=supernet_training(epochs=epochs)
    )
    res = train_supernet(cfg, out, track=False, progress=False)
    space, net, _ = load_supernet(out)
    train, val, _test = space.dataset(quick=quick)
    ev = Evaluator(space, net, train, val)
    return {
        "seed": seed,
        "distill": distill,
        "smallest": ev(space.smallest()),
        "largest": ev(space.largest()),
        "train_seconds": res["seconds"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny settings to check the script runs")
    ap.add_argument("--out", default="runs/bench-nas-distill")
    ap.add_argument("--seeds", default="0,1")
    args = ap.parse_args()
    from frugalml.report.bench import save_result

    t0 = time.time()
    epochs = 1 if args.quick else 30
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = []
    for seed in seeds:
        for distill in (True, False):
            run = Path(args.out) / f"{'distill' if distill else 'labels'}-s{seed}"
            r = _one(run, seed, distill, epochs, args.quick)
            print(f"seed {seed} distill={distill}: smallest {r['smallest']:.3f}, largest {r['largest']:.3f}")
            runs.append(r)
    summary = {}
    for distill in (True, False):
        rows = [r for r in runs if r["distill"] == distill]
        summary["distill" if distill else "labels"] = {
            part: {
                "mean": round(statistics.mean(r[part] for r in rows), 4),
                "per_seed": [round(r[part], 4) for r in rows],
            }
            for part in ("smallest", "largest")
        }
    payload = {
        "settings": {"space": "transformer", "sampling": "sandwich", "subnets": 2, "epochs": epochs, "seeds": seeds},
        "metric": "exact match of the greedy decode on the validation strings",
        "runs": runs,
        "summary": summary,
        "wall_seconds": round(time.time() - t0, 1),
    }
    path = save_result("nas_distill" + ("_quick" if args.quick else ""), payload)
    for k, v in summary.items():
        small, large = v["smallest"], v["largest"]
        print(f"{k}: smallest {small['mean']:.3f} {small['per_seed']}, largest {large['mean']:.3f} {large['per_seed']}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
