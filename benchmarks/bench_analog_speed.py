"""Acceptance: a 10-epoch analog digits run finishes in under 2 minutes on 2 cores.

Times the whole `frugal analog train` path (analog run and its digital twin, fresh run
directories) for ECRAM with SGD and with Tiki-Taka, wall clock and process CPU time, and
the share of the analog step spent in the pulsed update.

    .venv/bin/python benchmarks/bench_analog_speed.py
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from frugalml.analog import tile
from frugalml.analog.run import AnalogRunConfig, analog_run, analog_training, digital_run
from frugalml.report.bench import save_result

OUT = Path("runs/bench/analog_speed")


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    r = fn()
    return r, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    rows = []
    # how much of the analog time is the pulsed update: wrap analog_step with a timer
    spent = {"update_s": 0.0}
    real_step = tile.analog_step

    def step(model, lr):
        t = time.perf_counter()
        real_step(model, lr)
        spent["update_s"] += time.perf_counter() - t

    tile.analog_step = step
    try:
        for alg in ("sgd", "tiki-taka"):
            cfg = AnalogRunConfig(device="ecram", algorithm=alg, train=analog_training(epochs=10), seed=0)
            spent["update_s"] = 0.0
            dig, dw, dc = timed(lambda c=cfg, a=alg: digital_run(c, OUT / a / "digital"))
            ana, aw, ac = timed(lambda c=cfg, a=alg: analog_run(c, OUT / a / "analog"))
            row = {
                "algorithm": alg,
                "analog_wall_s": aw,
                "analog_cpu_s": ac,
                "digital_wall_s": dw,
                "digital_cpu_s": dc,
                "total_wall_s": aw + dw,
                "pulsed_update_wall_s": spent["update_s"],
                "analog_over_digital_wall": aw / dw,
                "accuracy": ana["accuracy"],
                "digital_accuracy": dig["accuracy"],
                "under_2_minutes": aw + dw < 120,
            }
            rows.append(row)
            print(
                f"{alg:>9}: analog {aw:.1f} s wall ({ac:.1f} s CPU; pulsed update {spent['update_s']:.1f} s), "
                f"digital {dw:.1f} s; total {aw + dw:.1f} s; "
                f"accuracy {ana['accuracy']:.4f} vs {dig['accuracy']:.4f}"
            )
    finally:
        tile.analog_step = real_step
    save_result(
        "analog_speed",
        {
            "rows": rows,
            "torch_threads_in_runs": 1,
            "config": "digits, MLP 64-64-10, batch 10, BL 31, 10 epochs, ecram",
            "note": "other engineers' jobs were running on the same 2 cores (wall times are upper bounds)",
        },
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
