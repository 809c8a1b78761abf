"""FLOP/MAC counts cross-checked against hand formulas and published model sizes."""

import pytest
import torch
from torch import nn

from frugalml import models
from frugalml.cost.counting import profile


def test_linear_macs_are_batch_times_in_times_out():
    p = profile(nn.Linear(7, 5), torch.randn(3, 7))
    assert p.macs == 3 * 7 * 5
    assert p.flops == 2 * 3 * 7 * 5
    assert p.params == 7 * 5 + 5


@pytest.mark.parametrize(
    "cin,cout,k,stride,padding,groups,h",
    [(3, 8, 3, 1, 1, 1, 9), (4, 8, 3, 2, 0, 2, 11), (6, 6, 5, 2, 2, 6, 10), (2, 4, 1, 1, 0, 1, 5)],
)
def test_conv2d_macs_match_hand_formula(cin, cout, k, stride, padding, groups, h):
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups)
    n = 2
    p = profile(conv, torch.randn(n, cin, h, h))
    hout = (h + 2 * padding - k) // stride + 1
    assert p.macs == n * cout * hout * hout * (cin // groups) * k * k
    assert p.layers[0].output_shape == [n, cout, hout, hout]


def test_attention_macs_match_hand_formula():
    e, heads, length, batch = 16, 4, 6, 2
    mha = nn.MultiheadAttention(e, heads, batch_first=True)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    p = profile(Wrap(), torch.randn(batch, length, e))
    projections = batch * length * e * 3 * e + batch * length * e * e  # q,k,v in; out
    scores_and_mix = 2 * batch * length * length * e  # QK^T and AV over all heads
    assert p.macs == projections + scores_and_mix


def test_functional_matmul_inside_forward_is_attributed_to_its_module():
    class Scores(nn.Module):
        def forward(self, q, k):
            return q @ k.transpose(-1, -2)

    p = profile(Scores(), (torch.randn(2, 5, 8), torch.randn(2, 7, 8)))
    assert p.macs == 2 * 5 * 7 * 8
    assert p.layers[0].name == "(root)"


def test_effective_macs_follow_weight_sparsity():
    torch.manual_seed(0)
    net = models.get("mlp", in_features=100, hidden=(200, 100), num_classes=10)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                keep = torch.rand_like(m.weight) < 0.1
                m.weight.mul_(keep)
    p = profile(net, torch.randn(1, 100))
    ratio = p.macs_effective / p.macs
    assert 0.08 < ratio < 0.12
    for layer in p.layers:
        w = dict(net.named_modules())[layer.name].weight
        assert layer.macs_effective == round(layer.macs * float((w != 0).float().mean()))


def test_training_flops_count_backward():
    net = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    x = torch.randn(4, 10)
    p = profile(net, x, training=True)
    fwd = 2 * 4 * (10 * 20 + 20 * 3)
    # backward: weight grads for both layers, input grad only for the second
    bwd = 2 * 4 * (10 * 20 + 20 * 3) + 2 * 4 * 20 * 3
    assert p.train_flops == fwd + bwd


# Published sizes (REFERENCE.md): params exact to the standard definitions, MACs within 3%.
@pytest.mark.parametrize(
    "name,params,gmacs",
    [
        ("alexnet", 61_100_840, 0.71),
        ("vgg16", 138_357_544, 15.5),
        ("resnet50", 25_557_032, 4.1),
        ("mobilenet_v2", 3_504_872, 0.30),
    ],
)
def test_imagenet_models_match_published_sizes(name, params, gmacs):
    net = models.get(name)
    p = profile(net, torch.randn(*models.default_input(name)))
    assert p.params == params
    assert abs(p.macs / 1e9 - gmacs) / gmacs < 0.03


def test_alexnet_grouped_conv_macs_match_eyeriss_shapes():
    net = models.get("alexnet-grouped")
    p = profile(net, torch.randn(4, 3, 227, 227))
    conv = [layer for layer in p.layers if layer.type == "Conv2d"]
    # (E, M, C_per_group, R) per layer from REFERENCE.md
    shapes = [(55, 96, 3, 11), (27, 256, 48, 5), (13, 384, 256, 3), (13, 384, 192, 3), (13, 256, 192, 3)]
    expected = [4 * e * e * m * c * r * r for e, m, c, r in shapes]
    assert [layer.macs for layer in conv] == expected
    assert abs(sum(expected) / 1e9 - 2.66) < 0.01


def test_wrong_input_shape_is_a_clear_error():
    from frugalml.errors import FrugalError

    with pytest.raises(FrugalError, match="does not accept input"):
        profile(models.get("mlp"), torch.randn(1, 3))


def test_layers_inside_a_module_list_are_counted_once():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 4)])

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x

    p = profile(Stack(), torch.randn(3, 8))
    assert p.macs == 3 * (8 * 8 + 8 * 4)
    assert [layer.name for layer in p.layers] == ["blocks.0", "blocks.1"]
