"""Every name a package exports is what it says, however and however often it is imported.

A package that loads names lazily and has a submodule of the same name hands out the
submodule once that submodule has been imported (the import system sets it as an attribute
of the package). Each check runs in a fresh interpreter so import order shows.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PACKAGES = [
    "frugalml.cost",
    "frugalml.data",
    "frugalml.models",
    "frugalml.train",
    "frugalml.accel",
    "frugalml.analog",
    "frugalml.tickets",
    "frugalml.video",
]

CHECK = """
import importlib, inspect, pkgutil, types
pkg = importlib.import_module({pkg!r})
if hasattr(pkg, "__path__"):  # load every submodule first: none may shadow an exported name
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg}.{{info.name}}")
for name in pkg.__all__:
    for attempt in range(2):
        ns = {{}}
        exec(f"from {pkg} import {{name}} as value", ns)
        for value in (ns["value"], getattr(pkg, name)):
            assert not isinstance(value, types.ModuleType), f"{pkg}.{{name}} is a module (attempt {{attempt}})"
    if inspect.isfunction(ns["value"]) or inspect.isclass(ns["value"]):
        assert callable(getattr(pkg, name)), f"{pkg}.{{name}} not callable"
print("ok", len(pkg.__all__))
"""


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_exported_name_stays_itself(pkg):
    p = subprocess.run([sys.executable, "-c", CHECK.format(pkg=pkg)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.startswith("ok ")


def test_cost_profile_is_the_function_twice_after_its_module_loads():
    code = """
import torch
from torch import nn
import frugalml.cost.counting, frugalml.cost.tracing  # the modules first: they must not shadow
from frugalml.cost import profile, trace
import frugalml.cost as cost
net = nn.Linear(3, 2)
x = torch.zeros(1, 3)
a = profile(net, x).macs
b = cost.profile(net, x).macs
c = cost.profile(net, x).macs
assert (a, b, c) == (6, 6, 6), (a, b, c)
assert cost.trace is trace and callable(trace)
print("ok")
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == "ok"
