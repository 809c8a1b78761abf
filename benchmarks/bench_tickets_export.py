"""Export at >= 90% sparsity: file size and measured CPU latency, exported vs dense-masked.

Uses the MNIST-1D LeNet-300-100 tickets of bench_tickets_lenet.py (runs it first if its
run directory is missing). For each chosen level and both formats: bytes on disk of the
dense checkpoint (safetensors, zeros stored) vs the export, max |logit difference|, and
latency (torch.utils.benchmark median, 1 thread) at batch 1 and batch 256. Latencies are
taken on a shared 2-core machine with other jobs running: read the ratios, not the
absolute numbers, and expect noise of tens of percent.

    .venv/bin/python benchmarks/bench_tickets_export.py [--run runs/bench_tickets/lenet_mnist1d]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from frugalml.report.bench import RESULTS, save_result
from frugalml.tickets.exporting import export
from frugalml.tickets.imp import level_dir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="runs/bench_tickets/lenet_mnist1d")
    ap.add_argument("--levels", default="11,14", help="levels to export (11: 9.1%% left, 14: 4.8%%)")
    args = ap.parse_args()
    run = Path(args.run)
    levels = [int(x) for x in args.levels.split(",")]
    if not (level_dir(run, max(levels), 0) / "weights.safetensors").exists():
        subprocess.run([sys.executable, "benchmarks/bench_tickets_lenet.py"], check=True)
    rows = []
    for level in levels:
        for fmt in ("compact", "sparse"):
            res = export(
                level_dir(run, level, 0),
                fmt,
                out=RESULTS.parent.parent / "runs" / "bench_tickets" / f"export_{level}_{fmt}",
            )
            rows.append(
                {
                    k: res[k]
                    for k in (
                        "format",
                        "remaining",
                        "sparsity",
                        "bytes_dense",
                        "bytes_export",
                        "size_ratio",
                        "max_abs_diff",
                        "accuracy_dense",
                        "accuracy_export",
                        "latency",
                        "arch",
                    )
                }
                | {"level": level}
            )
            lat = res["latency"]
            print(
                f"level {level} ({100 * res['sparsity']:.1f}% sparse) {fmt:8s}: {res['bytes_dense']:,} -> "
                f"{res['bytes_export']:,} bytes ({res['size_ratio']:.1f}x smaller); latency b=1 "
                f"{lat['1']['dense_s'] * 1e6:.1f} -> {lat['1']['export_s'] * 1e6:.1f} us "
                f"({lat['1']['speedup']:.2f}x), b=256 {lat['256']['dense_s'] * 1e6:.0f} -> "
                f"{lat['256']['export_s'] * 1e6:.0f} us ({lat['256']['speedup']:.2f}x); hidden "
                f"{res['arch'].get('hidden_before')} -> {res['arch']['kwargs'].get('hidden')}"
            )
    payload = {
        "run": str(run),
        "seed": 0,
        "rows": rows,
        "acceptance_5x_smaller_at_90pct": any(r["sparsity"] >= 0.9 and r["size_ratio"] >= 5 for r in rows),
        "note": "latency: torch.utils.benchmark median, 1 thread, shared 2-core machine with other jobs",
    }
    print(f"saved {save_result('tickets_export', payload)}")


if __name__ == "__main__":
    main()
