"""The one latency estimator: statistics, call counts and interleaving, on a fake clock."""

import random

import pytest

from frugalml.cost.latency import (
    compare_latency,
    interleaved_calls,
    measure_latency,
    round_orders,
    summarise,
)
from frugalml.errors import FrugalError


class Clock:
    """Seconds that pass only when a fake model says so."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class Spiky:
    """One fast call in four: 1 ms, the others 12 ms (as if pre-empted by another process); logs calls by name."""

    def __init__(self, clock, name="m", log=None):
        self.clock, self.name, self.log, self.calls = clock, name, log, 0

    def __call__(self, _x):
        self.calls += 1
        self.clock.t += 0.001 if self.calls % 4 == 0 else 0.012
        if self.log is not None:
            self.log.append(self.name)


def test_summary_statistics_of_injected_times():
    lat = summarise([8, 1, 7, 2, 6, 3, 5, 4], threads=2, stat="fastest_quarter")
    assert (lat.median_s, lat.mean_s, lat.runs, lat.threads) == (4.5, 4.5, 8, 2)
    assert lat.iqr_s == pytest.approx(6.25 - 2.75)  # linear interpolation, as torch.utils.benchmark
    assert lat.estimate_s == 1.5  # mean of the fastest two of eight
    assert summarise([3, 1, 2]).estimate_s == 2  # the median unless asked otherwise


def test_fastest_quarter_times_single_calls_after_three_warm_ups():
    clock = Clock()
    fn = Spiky(clock)
    lat = measure_latency(fn, 0, min_run_time=0.1, stat="fastest_quarter", clock=clock, min_calls=8)
    # calls 4, 8, 12, ... take 1 ms; the timed ones start at call 4
    timed = [0.001 if c % 4 == 0 else 0.012 for c in range(4, fn.calls + 1)]
    assert fn.calls == 3 + lat.runs and sum(timed) >= 0.1 > sum(timed[:-1])
    assert lat.stat == "fastest_quarter" and lat.runs >= 8
    fast = sorted(timed)[: len(timed) // 4]
    assert lat.estimate_s == pytest.approx(sum(fast) / len(fast))
    assert lat.median_s == pytest.approx(0.012)
    assert lat.cost().latency_s == lat.estimate_s and "fastest quarter" in lat.cost().notes["latency_s"]


def test_default_statistic_is_the_median_of_timed_blocks():
    clock = Clock()
    fn = Spiky(clock)
    lat = measure_latency(fn, 0, min_run_time=0.5, clock=clock)
    assert lat.stat == "median" and lat.estimate_s == lat.median_s
    assert lat.runs < fn.calls  # a warm-up and the block-size calibration are not timed
    # calls of a millisecond or more are timed one per block: the median is the typical (slow) call
    assert lat.median_s == pytest.approx(0.012) and lat.mean_s < lat.median_s
    with pytest.raises(FrugalError, match="unknown latency statistic"):
        measure_latency(fn, 0, stat="fastest")


def test_compare_latency_interleaves_rounds_in_rotating_order():
    clock, log = Clock(), []
    models = {n: Spiky(clock, n, log) for n in "abc"}
    out = compare_latency(models, 0, rounds=3, min_run_time=0.05, stat="fastest_quarter", clock=clock)
    runs = [n for i, n in enumerate(log) if i == 0 or log[i - 1] != n]
    assert runs == list("abc" + "bca" + "cab")
    assert {n: len(ms) for n, ms in out.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(m.stat == "fastest_quarter" for ms in out.values() for m in ms)
    assert next(round_orders(["x", "y"], 1, "fixed")) == ["x", "y"]
    with pytest.raises(FrugalError, match="unknown interleaving order"):
        next(round_orders(["x"], 1, "random"))


def test_interleaved_calls_shuffle_per_input_and_time_every_call():
    clock, cpu, log = Clock(), Clock(), []

    def fn(name, cost):
        def call(x):
            log.append((name, x))
            clock.t += cost
            cpu.t += cost / 2

        return call

    out = interleaved_calls(
        {"a": fn("a", 1.0), "b": fn("b", 3.0)}, [10, 11, 12], rounds=2, seed=5, clock=clock, cpu_clock=cpu
    )
    warm = [("a", 10), ("b", 10), ("a", 11), ("b", 11)]
    assert log[:4] == warm
    rnd, expected = random.Random(5), []
    for _ in range(2):
        for x in [10, 11, 12]:
            order = ["a", "b"]
            rnd.shuffle(order)
            expected += [(n, x) for n in order]
    assert log[4:] == expected
    assert out["a"] == {"wall": [1.0] * 6, "cpu": [0.5] * 6}
    assert out["b"] == {"wall": [3.0] * 6, "cpu": [1.5] * 6}


class Slow:
    """Every call takes `seconds` on the fake clock."""

    def __init__(self, clock, seconds):
        self.clock, self.seconds, self.calls = clock, seconds, 0

    def __call__(self, _x):
        self.calls += 1
        self.clock.t += self.seconds


@pytest.mark.parametrize("stat", ["median", "fastest_quarter"])
def test_a_slow_model_is_timed_at_least_min_calls_times(stat):
    clock = Clock()
    fn = Slow(clock, 0.3)  # a 0.5 s window alone would hold two calls
    lat = measure_latency(fn, 0, min_run_time=0.5, stat=stat, clock=clock)
    assert lat.runs == 20  # the default: each call (0.3 s) is its own block
    assert lat.median_s == pytest.approx(0.3) and lat.iqr_s == pytest.approx(0.0)
    five = measure_latency(Slow(clock, 0.3), 0, min_run_time=0.5, stat=stat, clock=clock, min_calls=5)
    assert five.runs == max(5, 8 if stat == "fastest_quarter" else 5)


def test_a_fast_model_is_timed_for_the_whole_window_and_reports_its_spread():
    clock = Clock()
    fn = Slow(clock, 0.01)
    lat = measure_latency(fn, 0, min_run_time=0.5, stat="fastest_quarter", clock=clock, min_calls=3)
    assert lat.runs == 50  # 0.5 s of 10 ms calls: the window, not min_calls, decides
    spiky = measure_latency(Spiky(clock), 0, min_run_time=0.05, clock=clock)
    assert spiky.runs >= 20
    # one call in four takes 1 ms, the rest 12 ms: the quartiles straddle both
    times = sorted([0.001 if c % 4 == 0 else 0.012 for c in range(spiky.runs)])
    assert spiky.iqr_s == pytest.approx(summarise(times).iqr_s, abs=0.011)
    with pytest.raises(FrugalError, match="min_calls must be at least 1"):
        measure_latency(fn, 0, min_calls=0, clock=clock)
