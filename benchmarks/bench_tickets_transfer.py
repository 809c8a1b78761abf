"""Ticket transfer (Morcos et al. 2019): digits 0-4 -> digits 5-9 with the LeNet-300-100 MLP.

IMP on digits 0-4 (layer-wise, 40% per level, 5 levels, rewind 0, 2 seeds, 20 epochs,
cosine). The ticket at the last level (mask + initial weights, output layer
re-initialised because the classes differ) is trained on digits 5-9 and compared with a
ticket found by IMP on 5-9 itself (same settings and seeds), random pruning at the same
per-layer sparsity, and the dense network on 5-9.

    .venv/bin/python benchmarks/bench_tickets_transfer.py [--quick]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from frugalml.report.bench import save_result
from frugalml.tickets.imp import TicketConfig, find
from frugalml.tickets.transferring import transfer
from frugalml.train import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", default="runs/bench_tickets")
    args = ap.parse_args()
    levels, epochs = (1, 1) if args.quick else (5, 20)
    cfg = TicketConfig(
        model="mlp",
        data="digits:classes=0-4",
        levels=levels,
        rate=0.4,
        seeds=2,
        controls=[],
        train=TrainConfig(epochs=epochs, batch_size=32, lr=0.05, schedule="cosine"),
    )
    src = Path(args.runs) / f"transfer_src_digits04{'_quick' if args.quick else ''}"
    t0 = time.perf_counter()
    find(cfg, src, progress=False)
    res = transfer(src / f"level_{levels}", "digits:classes=5-9", progress=False)
    res["seconds"] = time.perf_counter() - t0
    for key in ("transferred_accuracy", "target_ticket_accuracy", "random_accuracy", "target_dense_accuracy"):
        s = res[key]
        seeds = [round(100 * v, 2) for v in s["per_seed"]]
        print(f"{key:24s} {100 * s['mean']:6.2f} ± {100 * s['std']:.2f}  per seed {seeds}")
    print(f"at {100 * res['remaining']:.1f}% of weights remaining; output layer re-initialised: {res['reinit_output']}")
    res["note"] = "shared 2-core machine, other jobs running; final-epoch test accuracy on digits 5-9"
    print(f"saved {save_result('tickets_transfer' + ('_quick' if args.quick else ''), res)}")


if __name__ == "__main__":
    main()
