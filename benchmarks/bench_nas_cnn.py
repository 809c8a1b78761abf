"""The CNN (Once-for-All style) pipeline end to end on MNIST-1D, on two measured CPU targets.

    .venv/bin/python benchmarks/bench_nas_cnn.py            # full (see FULL below)
    .venv/bin/python benchmarks/bench_nas_cnn.py --tiny     # smoke run, a few minutes

Supernets (2 seeds, sandwich sampling with in-place distillation, OFA kernel transforms) and a
scaling baseline (uniform depth x expand multipliers, kernel 5, full resolution; 2 seeds)
trained from scratch with the same number of epochs; latency data + MLP / lookup-table
predictors on host-1t and host-2t with the noise floor; evolutionary search for 4 budgets per
device (+ the roofline-modelled rpi4), random search with the same evaluations, NSGA-II front
vs random front; a brief fine-tune of every winner (cost reported apart); cost accounting.
Saves benchmarks/results/nas_cnn.json and PNG plots beside it. Runs resume from
runs/bench-nas-cnn/.
"""

from __future__ import annotations

from nas_experiment import Settings, bench_main, tiny

FULL = Settings(
    space="cnn",
    epochs=40,
    finetune_epochs=5,
    measure_passes=3,  # a burst of slowness on this VM can last through one 0.4 s measurement
    baseline_members=("d1-e1", "d1-e2", "d2-e1", "d2-e2", "d3-e2", "d3-e3"),
)
TINY = tiny("cnn", ("d1-e1", "d2-e2", "d3-e3"))
NOTE = (
    "Costs are CPU-seconds of our processes; energy is modelled from them (CPU-s x TDP/core). Every baseline "
    "member is trained from scratch for the same number of epochs as the supernet (one pass per step; the "
    "supernet trains 4 sub-networks per step): compare their CPU-s in costs. 'candidates_evaluated' counts "
    "population slots (an upper bound on distinct sub-networks)."
)

if __name__ == "__main__":
    bench_main("nas_cnn", FULL, TINY, NOTE)
