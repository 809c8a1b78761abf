"""Eyeriss ISCA 2016 dataflow comparison: RS vs WS / OS / NLR on AlexNet, batch 16, isca16 setup.

Published (REFERENCE.md): RS is 1.4x-2.5x more energy-efficient than each of WS, OS and NLR
on CONV layers and at least 1.3x on FC layers (256 PEs, 512 B RF, 128 kB buffer,
normalised energies DRAM 200 / buffer 6 / array 2 / RF 1 / MAC 1).

Run: .venv/bin/python benchmarks/bench_accel_isca.py
Each dataflow is mapped twice: with the default search and a more thorough one (more
candidates kept), so the ratios can be seen not to hinge on search effort.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import time  # noqa: E402

from frugalml.accel import analyze, load_arch, model_layers  # noqa: E402
from frugalml.accel.plots import dataflow_bars  # noqa: E402
from frugalml.report.bench import RESULTS, save_result  # noqa: E402

EFFORTS = {"default": {}, "thorough": {"keep": 64, "max_arrays": 256, "limit": 10, "starts_n": 12}}
BAND = {"conv": (1.4, 2.5), "fc": (1.3, None)}


def main():
    arch = load_arch("isca16")
    layers = model_layers("alexnet-grouped", batch=16)
    payload = {
        "model": "alexnet-grouped",
        "arch": arch.to_dict(),
        "batch": 16,
        "published": {"conv_ratio_band": [1.4, 2.5], "fc_ratio_min": 1.3},
        "efforts": {},
    }
    for effort, kw in EFFORTS.items():
        rows = {}
        for df in ("rs", "ws", "os", "nlr"):
            t0, c0 = time.perf_counter(), time.process_time()
            res = analyze(layers, arch, df, **kw)
            conv, fc = res.total(("conv",)), res.total(("fc",))
            rows[df] = {
                "conv_energy_per_mac": conv["energy_per_mac"],
                "fc_energy_per_mac": fc["energy_per_mac"],
                "total_energy": res.total()["energy"]["total"],
                "conv_energy_by_level": conv["energy"],
                "fc_energy_by_level": fc["energy"],
                "conv_dram_per_mac": conv["dram_per_mac"],
                "conv_utilization": conv["utilization"],
                "wall_s": time.perf_counter() - t0,
                "cpu_s": time.process_time() - c0,
                "mappings": {r.name: r.mapping for r in res.layers},
            }
        for df, row in rows.items():
            for part in ("conv", "fc"):
                ratio = row[f"{part}_energy_per_mac"] / rows["rs"][f"{part}_energy_per_mac"]
                row[f"{part}_vs_rs"] = ratio
                lo, hi = BAND[part]
                row[f"{part}_in_band"] = None if df == "rs" else (ratio >= lo and (hi is None or ratio <= hi))
        payload["efforts"][effort] = {"search": kw, "dataflows": rows}
        print(f"[{effort} search]  energy per MAC (1 = one MAC)   ratio to RS (published: CONV 1.4-2.5x, FC >= 1.3x)")
        for df, row in rows.items():
            print(
                f"  {df:4s} CONV {row['conv_energy_per_mac']:7.3f} ({row['conv_vs_rs']:.2f}x, "
                f"{'in band' if row['conv_in_band'] else 'MISS' if row['conv_in_band'] is False else 'ref'})   "
                f"FC {row['fc_energy_per_mac']:7.3f} ({row['fc_vs_rs']:.2f}x, "
                f"{'ok' if row['fc_in_band'] else 'MISS' if row['fc_in_band'] is False else 'ref'})   "
                f"mapped in {row['cpu_s']:.1f} s CPU"
            )
    best = payload["efforts"]["thorough"]["dataflows"]
    dataflow_bars(best, RESULTS / "accel_isca_dataflows.png", "AlexNet batch 16 on isca16 (thorough search)")
    payload["note"] = (
        "ratios from one run; other engineers' jobs shared the 2 CPU cores, which affects only the "
        "timings, not the modelled energies"
    )
    print("saved", save_result("accel_isca", payload))


if __name__ == "__main__":
    main()
