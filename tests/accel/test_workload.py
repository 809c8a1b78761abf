"""Workloads extracted from PyTorch models: shapes, MACs, densities, unsupported modules."""

import pytest
import torch
from torch import nn

from frugalml.accel import extract, model_layers
from frugalml.errors import FrugalError

# Eyeriss's AlexNet CONV1-5 (REFERENCE.md): H/R/E/C/M, stride 4 for CONV1; groups from the model
EYERISS = [
    (227, 11, 55, 3, 96),
    (31, 5, 27, 48, 256),
    (15, 3, 13, 256, 384),
    (15, 3, 13, 192, 384),
    (15, 3, 13, 192, 256),
]


@pytest.fixture(scope="module")
def alexnet_layers():
    return model_layers("alexnet-grouped", batch=4)


def test_alexnet_grouped_conv_macs_match_eyeriss_shapes(alexnet_layers):
    convs = [layer for layer in alexnet_layers if layer.kind == "conv"]
    assert len(convs) == 5
    for layer, (h, r, e, c, m) in zip(convs, EYERISS, strict=True):
        assert (layer.R, layer.S, layer.P, layer.Q, layer.C) == (r, r, e, e, c)
        assert layer.M * layer.G == m
        assert layer.input_hw == (h, h)  # padded input size as the paper gives it
    # per image: sum of M x C x R^2 x E^2 over the five layers, batch 4 -> 2.66 G
    per_image = sum(m * c * r * r * e * e for h, r, e, c, m in EYERISS)
    total = sum(layer.macs for layer in convs)
    assert total == 4 * per_image == 2_663_139_456


def test_macs_agree_with_flop_counter_profile():
    from frugalml.cost.counting import profile

    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, groups=8),
        nn.Conv2d(8, 4, 1),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 10),
    )
    x = torch.randn(2, 3, 11, 11)
    layers = extract(net, x)
    assert [layer.kind for layer in layers] == ["conv", "conv", "conv", "fc"]
    assert layers[1].G == 8 and layers[1].C == 1 and layers[1].M == 1  # depthwise
    assert sum(layer.macs for layer in layers) == profile(net, x).macs


def test_attention_projections_and_batched_matmuls_are_extracted():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
            self.fc = nn.Linear(16, 8)

        def forward(self, x):
            return self.fc(self.attn(x, x, x, need_weights=False)[0])

    net, x = Block().eval(), torch.randn(2, 5, 16)
    layers = extract(net, x)
    names = [layer.name for layer in layers]
    assert names == ["attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.qk", "attn.av", "attn.out_proj", "fc"]
    qk = layers[3]
    assert (qk.G, qk.N, qk.C, qk.M) == (2 * 4, 5, 4, 5)  # batch x heads matmuls of 5x4 by 4x5
    # by hand: 4 projections of 2x5 tokens (16 -> 16), QK^T and AV per (batch, head), the fc
    b, seq, e, h, hd = 2, 5, 16, 4, 4
    assert sum(layer.macs for layer in layers) == 4 * b * seq * e * e + 2 * b * h * seq * seq * hd + b * seq * 16 * 8
    # a larger batch scales the matmul groups and the projection tokens alike
    assert sum(layer.scaled(3).macs for layer in layers) == 3 * sum(layer.macs for layer in layers)


def test_densities_come_from_the_actual_tensors():
    conv = nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 0.0, 0.0, 2.0]).view(2, 2, 1, 1))
    x = torch.ones(1, 2, 2, 2)
    x[0, 0] = 0  # half the input is zero
    (layer,) = extract(nn.Sequential(conv), x)
    assert layer.weight_density == 0.5 and layer.input_density == 0.5


def test_unsupported_module_types_with_macs_are_listed():
    net = nn.Sequential(nn.Conv3d(1, 2, 3), nn.Flatten())
    with pytest.raises(FrugalError, match=r"unsupported module types carry MACs.*0 \(Conv3d\)"):
        extract(net, torch.randn(1, 1, 4, 4, 4))


def test_functional_matmul_in_a_custom_forward_is_not_skipped():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 4))

        def forward(self, x):
            return x @ self.w

    with pytest.raises(FrugalError, match=r"\(root\) \(Custom\)"):
        extract(Custom(), torch.randn(2, 4))


def test_layers_called_from_containers_are_not_charged_to_the_parent():
    # The former own-FLOPs (parent minus its direct children) never looked through the
    # uncalled ModuleList/ModuleDict, so Tower kept its layers' MACs and was reported as unsupported.
    class Tower(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList(nn.Conv2d(2, 2, 1) for _ in range(2))
            self.heads = nn.ModuleDict({"out": nn.Linear(2 * 3 * 3, 4)})

        def forward(self, x):
            for conv in self.convs:
                x = conv(x)
            return self.heads["out"](x.flatten(1))

    n = 2
    layers = extract(Tower(), torch.randn(n, 2, 3, 3))
    assert [layer.name for layer in layers] == ["convs.0", "convs.1", "heads.out"]
    assert sum(layer.macs for layer in layers) == 2 * (n * 2 * 3 * 3 * 2) + n * 18 * 4
