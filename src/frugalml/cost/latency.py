"""Measured latency on this machine, through `torch.utils.benchmark`.

`torch.utils.benchmark.Timer` handles warm-up, thread pinning (`num_threads`) and
repeated blocks; we report the median and the interquartile range of the per-call time,
so noisy neighbours show up as spread rather than as a wrong median.

`stat="fastest_quarter"` times single calls instead and reports the mean of the fastest
quarter: on a CPU shared with other jobs almost every timed block contains a pre-emption,
while other processes can only ever add time to a single call, so the fastest calls are
the repeatable figure for a small network (used by `frugalml.nas`).

Comparisons interleave: `compare_latency` measures every model once per round (rotating
or shuffling the order), `interleaved_calls` times single calls of several functions on
each input in a shuffled order, so load from other processes hits all alike.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
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


ORDERS = ("fixed", "rotate", "shuffle")


@contextmanager
def _torch_threads(threads: int):
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def measure_latency(
    model: nn.Module | object,
    example_input,
    threads: int = 1,
    min_run_time: float = 0.5,
    stat: str = "median",
    clock: Callable[[], float] = time.perf_counter,
    min_calls: int = 20,
) -> Latency:
    """Wall-clock time of `model(*example_input)` in eval mode without autograd.

    `model` may also be any callable (e.g. an adaptive inference path). `stat`: "median"
    (of timed blocks, torch.utils.benchmark) or "fastest_quarter" (see the module notes);
    the figure asked for is `estimate_s`. `clock` is the timer (seconds). Timing goes on
    for at least `min_calls` timed calls and at least `min_run_time` seconds, whichever is
    longer, so a slow model's median never rests on two calls; `runs` is the number of
    timed calls and `iqr_s` their spread.
    """
    if stat not in STATS:
        raise FrugalError(f"unknown latency statistic '{stat}' (known: {', '.join(STATS)})")
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    if isinstance(model, nn.Module):
        model.eval()
    if min_calls < 1:
        raise FrugalError(f"min_calls must be at least 1, got {min_calls}")
    if stat == "fastest_quarter":
        return _single_calls(model, inputs, threads, min_run_time, clock, min_calls)
    return _blocked(model, inputs, threads, min_run_time, clock, min_calls)


def _blocked(model, inputs: tuple, threads: int, min_run_time: float, clock, min_calls: int) -> Latency:
    from torch.utils import benchmark

    with torch.inference_mode():
        model(*inputs)  # warm-up: first call allocates and picks kernels
        timer = benchmark.Timer(
            stmt="model(*inputs)",
            setup="import torch",
            globals={"model": model, "inputs": inputs},
            num_threads=threads,
            timer=clock,
        )
        m = timer.blocked_autorange(min_run_time=min_run_time)
        times, number = [float(t) for t in m.times], m.number_per_run  # per-call time of each block
        while len(times) * number < min_calls:  # more blocks of the same size until enough calls
            times.extend(float(t) for t in timer.timeit(number).times)
    lat = summarise(times, threads, "median")
    lat.runs = len(times) * number
    return lat


def _single_calls(model, inputs: tuple, threads: int, min_run_time: float, clock, min_calls: int) -> Latency:
    with _torch_threads(threads), torch.inference_mode():
        for _ in range(3):  # warm-up: allocation, kernel choice
            model(*inputs)
        times, end = [], clock() + min_run_time
        while clock() < end or len(times) < max(8, min_calls):
            t0 = clock()
            model(*inputs)
            times.append(clock() - t0)
    return summarise(times, threads, "fastest_quarter")


def summarise(times: list[float], threads: int = 1, stat: str = "median") -> Latency:
    """Median, interquartile range (linear interpolation, as torch.utils.benchmark) and `stat` of single-call times."""
    ordered = sorted(times)
    fast = ordered[: max(1, len(ordered) // 4)]
    q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else (ordered[0],) * 3
    median = statistics.median(ordered)
    return Latency(
        median_s=median,
        iqr_s=q3 - q1,
        mean_s=statistics.fmean(ordered),
        runs=len(ordered),
        threads=threads,
        stat=stat,
        estimate_s=sum(fast) / len(fast) if stat == "fastest_quarter" else median,
    )


def ratio_spread(num_s: float, num_iqr_s: float, den_s: float, den_iqr_s: float) -> dict:
    """The latency ratio num/den of two medians, with its spread: the ratio times the sum of the
    two relative half-interquartile ranges (a first-order bound). `within_spread`: 1 lies within
    ratio ± spread, so the measurement does not tell the two apart."""
    ratio = num_s / den_s
    spread = ratio * (num_iqr_s / (2 * num_s) + den_iqr_s / (2 * den_s))
    return {"ratio": ratio, "ratio_spread": spread, "within_spread": abs(ratio - 1) <= spread}


def round_orders(names: list[str], rounds: int, order: str = "rotate", rnd: random.Random | None = None):
    """The order of `names` in each of `rounds` rounds: as given, rotated by one per round, or shuffled by `rnd`."""
    if order not in ORDERS:
        raise FrugalError(f"unknown interleaving order '{order}' (known: {', '.join(ORDERS)})")
    for r in range(rounds):
        if order == "fixed":
            yield list(names)
        elif order == "rotate":
            yield names[r % len(names) :] + names[: r % len(names)]
        else:
            shuffled = list(names)
            (rnd or random.Random(0)).shuffle(shuffled)
            yield shuffled


def compare_latency(
    models: dict[str, object], example_input, rounds: int, order: str = "rotate", **measure
) -> dict[str, list[Latency]]:
    """Interleaved A/B(/C...) comparison: each round measures every model once (`measure_latency(**measure)`),
    so a burst of load from other processes spoils one round of a few models rather than every round of one."""
    out: dict[str, list[Latency]] = {n: [] for n in models}
    for names in round_orders(list(models), rounds, order):
        for n in names:
            out[n].append(measure_latency(models[n], example_input, **measure))
    return out


def interleaved_calls(
    fns: dict[str, Callable],
    inputs: list,
    rounds: int = 1,
    seed: int = 0,
    threads: int = 1,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
    cpu_clock: Callable[[], float] = time.thread_time,
) -> dict[str, dict[str, list[float]]]:
    """Single calls of every function on every input, in a freshly shuffled order per input and round.

    `{name: {"wall": [s per call], "cpu": [s of this thread's CPU per call]}}` in input order,
    without autograd, with `threads` torch threads; the first `warmup` inputs go through
    every function once untimed. With one torch thread all the work runs on the calling
    thread, so its CPU time is what a call cost even while other processes preempt it.
    """
    rnd = random.Random(seed)
    out = {k: {"wall": [], "cpu": []} for k in fns}
    with _torch_threads(threads), torch.inference_mode():
        for x in inputs[:warmup]:
            for f in fns.values():
                f(x)
        for _ in range(rounds):
            for x in inputs:
                for k in next(round_orders(list(fns), 1, "shuffle", rnd)):
                    c0, t0 = cpu_clock(), clock()
                    fns[k](x)
                    out[k]["wall"].append(clock() - t0)
                    out[k]["cpu"].append(cpu_clock() - c0)
    return out
