"""The transformer (HAT style) pipeline end to end on sorting strings, on two measured CPU targets.

    .venv/bin/python benchmarks/bench_nas_transformer.py            # full (see FULL below)
    .venv/bin/python benchmarks/bench_nas_transformer.py --tiny     # smoke run

Supernets (2 seeds, sandwich sampling, every sub-network on the labels: no distillation) and
a scaling baseline (width level x depth level, every layer alike; 2 seeds) trained from
scratch with the same number of epochs; latency of greedy decoding with a key/value cache
(batch 1, 13 output tokens) on host-1t and host-2t, MLP predictor with the noise floor;
evolutionary search for 4 budgets per device (+ the roofline-modelled rpi4), each after a
speed check of the machine and measured right after it, random search with the same
evaluations, NSGA-II front vs random front; a brief fine-tune of every winner (cost reported
apart). Accuracy is exact match of the greedy decode on the test split. Saves
benchmarks/results/nas_transformer.json and PNG plots beside it; runs resume from
runs/bench-nas-transformer/.
"""

from __future__ import annotations

from nas_experiment import Settings, bench_main, tiny

FULL = Settings(
    space="transformer",
    epochs=30,
    distill=False,  # a still-learning largest net is a poor teacher for sorting (see frugalml.nas.supernet)
    finetune_epochs=2,
    measure_passes=4,
    lut_devices=(),  # the transformer space has no per-operator decomposition
    baseline_members=("w1-d1", "w2-d1", "w1-d2", "w2-d2", "w3-d2", "w3-d3"),
    # ~40% of sub-networks (one decoder layer) run within ~15% of the fastest - about the VM's own
    # speed wander - so the budget quantiles are taken over the nets at least 15% slower than it
    budget_floor=1.15,
)
TINY = tiny("transformer", ("w1-d1", "w2-d2", "w3-d3"), lut_devices=())
NOTE = (
    "Costs are CPU-seconds of our processes; energy is modelled from them (CPU-s x TDP/core). Every baseline "
    "member is trained from scratch for the same number of epochs as the supernet (the supernet trains 4 "
    "sub-networks per step): compare their CPU-s in costs. Latency is incremental greedy decoding (KV cache)."
)

if __name__ == "__main__":
    bench_main("nas_transformer", FULL, TINY, NOTE, metric="exact match")
