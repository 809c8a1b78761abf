"""The common currency: what a model or a run costs.

Light parts (Cost, estimates, hardware, carbon) import without torch; `trace`, `profile`,
`measure_latency`, `compare_latency` and `track` load their modules on first use.
"""

from __future__ import annotations

from frugalml.cost.currency import Cost, comparison_rows
from frugalml.cost.estimate import Estimate, estimate

_LAZY = {
    "profile": ("frugalml.cost.counting", "profile"),
    "Profile": ("frugalml.cost.counting", "Profile"),
    "measure_latency": ("frugalml.cost.latency", "measure_latency"),
    "Latency": ("frugalml.cost.latency", "Latency"),
    "compare_latency": ("frugalml.cost.latency", "compare_latency"),
    "trace": ("frugalml.cost.tracing", "trace"),
    "Trace": ("frugalml.cost.tracing", "Trace"),
    "track": ("frugalml.cost.tracker", "track"),
    "Tracker": ("frugalml.cost.tracker", "Tracker"),
    "TrackResult": ("frugalml.cost.tracker", "TrackResult"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'frugalml.cost' has no attribute '{name}'")


__all__ = ["Cost", "Estimate", "comparison_rows", "estimate", *_LAZY]
