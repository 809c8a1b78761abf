"""Eyeriss v1 chip (JSSC 2017): AlexNet CONV1-5 at batch 4 under row stationary, and mapping time.

Measured on the chip (REFERENCE.md): 2.66 G MACs, 15.4 MB DRAM traffic with run-length
compression of activations (= 0.0029 16-bit accesses per MAC), 208.5 MB buffer traffic,
278 mW and 115.3 ms at 200 MHz. The eyeriss-v1 spec models the chip's run-length code on
activations crossing DRAM, its zero gating and its weights bypassing the buffer, with
per-access energies in pJ (sources in the spec). Targets: DRAM accesses per MAC within 1.3x
of the chip's; power and time within 2x.

The compression ratios are measured on the forward pass of our AlexNet (random weights,
a Gaussian input), whose ReLU outputs are about half zeros; a trained AlexNet on real
images has sparser activations. So the run also reports DRAM per MAC at assumed activation
densities (zeros placed at random), and the density the chip's figure would need.

Mapping time: AlexNet (all 8 layers) and ResNet-50 (54 layers) on eyeriss-v1, one thread,
CPU seconds of this process (other jobs shared the 2 cores, so wall time is longer).

Run: .venv/bin/python benchmarks/bench_accel_eyeriss.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import copy  # noqa: E402
import dataclasses  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from frugalml.accel import analyze, load_arch, model_layers  # noqa: E402
from frugalml.accel.energy import _compress_activations  # noqa: E402
from frugalml.accel.plots import energy_per_layer  # noqa: E402
from frugalml.accel.workload import rlc_words  # noqa: E402
from frugalml.report.bench import RESULTS, save_result  # noqa: E402

CHIP = {"macs": 2.66e9, "dram_bytes": 15.4e6, "glb_bytes": 208.5e6, "latency_s": 115.3e-3, "power_w": 0.278}
DENSITIES = (0.5, 0.4, 0.3, 0.2)


def timed(layers, arch):
    t0, c0 = time.perf_counter(), time.process_time()
    res = analyze(layers, arch, "rs")
    return res, time.process_time() - c0, time.perf_counter() - t0


def rlc_at_density(d: float, n: int = 1_000_000) -> float:
    """Compressed / dense size of n values with a fraction d nonzero, zeros at random (seed 0)."""
    mask = np.random.default_rng(0).random(n) < d
    return rlc_words(mask.astype(np.int16)) / n


def dram_at_density(raw, d: float) -> float:
    """DRAM accesses per MAC of the uncompressed result `raw` if every activation but the image had density d."""
    ratio, words, macs = rlc_at_density(d), 0.0, 0
    for i, r in enumerate(raw.layers):
        layer = dataclasses.replace(_LAYERS[r.name], input_rlc=ratio if i else 1.0, output_rlc=ratio)
        acc = copy.deepcopy(r.accesses)
        _compress_activations(acc, layer)
        words += sum(acc["dram"].values())
        macs += r.macs
    return words / macs


_LAYERS: dict = {}


def chip_comparison(conv, raw_conv, arch) -> dict:
    word = arch.word_bytes
    chip_dram = CHIP["dram_bytes"] / word / CHIP["macs"]
    chip_energy = CHIP["power_w"] * CHIP["latency_s"]
    return {
        "conv_macs": conv["macs"],
        "conv_dram_accesses_per_mac": conv["dram_per_mac"],
        "conv_dram_accesses_per_mac_uncompressed": raw_conv["dram_per_mac"],
        "chip_dram_accesses_per_mac": chip_dram,
        "dram_ratio_model_over_chip": conv["dram_per_mac"] / chip_dram,
        "dram_ratio_uncompressed_over_chip": raw_conv["dram_per_mac"] / chip_dram,
        "dram_within_1_3x": conv["dram_per_mac"] / chip_dram <= 1.3,
        "conv_dram_mb": conv["accesses"]["dram"]["total"] * word / 1e6,
        "conv_glb_mb": conv["accesses"]["glb"]["total"] * word / 1e6,
        "conv_latency_s": conv["latency_s"],
        "latency_ratio_model_over_chip": conv["latency_s"] / CHIP["latency_s"],
        "conv_utilization": conv["utilization"],
        "conv_onchip_energy_j": conv["onchip_energy_j"],
        "chip_energy_j": chip_energy,
        "onchip_energy_ratio_model_over_chip": conv["onchip_energy_j"] / chip_energy,
        "conv_onchip_power_w": conv["onchip_power_w"],
        "power_ratio_model_over_chip": conv["onchip_power_w"] / CHIP["power_w"],
        "conv_energy_j_with_dram": conv["energy_j"],
        "conv_power_w_with_dram": conv["power_w"],
        "power_and_time_within_2x": all(
            0.5 <= x <= 2 for x in (conv["onchip_power_w"] / CHIP["power_w"], conv["latency_s"] / CHIP["latency_s"])
        ),
        "conv_energy_per_mac_pj": conv["energy_per_mac"],
        "conv_energy_by_level_pj": conv["energy"],
    }


def main():
    import torch

    torch.set_num_threads(1)
    arch = load_arch("eyeriss-v1")
    alex = model_layers("alexnet-grouped", batch=4)
    _LAYERS.update({layer.name: layer for layer in alex})
    res, cpu, wall = timed(alex, arch)
    convs = [layer for layer in alex if layer.kind == "conv"]
    raw = analyze(convs, dataclasses.replace(arch, rlc=False), "rs")
    conv, raw_conv = res.total(("conv",)), raw.total()
    out = res.to_dict()
    payload = {"model": "alexnet-grouped", "arch": arch.to_dict(), "batch": 4, "chip_measured": CHIP}
    payload |= chip_comparison(conv, raw_conv, arch)
    payload["activations"] = {
        r.name: {"input_density": r.input_density, "input_rlc": r.input_rlc, "output_rlc": r.output_rlc} for r in convs
    }
    sweep = {f"{d:g}": {"rlc_ratio": rlc_at_density(d), "dram_per_mac": dram_at_density(raw, d)} for d in DENSITIES}
    payload["dram_per_mac_at_activation_density"] = sweep
    payload["layers"] = out["layers"]
    payload["mapping_time"] = {"alexnet_8_layers": {"cpu_s": cpu, "wall_s": wall, "layers": len(alex)}}
    p = payload
    print(f"AlexNet CONV1-5 batch 4 on eyeriss-v1 (rs): {conv['macs'] / 1e9:.3f} G MACs")
    print(
        f"  DRAM accesses per MAC: {p['conv_dram_accesses_per_mac']:.4f} with RLC "
        f"({p['conv_dram_accesses_per_mac_uncompressed']:.4f} raw) vs chip {p['chip_dram_accesses_per_mac']:.4f}: "
        f"{p['dram_ratio_model_over_chip']:.2f}x (target <= 1.3x)"
    )
    for d, row in sweep.items():
        print(f"    activations at density {d}: RLC ratio {row['rlc_ratio']:.3f}, DRAM/MAC {row['dram_per_mac']:.4f}")
    print(f"  DRAM {p['conv_dram_mb']:.1f} MB (chip 15.4); buffer {p['conv_glb_mb']:.1f} MB (chip 208.5)")
    print(
        f"  time {conv['latency_s'] * 1e3:.1f} ms at 200 MHz (chip 115.3; {p['latency_ratio_model_over_chip']:.2f}x), "
        f"utilisation {conv['utilization']:.2f}"
    )
    print(
        f"  on-chip {p['conv_onchip_energy_j'] * 1e3:.1f} mJ, {p['conv_onchip_power_w'] * 1e3:.0f} mW (chip 278 mW; "
        f"{p['power_ratio_model_over_chip']:.2f}x); with DRAM {p['conv_power_w_with_dram'] * 1e3:.0f} mW"
    )
    print(f"  mapping AlexNet (8 layers): {cpu:.2f} s CPU ({wall:.2f} s wall)")
    energy_per_layer(out, RESULTS / "accel_eyeriss_v1_alexnet_layers.png", "AlexNet batch 4: rs on eyeriss-v1 (pJ)")
    r50 = model_layers("resnet50", batch=1)
    _, cpu50, wall50 = timed(r50, arch)
    payload["mapping_time"]["resnet50"] = {"cpu_s": cpu50, "wall_s": wall50, "layers": len(r50)}
    print(f"  mapping ResNet-50 ({len(r50)} layers): {cpu50:.2f} s CPU ({wall50:.2f} s wall)")
    payload["note"] = "other engineers' jobs shared the 2 CPU cores during this run (affects wall times only)"
    print("saved", save_result("accel_eyeriss_v1", payload))


if __name__ == "__main__":
    main()
