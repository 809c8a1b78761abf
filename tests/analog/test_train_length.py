"""Pulse trains sized to the update (Gokmen & Vlasov 2016: a train of BL slots moves a device by
at most BL x dw). With a fixed BL = 31 and a fine step (3,000 states) a large SGD step was
clipped; trains of ceil(lr max|x| max|d| / dw) slots carry it, unbiased."""

import pytest
import torch
from torch import nn

from frugalml.analog import devices, tile
from frugalml.analog.tile import IO_PRESETS, AnalogTile, pulse_counts, train_lengths
from frugalml.errors import FrugalError

DW_3000 = 1.2 / 3000  # the gokmen-vlasov range [-0.6, 0.6] cut into 3,000 states


def test_train_lengths_hand_values():
    lr, bl, dw = 0.1, 31, 0.001
    x = torch.tensor([[0.01, -0.1], [1.0, 0.2], [-2.0, 0.0], [1.0, 0.0]])
    d = torch.tensor([[0.1], [-0.5], [1.0], [0.31]])
    # lr max|x| max|d| / dw = 0.1, 50, 200 and exactly 31 slots
    assert train_lengths(x, d, lr, bl, dw).tolist() == [31, 50, 200, 31]
    assert train_lengths(x, d, lr, bl, dw, bl_max=100).tolist() == [31, 50, 100, 31]
    assert train_lengths(x, d, lr, bl, dw, bl_max=bl).tolist() == [31, 31, 31, 31]


def test_a_fixed_train_clips_a_large_step_and_a_sized_one_carries_it():
    # lr x d = 0.1 x 1 x 0.372 = 0.0372 = 93 steps at 3,000 states; BL = 31 slots carry 31 at most.
    # Both lines fire in every slot (probability 1), so the counts are exact.
    x, d = torch.tensor([[1.0]]), torch.tensor([[0.372]])
    fixed = pulse_counts(x, d, 0.1, 31, DW_3000, bl_max=31)
    assert fixed.n_down.item() == 31 and fixed.n_up.item() == 0  # a third of the SGD step
    assert fixed.saturated == 2 and fixed.slots == 31
    sized = pulse_counts(x, d, 0.1, 31, DW_3000)
    assert sized.n_down.item() == 93 and sized.slots == 93 and sized.saturated == 0
    assert sized.n_down.item() * DW_3000 == pytest.approx(0.1 * 1.0 * 0.372)


def _hand_mean_and_se(x, d, lr, length, dw, reps):
    """E[update] and its standard error for `reps` samples of one (x, d) with trains of `length`."""
    c = (lr / (length * dw)) ** 0.5
    p = c * (d.abs().max() / x.abs().max()) ** 0.5 * x.abs()
    q = c * (x.abs().max() / d.abs().max()) ** 0.5 * d.abs()
    pq = q.T @ p  # coincidence probability per slot, per device
    mean = -(d.sign().T @ x.sign()) * length * pq * dw  # = -lr d^T x when nothing clips
    se = dw * (length * pq.clamp(max=1) * (1 - pq.clamp(max=1)) / reps).sqrt()
    return mean, se


def test_sized_trains_are_unbiased_at_3000_states_where_fixed_ones_are_not():
    """Statistical (fixed seed): the mean of 3,000 updates of one (x, d) is -lr d^T x within
    4 standard errors with sized trains; the fixed BL = 31 rule falls short by many."""
    torch.manual_seed(0)
    x = torch.tensor([[0.9, -0.3, 0.5, 0.05, -0.7, 0.2]])
    d = torch.tensor([[0.3, -0.1, 0.02, -0.25]])
    lr, bl, reps = 0.1, 31, 3000
    need = lr * 0.9 * 0.3 / DW_3000  # 67.5 slots: a fixed 31-slot train would clip
    length = 68
    assert train_lengths(x, d, lr, bl, DW_3000).item() == length and need > bl
    sgd = -lr * d.T @ x
    hand, se = _hand_mean_and_se(x, d, lr, length, DW_3000, reps)
    assert hand == pytest.approx(sgd, rel=1e-6)  # the hand expectation is the SGD step
    p = pulse_counts(x.repeat(reps, 1), d.repeat(reps, 1), lr, bl, DW_3000)
    mean = (p.n_up - p.n_down) * DW_3000 / reps
    assert p.saturated == 0 and p.slots == reps * length
    assert (mean - sgd).abs().le(4 * se + 1e-9).all()
    # the fixed rule: the largest entry (0.9 x 0.3) can move at most 31 steps per sample
    f = pulse_counts(x.repeat(reps, 1), d.repeat(reps, 1), lr, bl, DW_3000, bl_max=bl)
    fmean = (f.n_up - f.n_down) * DW_3000 / reps
    assert f.saturated > 0
    assert fmean[0, 0].abs().item() == pytest.approx(31 * DW_3000, rel=1e-6)
    assert (fmean[0, 0] - sgd[0, 0]).abs() > 20 * se[0, 0]


def test_a_tile_update_at_3000_states_matches_the_sgd_step_on_average():
    """Through backward and `analog_step`: the mean weight change over repeated updates from the
    same weights is the SGD step (ideal peripherals, noiseless devices)."""
    torch.manual_seed(2)
    lin = nn.Linear(6, 3)
    x, y = torch.randn(4, 6), torch.randn(4, 3)
    lr = 0.005  # SGD steps up to 0.073: inside the bounds (+-0.6), up to ~180 steps of 3,000 states
    ((lin(x) - y) ** 2).sum().backward()
    sgd = -lr * lin.weight.grad
    spec = devices.spec("gokmen-vlasov", states=3000, c2c=0, dw_dtod=0, asym_dtod=0, bound_dtod=0)
    changes = {}
    for bl_max in (None, 31):
        net = tile.convert(nn.Sequential(lin), spec, io=IO_PRESETS["ideal"], bl=31, bl_max=bl_max)
        t = net[0].tile
        w0, total = t.weight().clone(), torch.zeros_like(sgd)
        for _ in range(200):
            ((net(x) - y) ** 2).sum().backward()
            tile.analog_step(net, lr)
            total += t.weight() - w0
            t.array.state[0] = w0
        changes[bl_max] = total / 200
        assert t.counts[tile.IDX["slots"]] >= 200 * 4 * 31
    err = ((changes[None] - sgd).norm() / sgd.norm()).item()
    err_fixed = ((changes[31] - sgd).norm() / sgd.norm()).item()
    print("relative error of the mean update: sized trains", err, "fixed BL=31", err_fixed)
    assert err < 0.05
    assert err_fixed > 0.25


def test_bl_max_below_bl_is_a_clear_error():
    with pytest.raises(FrugalError, match="bl_max"):
        AnalogTile(3, 2, devices.spec("ideal"), bl=31, bl_max=10)
    with pytest.raises(FrugalError, match="bl_max"):
        pulse_counts(torch.ones(1, 2), torch.ones(1, 2), 0.1, 31, 1e-3, bl_max=5)
