import random

import pytest
import torch
import torch.nn.functional as F

from frugalml.cost.counting import profile
from frugalml.models import space as spaces
from frugalml.models.elastic import ElasticBatchNorm
from frugalml.nas.elastic import ElasticConv1d, sort_channels


def test_elastic_conv_uses_leading_channels_and_centre_cropped_kernel():
    torch.manual_seed(0)
    conv = ElasticConv1d(6, 8, 7)
    x = torch.randn(2, 4, 11)
    y = conv(x, out_ch=5, k=3)
    # independent: the centre 3 taps of the 7-tap kernel are taps 2, 3, 4
    w = conv.weight.detach()[:5, :4, 2:5]
    assert torch.allclose(y, F.conv1d(x, w, padding=1), atol=1e-6)
    exported = conv.export(4, 5, 3)
    assert exported.weight.shape == (5, 4, 3)
    assert torch.allclose(exported(x), y, atol=1e-6)


def test_kernel_transform_starts_as_the_centre_crop_and_chains_learned_matrices():
    torch.manual_seed(0)
    conv = ElasticConv1d(4, 6, 7, kernel_transform=True)
    assert sorted(conv.transforms) == ["k1", "k3", "k5"]  # every smaller odd size
    x = torch.randn(2, 4, 13)
    # identity at initialisation: the same as plain centre cropping
    assert torch.allclose(conv(x, 6, 3), F.conv1d(x, conv.weight.detach()[:, :, 2:5], padding=1), atol=1e-6)
    with torch.no_grad():
        for t in conv.transforms.values():
            t.add_(0.3 * torch.randn_like(t))
    w = conv.weight.detach()
    m5, m3 = conv.transforms["k5"].detach(), conv.transforms["k3"].detach()
    w5 = torch.einsum("oik,kj->oij", w[:, :, 1:6], m5)
    w3 = torch.einsum("oik,kj->oij", w5[:, :, 1:4], m3)
    assert torch.allclose(conv(x, 6, 5), F.conv1d(x, w5, padding=2), atol=1e-5)
    assert torch.allclose(conv(x, 6, 3), F.conv1d(x, w3, padding=1), atol=1e-5)
    assert torch.allclose(conv(x, 6, 7), F.conv1d(x, w, padding=3), atol=1e-5)  # largest kernel untouched
    assert torch.allclose(conv.export(4, 6, 3)(x), F.conv1d(x, w3, padding=1), atol=1e-5)


def test_elastic_batchnorm_updates_only_the_active_slice():
    bn = ElasticBatchNorm(8)
    x = torch.randn(16, 3, 5) + 2.0
    bn.train()
    bn(x)
    assert torch.allclose(bn.running_mean[:3], 0.1 * x.mean(dim=(0, 2)), atol=1e-5)
    assert torch.all(bn.running_mean[3:] == 0)


def test_extracted_subnetwork_computes_what_the_supernet_computes():
    sp = spaces.get("cnn")
    net = sp.build_supernet(seed=0).eval()
    # give BN non-trivial statistics so slicing mistakes would show
    for m in net.modules():
        if isinstance(m, ElasticBatchNorm):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
        if isinstance(m, ElasticConv1d):  # kernel transforms away from identity, as after training
            with torch.no_grad():
                for t in m.transforms.values():
                    t.add_(0.2 * torch.randn_like(t))
    assert any(len(m.transforms) for m in net.modules() if isinstance(m, ElasticConv1d))
    x = torch.randn(4, 40)
    rng = random.Random(1)
    for arch in [sp.smallest(), sp.largest()] + [sp.sample(rng) for _ in range(4)]:
        sp.set_active(net, arch)
        with torch.no_grad():
            assert torch.allclose(net(x), sp.extract(net, arch)(x), atol=1e-5)


def test_macs_by_hand_match_the_flop_counter():
    sp = spaces.get("cnn")
    # smallest by hand: res 24; stem 24*16*5; stage blocks conv k3 + 1x1; head 32*10
    stem = 24 * 16 * 5
    s1 = 24 * 16 * 16 * 3 + 24 * 16 * 16
    s2 = 12 * 24 * 16 * 3 + 12 * 24 * 24
    s3 = 6 * 32 * 24 * 3 + 6 * 32 * 32
    assert sp.macs(sp.smallest()) == stem + s1 + s2 + s3 + 320
    rng = random.Random(2)
    for arch in [sp.largest(), sp.sample(rng), sp.sample(rng)]:
        assert sp.macs(arch) == profile(sp.build_subnet(arch), sp.example_input(arch)).macs


def test_channel_sorting_keeps_the_full_network_and_puts_important_channels_first():
    sp = spaces.get("cnn")
    net = sp.build_supernet(seed=0).eval()
    x = torch.randn(3, 40)
    with torch.no_grad():
        before = net(x)
        net.sort_channels()
        after = net(x)
    assert torch.allclose(before, after, atol=1e-5)
    imp = net.stages[0][0].conv2.weight.abs().sum(dim=(0, 2))
    assert torch.all(imp[:-1] >= imp[1:])


def test_sort_channels_returns_a_permutation():
    torch.manual_seed(0)
    a, bn, b = ElasticConv1d(2, 6, 3), ElasticBatchNorm(6), ElasticConv1d(6, 2, 1)
    order = sort_channels(a, bn, b)
    assert sorted(order.tolist()) == list(range(6))


def test_batchnorm_recalibration_uses_the_subnetworks_own_statistics():
    sp = spaces.get("cnn")
    net = sp.build_supernet(seed=0)
    arch = sp.smallest()
    sub = sp.extract(net, arch)

    class DS:
        x_train = torch.randn(300, 40)

    sp.prepare(sub, DS, samples=300, batch=300)
    stem_bn = sub[2]
    with torch.no_grad():
        h = sub[1](sub[0](DS.x_train))
    assert torch.allclose(stem_bn.running_mean, h.mean(dim=(0, 2)), atol=1e-4)
    assert not sub.training
    assert stem_bn.running_var.mean() == pytest.approx(h.var(dim=(0, 2), unbiased=True).mean().item(), rel=1e-3)
