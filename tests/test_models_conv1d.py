"""conv6_1d: the Conv-6 of the lottery-ticket paper for 1-D signals (MNIST-1D), sizes counted by hand."""

from types import SimpleNamespace

import pytest
import torch

from frugalml import models
from frugalml.errors import FrugalError


def conv(cin, cout, k=3):
    return cin * cout * k + cout


def linear(a, b):
    return a * b + b


def test_conv6_1d_parameter_count_by_hand():
    # widths 32-64-128, two width-3 convs per stage; 40 -> 20 -> 10 -> 5 after three pools
    convs = conv(1, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64) + conv(64, 128) + conv(128, 128)
    head = linear(128 * 5, 256) + linear(256, 256) + linear(256, 10)
    net = models.get("conv6_1d")
    assert sum(p.numel() for p in net.parameters()) == convs + head == 328_234


def test_conv6_1d_macs_by_hand():
    from frugalml.cost import profile

    # MACs of a conv = out_channels * in_channels * kernel * output length
    convs = 32 * 1 * 3 * 40 + 32 * 32 * 3 * 40 + 64 * 32 * 3 * 20 + 64 * 64 * 3 * 20
    convs += 128 * 64 * 3 * 10 + 128 * 128 * 3 * 10
    head = 640 * 256 + 256 * 256 + 256 * 10
    assert profile(models.get("conv6_1d"), torch.randn(1, 40)).macs == convs + head


def test_conv6_1d_reads_a_flat_signal_as_one_channel():
    torch.manual_seed(0)
    net = models.get("conv6_1d").eval()
    x = torch.randn(3, 40)
    with torch.no_grad():
        assert net(x).shape == (3, 10)
        assert torch.equal(net(x), net(x[:, None, :]))


def test_for_data_sizes_conv6_1d_for_a_1d_signal():
    net = models.for_data("conv6_1d", SimpleNamespace(input_shape=(24,), num_classes=4))
    # 24 -> 12 -> 6 -> 3: the first FC layer reads 128 channels x 3
    assert net.classifier[0].in_features == 128 * 3
    with torch.no_grad():
        assert net(torch.randn(2, 24)).shape == (2, 4)


def test_too_short_a_signal_is_a_clear_error():
    with pytest.raises(FrugalError, match="too short for 3 pools"):
        models.get("conv6_1d", input_length=4)
    with pytest.raises(FrugalError, match="needs image input"):
        models.for_data("conv2", SimpleNamespace(input_shape=(40,), num_classes=10))
