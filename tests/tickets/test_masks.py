import pytest
import torch
from torch import nn

from frugalml.errors import FrugalError
from frugalml.tickets.masks import Mask, MaskEnforcer, prunable, prune_magnitude, random_like


def two_layer(w1, w2):
    net = nn.Sequential(nn.Linear(w1.shape[1], w1.shape[0]), nn.ReLU(), nn.Linear(w2.shape[1], w2.shape[0]))
    with torch.no_grad():
        net[0].weight.copy_(w1)
        net[2].weight.copy_(w2)
    return net


def test_prunable_weights_are_linear_and_conv_weights_only():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    assert list(prunable(net)) == ["0.weight", "3.weight"]


def test_layerwise_prunes_smallest_magnitudes_and_output_at_half_rate():
    w1 = torch.tensor([[0.1, -5.0, 0.3, 2.0], [-0.05, 1.0, -4.0, 0.2]])  # 8 weights
    w2 = torch.tensor([[1.0, -0.5], [0.25, 3.0]])  # output layer: 4 weights
    net = two_layer(w1, w2)
    m = prune_magnitude(net, Mask.ones(net), rate=0.5, strategy="layerwise")
    # hidden: drop round(0.5 * 8) = 4 smallest |w|: 0.05, 0.1, 0.2, 0.3
    assert m["0.weight"].tolist() == [[False, True, False, True], [False, True, True, False]]
    # output at rate 0.25: drop round(0.25 * 4) = 1 smallest: 0.25
    assert m["2.weight"].tolist() == [[True, True], [False, True]]
    assert m.remaining() == pytest.approx(7 / 12)
    # A second level prunes only among the survivors: 0.5 * 4 = 2 of {5, 2, 1, 4} -> 1 and 2 go
    with torch.no_grad():
        net[0].weight.mul_(m["0.weight"])
    m2 = prune_magnitude(net, m, rate=0.5, strategy="layerwise")
    assert m2["0.weight"].tolist() == [[False, True, False, False], [False, False, True, False]]


def test_global_uses_one_threshold_across_layers():
    w1 = torch.tensor([[0.1, 0.2], [0.3, 0.4]])
    w2 = torch.tensor([[5.0, 6.0, 0.15, 7.0]]).view(2, 2)
    net = two_layer(w1, w2)
    m = prune_magnitude(net, Mask.ones(net), rate=0.5, strategy="global")
    # 4 of the 8 smallest overall: 0.1, 0.15, 0.2, 0.3
    assert m["0.weight"].tolist() == [[False, False], [False, True]]
    assert m["2.weight"].tolist() == [[True, True], [False, True]]


@pytest.mark.parametrize("rate", [0, 1, -0.1, 1.5])
def test_rate_outside_open_unit_interval_is_refused(rate):
    net = two_layer(torch.ones(2, 2), torch.ones(2, 2))
    with pytest.raises(FrugalError, match=r"\(0, 1\)"):
        prune_magnitude(net, Mask.ones(net), rate=rate)


def test_random_mask_keeps_per_layer_counts_but_not_the_pattern():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(50, 40), nn.ReLU(), nn.Linear(40, 10))
    m = prune_magnitude(net, Mask.ones(net), rate=0.7)
    r = random_like(m, seed=3)
    for k in m:
        assert int(r[k].sum()) == int(m[k].sum())
    assert not torch.equal(r["0.weight"], m["0.weight"])
    assert random_like(m, seed=3).equal(r)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_pruned_weights_stay_exactly_zero_with_momentum_and_weight_decay(optimizer):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    mask = random_like(Mask.ones(net), seed=1)
    mask = Mask({k: v & (torch.rand(v.shape) < 0.5) for k, v in mask.items()})
    mask.apply(net)
    opt = (
        torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
        if optimizer == "sgd"
        else torch.optim.Adam(net.parameters(), lr=0.1, weight_decay=0.1)
    )
    hook = MaskEnforcer(net, mask)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    for it in range(1, 6):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        hook(net, opt, it)
    for k, p in prunable(net).items():
        assert torch.all(p[~mask[k]] == 0)
        assert torch.any(p[mask[k]] != 0)
        for v in opt.state[p].values():
            if isinstance(v, torch.Tensor) and v.shape == p.shape:
                assert torch.all(v[~mask[k]] == 0)


def test_without_enforcer_momentum_moves_pruned_weights():
    # The control for the test above: masking only once is not enough.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    mask = random_like(prune_magnitude(net, Mask.ones(net), 0.5), seed=0)
    mask.apply(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    opt.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    assert torch.any(net[0].weight[~mask["0.weight"]] != 0)


def test_save_load_roundtrip_and_shape_mismatch(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    m = prune_magnitude(net, Mask.ones(net), 0.5)
    m.save(tmp_path / "m.safetensors")
    assert Mask.load(tmp_path / "m.safetensors", net).equal(m)
    other = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(FrugalError, match="mask shape"):
        Mask.load(tmp_path / "m.safetensors", other)
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(FrugalError, match="cannot read mask"):
        Mask.load(tmp_path / "bad.safetensors")
