"""PCM (unidirectional differential pairs) with and without refresh: digits, MLP 64-64-10,
10 epochs, plain analog SGD, 2 seeds. Refresh: a pair whose larger side passed 80% of its
range is reset and its weight rewritten onto one side (the rewrite pulses are counted).

    .venv/bin/python benchmarks/bench_analog_pcm.py
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict
from pathlib import Path

from frugalml.analog.run import AnalogRunConfig, _sweep_job, analog_training
from frugalml.executor import bench_executor, run_jobs
from frugalml.report.bench import save_result

OUT = Path("runs/bench/analog_pcm")
SEEDS = (0, 1)


def main() -> None:
    t0 = time.time()
    jobs, keys = [], []
    for refresh in (None, 0.8):
        for s in SEEDS:
            c = AnalogRunConfig(device="pcm", train=analog_training(epochs=10), seed=s, refresh=refresh)
            jobs.append(
                {"cfg": asdict(c), "out": str(OUT / c.name()), "digital_dir": str(OUT / "digital" / c.digital_key())}
            )
            keys.append((refresh, s))
    ex = bench_executor(2)  # FRUGAL_EXECUTOR=ray:auto: the jobs' files come back into OUT
    res = run_jobs(_sweep_job, jobs[:2], ex, root=OUT)  # the digital twins first (shared dirs)
    res += run_jobs(_sweep_job, jobs[2:], ex, root=OUT)
    rows = [{"refresh": f, "seed": s} | r for (f, s), r in zip(keys, res)]
    summary = {}
    for f in (None, 0.8):
        rs = [r for r in rows if r["refresh"] == f]
        acc = [r["accuracy"] for r in rs]
        summary[str(f)] = {
            "mean": statistics.fmean(acc),
            "min": min(acc),
            "max": max(acc),
            "pulses_mean": statistics.fmean(r["pulses"] for r in rs),
            "energy_j_mean": statistics.fmean(r["energy_j"] for r in rs),
        }
        print(
            f"pcm refresh={f}: accuracy {summary[str(f)]['mean']:.4f} [{min(acc):.4f}, {max(acc):.4f}], "
            f"pulses {summary[str(f)]['pulses_mean']:.3g}"
        )
    digital = statistics.fmean(r["digital_accuracy"] for r in rows)
    print(f"digital {digital:.4f}")
    save_result(
        "analog_pcm",
        {
            "rows": rows,
            "summary": summary,
            "digital_mean": digital,
            "seconds": time.time() - t0,
            "note": "other engineers' jobs were running on the same 2 cores",
        },
    )


if __name__ == "__main__":
    main()
