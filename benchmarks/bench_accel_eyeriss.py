"""Eyeriss v1 chip (JSSC 2017): AlexNet CONV1-5 at batch 4 under row stationary, and mapping time.

Measured on the chip (REFERENCE.md): 2.66 G MACs, 15.4 MB DRAM traffic with run-length
compression of activations (= 0.0029 16-bit accesses per MAC), 208.5 MB buffer traffic,
115.3 ms at 200 MHz. The model does not compress, so its DRAM figure should sit above the
chip's; the acceptance bar is "within 2x".

Mapping time: AlexNet (all 8 layers) and ResNet-50 (54 layers) on eyeriss-v1, one thread,
CPU seconds of this process (other jobs shared the 2 cores, so wall time is longer).

Run: .venv/bin/python benchmarks/bench_accel_eyeriss.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import time  # noqa: E402

from frugalml.accel import analyze, load_arch, model_layers  # noqa: E402
from frugalml.accel.plots import energy_per_layer  # noqa: E402
from frugalml.report.bench import RESULTS, save_result  # noqa: E402

CHIP = {"macs": 2.66e9, "dram_bytes": 15.4e6, "glb_bytes": 208.5e6, "latency_s": 115.3e-3, "power_w": 0.278}


def timed(layers, arch):
    t0, c0 = time.perf_counter(), time.process_time()
    res = analyze(layers, arch, "rs")
    return res, time.process_time() - c0, time.perf_counter() - t0


def main():
    import torch

    torch.set_num_threads(1)
    arch = load_arch("eyeriss-v1")
    alex = model_layers("alexnet-grouped", batch=4)
    res, cpu, wall = timed(alex, arch)
    conv = res.total(("conv",))
    word = arch.word_bytes
    dram_per_mac = conv["dram_per_mac"]
    chip_dram_per_mac = CHIP["dram_bytes"] / word / CHIP["macs"]
    out = res.to_dict()
    payload = {
        "model": "alexnet-grouped",
        "arch": "eyeriss-v1",
        "batch": 4,
        "chip_measured": CHIP,
        "conv_macs": conv["macs"],
        "conv_dram_accesses_per_mac": dram_per_mac,
        "chip_dram_accesses_per_mac": chip_dram_per_mac,
        "dram_ratio_model_over_chip": dram_per_mac / chip_dram_per_mac,
        "dram_within_2x": 0.5 <= dram_per_mac / chip_dram_per_mac <= 2,
        "conv_dram_mb": conv["accesses"]["dram"]["total"] * word / 1e6,
        "conv_glb_mb": conv["accesses"]["glb"]["total"] * word / 1e6,
        "conv_latency_s": conv["latency_s"],
        "conv_utilization": conv["utilization"],
        "conv_energy_per_mac": conv["energy_per_mac"],
        "conv_energy_by_level": conv["energy"],
        "layers": out["layers"],
        "mapping_time": {"alexnet_8_layers": {"cpu_s": cpu, "wall_s": wall, "layers": len(alex)}},
    }
    print(f"AlexNet CONV1-5 batch 4 on eyeriss-v1 (rs): {conv['macs'] / 1e9:.3f} G MACs")
    print(
        f"  DRAM accesses per MAC: model {dram_per_mac:.4f} vs chip {chip_dram_per_mac:.4f} "
        f"(ratio {dram_per_mac / chip_dram_per_mac:.2f}; chip compresses activations)"
    )
    print(
        f"  DRAM traffic {payload['conv_dram_mb']:.1f} MB (chip 15.4 MB); buffer traffic "
        f"{payload['conv_glb_mb']:.1f} MB (chip 208.5 MB)"
    )
    print(
        f"  latency {conv['latency_s'] * 1e3:.1f} ms at 200 MHz, compute-bound (chip 115.3 ms); "
        f"utilisation {conv['utilization']:.2f}"
    )
    print(f"  mapping AlexNet (8 layers): {cpu:.2f} s CPU ({wall:.2f} s wall)")
    energy_per_layer(out, RESULTS / "accel_eyeriss_v1_alexnet_layers.png", "AlexNet batch 4: rs on eyeriss-v1")
    r50 = model_layers("resnet50", batch=1)
    _, cpu50, wall50 = timed(r50, arch)
    payload["mapping_time"]["resnet50"] = {"cpu_s": cpu50, "wall_s": wall50, "layers": len(r50)}
    print(f"  mapping ResNet-50 ({len(r50)} layers): {cpu50:.2f} s CPU ({wall50:.2f} s wall)")
    payload["note"] = "other engineers' jobs shared the 2 CPU cores during this run (affects wall times only)"
    print("saved", save_result("accel_eyeriss_v1", payload))


if __name__ == "__main__":
    main()
