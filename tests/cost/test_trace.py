"""`cost.trace`: per-module own FLOPs against hand counts, each FLOP on exactly one module."""

import pytest
import torch
from torch import nn

from frugalml.cost.counting import profile
from frugalml.cost.tracing import trace
from frugalml.errors import FrugalError


class Net(nn.Module):
    """A conv, a Sequential inside the module, and a matmul in the root's own forward."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(4 * 5 * 5, 6), nn.ReLU(), nn.Linear(6, 3))
        self.w = nn.Parameter(torch.randn(3, 2))

    def forward(self, x):
        return self.mlp(self.conv(x)) @ self.w


def test_own_flops_of_nested_modules_match_hand_counts():
    n = 2
    t = trace(Net(), torch.randn(n, 2, 5, 5))
    conv = n * 4 * 5 * 5 * 2 * 3 * 3
    fc1, fc2, root = n * 100 * 6, n * 6 * 3, n * 3 * 2
    own = t.own_flops()
    assert {k: v // 2 for k, v in own.items() if v} == {"conv": conv, "mlp.1": fc1, "mlp.3": fc2, "": root}
    assert own["mlp"] == 0  # the Sequential does nothing itself: its layers' FLOPs are theirs alone
    assert t.total_macs == conv + fc1 + fc2 + root == sum(own.values()) // 2
    assert [c.name for c in t.calls] == ["", "conv", "mlp", "mlp.0", "mlp.1", "mlp.2", "mlp.3"]
    assert t.output_shapes()["conv"] == [n, 4, 5, 5] and t.output_shapes()[""] == [n, 2]


def test_a_module_called_twice_owns_both_calls():
    fc = nn.Linear(4, 4)
    t = trace(nn.Sequential(fc, nn.ReLU(), fc), torch.randn(3, 4))
    assert [c.flops // 2 for c in t.calls if c.name == "0"] == [3 * 16, 3 * 16]
    assert t.own_flops() == {"": 0, "0": 2 * 2 * 3 * 16, "1": 0}


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x, proj):
        return self.fc(proj(x))


class CrossCall(nn.Module):
    """`head` calls `proj`, which is not its child: the call tree is not the naming tree."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.head = Head()

    def forward(self, x):
        return self.head(x, self.proj)


def test_a_module_calling_a_non_child_does_not_count_it_again():
    # Subtracting children's inclusive FLOPs from the parent's (the former profile) gave
    # head 3x8x8 MACs of its own besides proj's 3x8x8: 480 MACs in all instead of 288.
    p = profile(CrossCall(), torch.randn(3, 8))
    assert {layer.name: layer.macs for layer in p.layers} == {"proj": 3 * 8 * 8, "head.fc": 3 * 8 * 4}
    assert p.macs == 3 * (8 * 8 + 8 * 4) == 288


def test_trace_restores_mode_and_reports_bad_input():
    net = Net().train()
    with pytest.raises(FrugalError, match="does not accept input"):
        trace(net, torch.randn(1, 3, 5, 5))
    assert net.training
    trace(net, torch.randn(1, 2, 5, 5), grad=False)
    assert net.training
