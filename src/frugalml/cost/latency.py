"""Measured latency on this machine, through `torch.utils.benchmark`.

`torch.utils.benchmark.Timer` handles warm-up, thread pinning (`num_threads`) and
repeated blocks; we report the median and the interquartile range of the per-call time,
so noisy neighbours show up as spread rather than as a wrong median.

`stat="fastest_quarter"` times single calls instead and reports the mean of the fastest
quarter: on a CPU shared with other jobs almost every timed block contains a pre-emption,
while other processes can only ever add time to a single call, so the fastest calls are
the repeatable figure for a small network (used by `frugalml.nas`).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from frugalml.cost.currency import MEASURED, Cost
from frugalml.errors import FrugalError

STATS = {"median": "median", "fastest_quarter": "mean of the fastest quarter of single calls"}


@dataclass
class Latency:
    median_s: float
    iqr_s: float
    mean_s: float
    runs: int
    threads: int
    stat: str = "median"
    estimate_s: float | None = None  # the figure `stat` names (the median unless asked otherwise)

    def __post_init__(self) -> None:
        if self.estimate_s is None:
            self.estimate_s = self.median_s

    def to_dict(self) -> dict:
        return asdict(self)

    def cost(self) -> Cost:
        how = "torch.utils.benchmark" if self.stat == "median" else "single calls timed"
        note = f"{MEASURED}: {STATS[self.stat]} of {self.runs} runs, {self.threads} thread(s), {how}"
        return Cost(latency_s=self.estimate_s, notes={"latency_s": note})


def measure_latency(
    model: nn.Module | object,
    example_input,
    threads: int = 1,
    min_run_time: float = 0.5,
    stat: str = "median",
) -> Latency:
    """Wall-clock time of `model(*example_input)` in eval mode without autograd.

    `model` may also be any callable (e.g. an adaptive inference path). `stat`: "median"
    (of timed blocks, torch.utils.benchmark) or "fastest_quarter" (see the module notes);
    the figure asked for is `estimate_s`.
    """
    from torch.utils import benchmark

    if stat not in STATS:
        raise FrugalError(f"unknown latency statistic '{stat}' (known: {', '.join(STATS)})")
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    if isinstance(model, nn.Module):
        model.eval()
    if stat == "fastest_quarter":
        return _single_calls(model, inputs, threads, min_run_time)
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


def _single_calls(model, inputs: tuple, threads: int, min_run_time: float) -> Latency:
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for _ in range(3):  # warm-up: allocation, kernel choice
                model(*inputs)
            times, end = [], time.perf_counter() + min_run_time
            while time.perf_counter() < end or len(times) < 8:
                t0 = time.perf_counter()
                model(*inputs)
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(prev)
    times.sort()
    fast = times[: max(1, len(times) // 4)]
    q1, _, q3 = statistics.quantiles(times, n=4)
    return Latency(
        median_s=statistics.median(times),
        iqr_s=q3 - q1,
        mean_s=statistics.fmean(times),
        runs=len(times),
        threads=threads,
        stat="fastest_quarter",
        estimate_s=sum(fast) / len(fast),
    )
