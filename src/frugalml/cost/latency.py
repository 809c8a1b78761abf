"""Measured latency on this machine, through `torch.utils.benchmark`.

`torch.utils.benchmark.Timer` handles warm-up, thread pinning (`num_threads`) and
repeated blocks; we report the median and the interquartile range of the per-call time,
so noisy neighbours show up as spread rather than as a wrong median.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from frugalml.cost.currency import MEASURED, Cost


@dataclass
class Latency:
    median_s: float
    iqr_s: float
    mean_s: float
    runs: int
    threads: int

    def to_dict(self) -> dict:
        return asdict(self)

    def cost(self) -> Cost:
        note = f"{MEASURED}: median of {self.runs} runs, {self.threads} thread(s), torch.utils.benchmark"
        return Cost(latency_s=self.median_s, notes={"latency_s": note})


def measure_latency(
    model: nn.Module | object,
    example_input,
    threads: int = 1,
    min_run_time: float = 0.5,
) -> Latency:
    """Median wall-clock time of `model(*example_input)` in eval mode without autograd.

    `model` may also be any callable (e.g. an adaptive inference path).
    """
    from torch.utils import benchmark

    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    if isinstance(model, nn.Module):
        model.eval()
    with torch.inference_mode():
        model(*inputs)  # warm-up: first call allocates and picks kernels
        timer = benchmark.Timer(
            stmt="model(*inputs)",
            setup="import torch",
            globals={"model": model, "inputs": inputs},
            num_threads=threads,
        )
        m = timer.blocked_autorange(min_run_time=min_run_time)
    return Latency(
        median_s=float(m.median),
        iqr_s=float(m.iqr),
        mean_s=float(m.mean),
        runs=len(m.times) * m.number_per_run,
        threads=threads,
    )
