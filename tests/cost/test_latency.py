import time

import pytest

from frugalml.cost.latency import measure_latency
from frugalml.errors import FrugalError


class _Spiky:
    """One fast call in four: 1 ms, the others 12 ms (as if pre-empted by another process)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, _x):
        self.calls += 1
        time.sleep(0.001 if self.calls % 4 == 0 else 0.012)


def test_fastest_quarter_reports_the_undisturbed_calls_and_the_median_the_typical_one():
    lat = measure_latency(_Spiky(), 0, min_run_time=0.3, stat="fastest_quarter")
    assert lat.stat == "fastest_quarter" and lat.runs >= 8
    assert 0.001 <= lat.estimate_s < 0.006  # sleep never returns early; a loaded CPU adds a little
    assert lat.median_s >= 0.012
    assert lat.cost().latency_s == lat.estimate_s and "fastest quarter" in lat.cost().notes["latency_s"]


def test_default_statistic_is_the_median_of_timed_blocks():
    lat = measure_latency(_Spiky(), 0, min_run_time=0.2)
    assert lat.stat == "median" and lat.estimate_s == lat.median_s
    with pytest.raises(FrugalError, match="unknown latency statistic"):
        measure_latency(_Spiky(), 0, stat="fastest")
