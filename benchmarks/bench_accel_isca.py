"""Eyeriss ISCA 2016 dataflow comparison: RS vs WS / OS / NLR on AlexNet, batch 16, isca16 setup.

Published (REFERENCE.md): RS is 1.4x-2.5x more energy-efficient than each of WS, OS and NLR
on CONV layers and at least 1.3x on FC layers (256 PEs, 512 B RF, 128 kB buffer,
normalised energies DRAM 200 / buffer 6 / array 2 / RF 1 / MAC 1), the dataflows compared
under the same chip area.

Two comparisons, each dataflow mapped with the default search:
- equal area (the default of `frugal accel compare --accel isca16`): each dataflow on the
  RF/buffer split of RS's storage area where it spends least energy (`accel.area`; an RF
  byte costs 2 buffer bytes, our assumption); the same with an RF byte at 1 and 4 buffer
  bytes, to show how much the ratios hang on that assumption;
- equal storage (`--equal-storage`): every dataflow on the same 512 B RF and 128 kB buffer.

Run: .venv/bin/python benchmarks/bench_accel_isca.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dataclasses  # noqa: E402
import time  # noqa: E402

from frugalml.accel import load_arch, model_layers  # noqa: E402
from frugalml.accel.energy import compare  # noqa: E402
from frugalml.accel.plots import dataflow_bars  # noqa: E402
from frugalml.report.bench import RESULTS, save_result  # noqa: E402

BAND = {"conv": (1.4, 2.5), "fc": (1.3, None)}
SWEEP = (1.0, 4.0)  # RF byte / buffer byte besides the spec's 2


def run(layers, arch, equal_area: bool) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    table, results = compare(layers, arch, equal_area=equal_area)
    rows = {}
    for df, row in table.items():
        conv = results[df].total(("conv",))
        row = {k: v for k, v in row.items() if k != "mapped_in_s"}
        row["conv_dram_per_mac"] = conv["dram_per_mac"]
        row["conv_utilization"] = conv["utilization"]
        row["mappings"] = {r.name: r.mapping for r in results[df].layers}
        rows[df] = row
    for df, row in rows.items():
        for part in ("conv", "fc"):
            ratio = row[f"{part}_energy_per_mac"] / rows["rs"][f"{part}_energy_per_mac"]
            lo, hi = BAND[part]
            row[f"{part}_vs_rs"] = ratio
            row[f"{part}_in_band"] = None if df == "rs" else (ratio >= lo and (hi is None or ratio <= hi))
            # how far below the band's floor (positive: a miss), in ratio points
            row[f"{part}_short_of_band"] = None if df == "rs" else max(lo - ratio, 0.0)
    return {"dataflows": rows, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def show(title: str, rows: dict) -> None:
    print(f"[{title}]  energy per MAC (1 = one MAC), ratio to RS (published: CONV 1.4-2.5x, FC >= 1.3x)")
    for df, row in rows.items():
        flag = {True: "in band", False: "MISS", None: "ref"}
        print(
            f"  {df:4s} RF {row['rf_bytes']:4d} B, buffer {row['glb_bytes'] / 1024:6.1f} kB   "
            f"CONV {row['conv_energy_per_mac']:7.3f} ({row['conv_vs_rs']:.2f}x, {flag[row['conv_in_band']]})   "
            f"FC {row['fc_energy_per_mac']:7.3f} ({row['fc_vs_rs']:.2f}x, {flag[row['fc_in_band']]})"
        )


def main():
    arch = load_arch("isca16")
    layers = model_layers("alexnet-grouped", batch=16)
    payload = {
        "model": "alexnet-grouped",
        "arch": arch.to_dict(),
        "batch": 16,
        "published": {"conv_ratio_band": [1.4, 2.5], "fc_ratio_min": 1.3},
    }
    payload["equal_area"] = run(layers, arch, equal_area=True)
    show(f"equal area, RF byte = {arch.area['rf_per_byte']:g} buffer bytes", payload["equal_area"]["dataflows"])
    payload["equal_storage"] = run(layers, arch, equal_area=False)
    show("equal storage: 512 B RF, 128 kB buffer for all", payload["equal_storage"]["dataflows"])
    payload["area_sweep"] = {f"{arch.area['rf_per_byte']:g}": _ratios(payload["equal_area"]["dataflows"])}
    for r in SWEEP:
        swept = dataclasses.replace(arch, area=dict(arch.area, rf_per_byte=r))
        rows = run(layers, swept, equal_area=True)["dataflows"]
        payload["area_sweep"][f"{r:g}"] = _ratios(rows)
        show(f"equal area, RF byte = {r:g} buffer bytes", rows)
    dataflow_bars(
        payload["equal_area"]["dataflows"],
        RESULTS / "accel_isca_dataflows.png",
        "AlexNet batch 16, isca16 area, each dataflow on its best RF/buffer split",
    )
    payload["note"] = (
        "ratios from one run; other engineers' jobs shared the 2 CPU cores, which affects only the "
        "timings, not the modelled energies"
    )
    print("saved", save_result("accel_isca", payload))


def _ratios(rows: dict) -> dict:
    keep = ("conv_vs_rs", "fc_vs_rs", "conv_short_of_band", "rf_bytes", "glb_bytes", "conv_energy_per_mac")
    return {df: {k: row[k] for k in keep} for df, row in rows.items()}


if __name__ == "__main__":
    main()
