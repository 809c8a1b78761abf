"""Does rewinding help? Conv-2 on digits, IMP to high sparsity with rewind 0 vs an early iteration.

Frankle et al. 2020 find that rewinding to 0.1-7% of training instead of iteration 0 makes
IMP work where it otherwise fails, and that it coincides with the ticket becoming stable
(linear mode connectivity). Conv-2 (64-channel convs, FC 256-256) on 8x8 digits; global
magnitude pruning, 60% of the remaining weights per level, 4 levels (2.6% remaining);
SGD lr 0.1, momentum 0.9, cosine schedule, 8 epochs (176 iterations); rewind 0 vs 5
iterations (2.8% of training). 2 seeds. Stability of the sparsest ticket for seed 0.

    .venv/bin/python benchmarks/bench_tickets_rewind.py [--quick] [--workers 2 | --executor ray:auto]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from frugalml.report.bench import RESULTS, save_result
from frugalml.tickets.imp import TicketConfig, find
from frugalml.tickets.instability import stability
from frugalml.train import TrainConfig


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for rewind, res in results.items():
        lv = res["levels"]
        ax.errorbar(
            [100 * x["remaining"] for x in lv],
            [100 * x["accuracy"]["mean"] for x in lv],
            yerr=[100 * x["accuracy"]["std"] for x in lv],
            fmt="o-",
            capsize=3,
            label=f"rewind {rewind}",
        )
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("weights remaining (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Conv-2 on digits, global IMP, 2 seeds", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executor", default=None, help="serial, processes[:N], ray, ray:auto, ray://HOST:PORT")
    ap.add_argument("--runs", default="runs/bench_tickets")
    args = ap.parse_args()
    levels, epochs = (1, 1) if args.quick else (4, 8)
    results, payload = (
        {},
        {
            "what": "rewind 0 vs early rewind, Conv-2 on digits",
            "seeds": [0, 1],
            "note": "shared 2-core machine, other jobs running; final-epoch test accuracy",
        },
    )
    t0 = time.perf_counter()
    for rewind in ("0", "5it"):
        cfg = TicketConfig(
            model="conv2",
            data="digits",
            levels=levels,
            rate=0.6,
            strategy="global",
            rewind=rewind,
            seeds=2,
            controls=[],
            train=TrainConfig(epochs=epochs, batch_size=64, lr=0.1, optimizer="sgd", momentum=0.9, schedule="cosine"),
        )
        out = Path(args.runs) / f"rewind_conv2_digits_{rewind}{'_quick' if args.quick else ''}"
        results[rewind] = find(cfg, out, workers=args.workers, progress=False, executor=args.executor)
        st = stability(out, levels, seeds=[0])
        results[rewind]["stability"] = st
    payload["seconds"] = time.perf_counter() - t0
    print(" remaining   rewind 0        rewind 5it      difference")
    rows = []
    for a, b in zip(results["0"]["levels"], results["5it"]["levels"]):
        d = b["accuracy"]["mean"] - a["accuracy"]["mean"]
        rows.append(
            {
                "level": a["level"],
                "remaining": a["remaining"],
                "rewind_0": a["accuracy"],
                "rewind_5it": b["accuracy"],
                "rewind_5it_minus_rewind_0": d,
            }
        )
        print(
            f" {100 * a['remaining']:8.2f}%  {100 * a['accuracy']['mean']:6.2f} ± {100 * a['accuracy']['std']:4.2f}"
            f"   {100 * b['accuracy']['mean']:6.2f} ± {100 * b['accuracy']['std']:4.2f}   {100 * d:+6.2f}"
        )
    payload["levels"] = rows
    payload["stability_sparsest_seed0"] = {
        r: {"barrier": results[r]["stability"]["barrier"], "stable": results[r]["stability"]["stable"]} for r in results
    }
    for r in results:
        print(
            f" stability at {100 * rows[-1]['remaining']:.1f}% remaining, rewind {r}: barrier "
            f"{100 * results[r]['stability']['barrier']:.2f}%"
        )
    last = rows[-1]
    spread = max(last["rewind_0"]["std"], last["rewind_5it"]["std"])
    payload["verdict"] = (
        "rewinding helps at the sparsest level"
        if last["rewind_5it_minus_rewind_0"] > max(0.01, 2 * spread)
        else "no clear rewinding effect at this scale (difference within 1 point or 2x the seed spread)"
    )
    print(" verdict:", payload["verdict"])
    payload["configs"] = {r: results[r]["config"] for r in results}
    name = "tickets_rewind_conv2" + ("_quick" if args.quick else "")
    if not args.quick:
        plot(results, RESULTS / f"{name}.png")
    print(f"saved {save_result(name, payload)}")


if __name__ == "__main__":
    main()
