"""Analog tiles: DAC/ADC quantisation, reads, the pulsed update against SGD, conv, tiki-taka, energy."""

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from frugalml.analog import devices, tile
from frugalml.analog.energy import EnergyModel, analog_cost, analog_time_s
from frugalml.analog.tile import IO_PRESETS, AnalogTile, IOConfig, pulse_counts, quantize
from frugalml.errors import FrugalError

IDEAL_IO = IO_PRESETS["ideal"]


def test_quantize_matches_hand_values():
    # 2 bits over [-1, 1]: levels -1, 0, 1 (step 1); values clip at the bound
    v = torch.tensor([-2.0, -0.6, -0.4, 0.2, 0.49, 0.51, 3.0])
    assert quantize(v, 2, 1.0).tolist() == [-1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    # 3 bits over [-2, 2]: step 4/6 = 2/3
    v = torch.tensor([0.3, 0.35, 1.1, -1.7])
    assert quantize(v, 3, 2.0) == pytest.approx(torch.tensor([0.0, 2 / 3, 4 / 3, -2.0]))
    assert quantize(v, None, math.inf).tolist() == v.tolist()


def _tile(w, io, **kw):
    t = AnalogTile(w.shape[1], w.shape[0], devices.spec("ideal"), io=io, **kw)
    t.program(w)
    return t


def test_read_through_dac_and_adc_matches_hand_computation():
    w = torch.tensor([[0.3, -0.2]])
    x = torch.tensor([[1.0, 0.4]])
    assert _tile(w, IDEAL_IO).mvm(x, False).item() == pytest.approx(0.22)
    io = IOConfig(dac_bits=3, adc_bits=3, read_noise=0.0, out_bound=1.0)
    # DAC: 0.4 -> round(1.2) / 3 = 1/3; W x = 0.3 - 0.2/3 = 0.2333; ADC: round(0.7) / 3 = 1/3
    assert _tile(w, io).mvm(x, False).item() == pytest.approx(1 / 3)
    # backward read is the transpose: W^T d
    d = torch.tensor([[0.5]])
    assert _tile(w, IDEAL_IO).mvm(d, True)[0].tolist() == pytest.approx([0.15, -0.1])


def test_noise_management_and_bound_management_recover_a_clipped_output():
    w = torch.ones(1, 4) * 0.5
    x = torch.full((1, 4), 3.0)  # W x = 6, inputs scaled to 1 -> 2 on the array
    io = IOConfig(dac_bits=None, adc_bits=None, read_noise=0.0, out_bound=1.5, bound_management=0)
    assert _tile(w, io).mvm(x, False).item() == pytest.approx(1.5 * 3)  # clipped at the bound
    t = _tile(w, replace(io, bound_management=5))
    t.train()
    assert t.mvm(x, False).item() == pytest.approx(6.0)  # re-read with input halved
    assert t.counts[tile.IDX["fwd_vectors"]] == 2


def test_read_noise_has_the_configured_spread():
    torch.manual_seed(0)
    io = IOConfig(dac_bits=None, adc_bits=None, read_noise=0.06, out_bound=math.inf)
    t = _tile(torch.zeros(50, 4), io)
    y = t.mvm(torch.ones(400, 4), False)
    assert y.std().item() == pytest.approx(0.06, rel=0.03)


def test_expected_pulsed_update_equals_the_sgd_outer_product():
    """Statistical test (fixed seed): E[moves] x step = lr d^T x, the SGD update."""
    torch.manual_seed(0)
    x = torch.tensor([[0.9, -0.3, 0.5, 0.05]])
    d = torch.tensor([[0.2, -0.7, 0.4]])
    lr, bl, dw = 0.01, 20, 1e-3
    target = -lr * d.T @ x
    reps = 4000
    # `reps` independent rank-one updates of the same (x, d) in one call: their sum / reps
    up, down, _, sat, _ = pulse_counts(x.repeat(reps, 1), d.repeat(reps, 1), lr, bl, dw)
    assert sat == 0
    mean = (up - down) * dw / reps
    # per device the count is Binomial(BL, p q): standard error of the mean update
    p = (lr / (bl * dw)) ** 0.5 * (d.abs().max() / x.abs().max()) ** 0.5 * x.abs()
    q = (lr / (bl * dw)) ** 0.5 * (x.abs().max() / d.abs().max()) ** 0.5 * d.abs()
    pq = q.T @ p
    se = dw * (bl * pq * (1 - pq) / reps).sqrt()
    assert (mean - target).abs().le(4 * se + 1e-9).all()
    assert mean.sign().eq(target.sign()).all()


def test_single_pulsed_update_converges_to_sgd_as_the_step_shrinks():
    torch.manual_seed(1)
    lin = nn.Linear(6, 3)
    x, y = torch.randn(4, 6), torch.randn(4, 3)
    ((lin(x) - y) ** 2).sum().backward()
    sgd = -1e-3 * lin.weight.grad
    errors = []
    for dw, bl in ((1e-4, 100), (1e-6, 10000)):
        net = tile.convert(nn.Sequential(lin), devices.spec("ideal", dw=dw), io=IDEAL_IO, bl=bl)
        w0 = net[0].tile.weight().clone()
        ((net(x) - y) ** 2).sum().backward()
        tile.analog_step(net, 1e-3)
        errors.append(((net[0].tile.weight() - w0 - sgd).norm() / sgd.norm()).item())
    assert errors[1] < errors[0] / 5 and errors[1] < 0.05


def test_converted_network_reads_like_the_digital_one():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    a = tile.convert(net, devices.spec("ideal"), io=IDEAL_IO)
    assert isinstance(a[0], tile.AnalogConv2d) and isinstance(a[3], tile.AnalogLinear)
    x = torch.rand(2, 2, 8, 8)
    assert torch.allclose(a(x), net(x), atol=1e-5)
    # and its backward gives the digital input gradient
    xa, xd = x.clone().requires_grad_(), x.clone().requires_grad_()
    a(xa).sum().backward()
    net(xd).sum().backward()
    assert torch.allclose(xa.grad, xd.grad, atol=1e-5)


def test_tiki_taka_transfers_a_column_of_the_fast_array_into_the_slow_one():
    torch.manual_seed(0)
    t = AnalogTile(
        3,
        2,
        devices.spec("ideal", dw=1e-4),
        io=IDEAL_IO,
        algorithm="tiki-taka",
        bl=2000,
        transfer_lr=0.5,
        transfer_columns=1,
    )
    t.fast.state[0] = torch.tensor([[0.2, -0.1, 0.0], [-0.3, 0.05, 0.1]])
    t.train()
    t._maybe_transfer()  # first transfer reads column 0
    c = t.array.weight()
    assert c[:, 0] == pytest.approx(torch.tensor([0.1, -0.15]), abs=5e-3)
    assert c[:, 1:].abs().max() == 0
    assert int(t.next_column) == 1


def test_tiki_taka_refuses_a_unidirectional_device():
    with pytest.raises(FrugalError, match="bidirectional"):
        AnalogTile(3, 2, devices.spec("pcm"), algorithm="tiki-taka")


def test_bad_bl_is_a_clear_error():
    with pytest.raises(FrugalError, match="BL"):
        AnalogTile(3, 2, devices.spec("ideal"), bl=0)
    with pytest.raises(FrugalError, match="BL"):
        pulse_counts(torch.ones(1, 2), torch.ones(1, 2), 0.1, 0, 1e-3)


def test_energy_is_counts_times_per_event_energies():
    m = EnergyModel()
    counts = dict.fromkeys(tile.COUNTS, 0.0) | {
        "dac": 10,
        "adc": 4,
        "cell_reads": 100,
        "line_pulses": 7,
        "device_pulses": 3,
        "fwd_vectors": 2,
        "bwd_vectors": 1,
        "updates": 2,
        "slots": 45,  # e.g. one train of BL = 10 slots and one stretched to 35
    }
    cost, parts = analog_cost(counts, 1e-15, bl=10, model=m)
    expected = 10 * 0.1e-12 + 4 * 1e-12 + 100 * 0.4e-15 + 7 * 10e-15 + 3 * 1e-15
    assert cost.energy_j == pytest.approx(expected)
    assert analog_time_s(counts, 10, m) == pytest.approx(3 * 80e-9 + 45 * 1e-9)
    # counts of a run made before trains were sized: every update BL slots
    old = {k: v for k, v in counts.items() if k != "slots"}
    assert analog_time_s(old, 10, m) == pytest.approx(3 * 80e-9 + 2 * 10 * 1e-9)
    assert set(parts) == {"dac", "adc", "cell_reads", "line_pulses", "device_pulses"}


def test_layers_wider_than_one_array_pay_for_more_conversions():
    io = replace(IDEAL_IO, array_size=4)
    t = _tile(torch.zeros(3, 10), io)  # 10 inputs -> 3 arrays side by side, each with 3 ADCs
    t.train()
    t.mvm(torch.ones(2, 10), False)
    assert t.counts[tile.IDX["adc"]] == 2 * 3 * 3
    assert t.counts[tile.IDX["dac"]] == 2 * 10 * 1
    assert t.counts[tile.IDX["cell_reads"]] == 2 * 30
