"""FLOP formulas the counter lacks or gets wrong, checked against hand counts."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils import flop_counter as fc

from frugalml.cost import profile


class Recurrent(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


def rnn_macs(gates, layers, inp, hidden, steps, batch):
    """Per step and sequence each layer does gates x hidden x (its input + hidden) MACs."""
    per_step = sum(gates * hidden * ((inp if layer == 0 else hidden) + hidden) for layer in range(layers))
    return steps * batch * per_step


@pytest.mark.parametrize(
    "cls,gates",
    [(nn.LSTM, 4), (nn.GRU, 3), (nn.RNN, 1)],
)
def test_recurrent_forward_and_training_step_hand_counts(cls, gates):
    torch.manual_seed(0)
    net = Recurrent(cls(8, 16, num_layers=2, batch_first=True))
    x = torch.randn(2, 5, 8)
    hand = rnn_macs(gates, 2, 8, 16, 5, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        prof = profile(net, x, training=True)
    assert prof.macs == hand
    assert prof.uncounted_ops == []
    # backward: input and weight gradients, each a forward's worth. The fused LSTM kernel
    # computes them all; autograd through the decomposed GRU/RNN skips what needs no
    # gradient: the first layer's input and each layer's initial (zero) hidden state.
    skipped = 5 * 2 * gates * 16 * 8 + 2 * 2 * gates * 16 * 16
    assert prof.train_flops == 2 * (3 * hand if cls is nn.LSTM else 3 * hand - skipped)


def test_lstm_fused_cpu_path_is_counted_like_the_unfused_one():
    torch.manual_seed(0)
    net = Recurrent(nn.LSTM(8, 16, num_layers=2, batch_first=True))
    x = torch.randn(2, 5, 8)
    fused = profile(net, x).macs
    with torch.backends.mkldnn.flags(enabled=False):  # PyTorch's own matmul formulas
        unfused = profile(net, x).macs
    assert fused == unfused == rnn_macs(4, 2, 8, 16, 5, 2) == 35_840


def test_an_op_without_formula_is_reported_not_a_silent_zero(monkeypatch):
    monkeypatch.delitem(fc.flop_registry, torch.ops.aten.mkldnn_rnn_layer)
    net = Recurrent(nn.LSTM(8, 16, batch_first=True))
    with pytest.warns(RuntimeWarning, match="aten.mkldnn_rnn_layer"):
        prof = profile(net, torch.randn(1, 3, 8))
    assert prof.macs == 0
    assert prof.uncounted_ops == ["aten.mkldnn_rnn_layer"]
    assert prof.to_dict()["uncounted_ops"] == ["aten.mkldnn_rnn_layer"]


@pytest.mark.parametrize("groups", [1, 4, 32])
def test_conv_training_step_is_three_forwards_for_any_groups(groups):
    conv = nn.Conv2d(32, 32, 3, padding=1, groups=groups, bias=False)
    x = torch.randn(2, 32, 8, 8, requires_grad=True)  # so backward computes grad input and grad weight
    forward_macs = 2 * 32 * 8 * 8 * (32 // groups) * 9  # batch x out channels x positions x (in/groups) x k^2
    with fc.FlopCounterMode(display=False) as c:
        conv(x)
    assert c.get_total_flops() == 2 * forward_macs
    with fc.FlopCounterMode(display=False) as c:
        conv(x).sum().backward()
    assert c.get_total_flops() == 3 * 2 * forward_macs


def test_mobilenet_v2_training_step_is_the_sum_of_per_layer_forms():
    from frugalml import models

    net = models.get("mobilenet_v2")
    x = torch.randn(1, 3, 64, 64)
    prof = profile(net, x, training=True)
    first = prof.layers[0]
    assert first.type == "Conv2d"
    # every conv/linear: forward + grad input + grad weight; the first conv has no grad input
    hand = 2 * (3 * prof.macs - first.macs)
    assert prof.train_flops == pytest.approx(hand, rel=0.05)
    assert prof.train_flops < 3.1 * prof.flops


def test_matrix_vector_and_dot_products_are_counted():
    class MV(nn.Module):
        def forward(self, m, v):
            return torch.mv(m, v).sum() + torch.dot(v, v) + torch.addmv(v[:3], m, v).sum()

    prof = profile(MV(), (torch.ones(3, 4), torch.ones(4)))
    assert prof.macs == 3 * 4 + 4 + 3 * 4
    assert prof.uncounted_ops == []
