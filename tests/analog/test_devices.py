"""Device models: one pulse moves a device by its step, within bounds, with asymmetry and noise."""

import math

import pytest
import torch

from frugalml.analog import devices
from frugalml.analog.devices import DeviceArray, DeviceSpec
from frugalml.errors import FrugalError


def array(rows=1, cols=1, **kw) -> DeviceArray:
    return DeviceArray(rows, cols, DeviceSpec(**kw))


def one(n):
    return torch.full((1, 1), float(n))


def test_constant_step_moves_one_step_up_and_down_with_asymmetry():
    a = array(dw=0.1, asymmetry=0.2)  # up = 0.1 * 1.1, down = 0.1 * 0.9
    a.pulse(one(1), one(0))
    assert a.weight().item() == pytest.approx(0.11)
    a.pulse(one(0), one(1))
    assert a.weight().item() == pytest.approx(0.02)
    a.pulse(one(3), one(0))
    assert a.weight().item() == pytest.approx(0.02 + 3 * 0.11)


def test_hard_bounds_stop_the_device():
    a = array(dw=0.1, w_max=0.25, w_min=-0.15)
    a.pulse(one(5), one(0))
    assert a.weight().item() == pytest.approx(0.25)
    a.pulse(one(0), one(9))
    assert a.weight().item() == pytest.approx(-0.15)


@pytest.mark.parametrize(
    "model,gamma,expected",
    [
        ("linear", 1.0, 0.1 * 0.5),
        ("linear", 0.5, 0.1 * 0.75),
        ("power", 2.0, 0.1 * 0.25),
        ("exp", 1.0, 0.1 * math.exp(-0.5)),
    ],
)
def test_state_dependent_steps_at_half_range(model, gamma, expected):
    a = array(model=model, dw=0.1, gamma_up=gamma, gamma_down=gamma)
    a.program(torch.full((1, 1), 0.5))
    assert a.steps(a.weight(), up=True).item() == pytest.approx(expected)
    a.pulse(one(1), one(0))
    assert a.weight().item() == pytest.approx(0.5 + expected)


def test_soft_bounds_down_step_grows_towards_the_upper_bound():
    a = array(model="linear", dw=0.1)
    a.program(torch.full((1, 1), 0.5))
    assert a.steps(a.weight(), up=False).item() == pytest.approx(0.1 * 1.5)  # 1 - 0.5 / (-1)


def test_unidirectional_pair_only_potentiates():
    a = array(dw=0.1, w_min=0.0, w_max=1.0, unidirectional=True)
    a.pulse(one(2), one(0))
    a.pulse(one(0), one(3))  # "down" potentiates G-
    assert a.state[0].item() == pytest.approx(0.2)
    assert a.state[1].item() == pytest.approx(0.3)
    assert a.weight().item() == pytest.approx(-0.1)


def test_cycle_to_cycle_noise_adds_sqrt_n_times_step():
    torch.manual_seed(0)
    a = array(rows=200, cols=200, dw=0.01, c2c=0.3)
    n = torch.full((200, 200), 4.0)
    a.pulse(n, torch.zeros_like(n))
    w = a.weight()
    assert w.mean().item() == pytest.approx(0.04, abs=3 * 0.006 / 200)
    assert w.std().item() == pytest.approx(math.sqrt(4) * 0.3 * 0.01, rel=0.03)


def test_device_to_device_spread_of_step_and_asymmetry():
    torch.manual_seed(0)
    a = array(rows=100, cols=100, dw=0.01, dw_dtod=0.2, asymmetry=0.1)
    ratio = a.dw_up / a.dw_down
    assert ratio.mean().item() == pytest.approx(1.05 / 0.95, rel=1e-5)  # asymmetry without spread is exact
    step = (a.dw_up + a.dw_down) / 2
    assert step.std().item() / 0.01 == pytest.approx(0.2, rel=0.05)


def test_symmetry_point_of_asymmetric_soft_bounds_device():
    # dw_up (1 - w) = dw_down (1 + w)  ->  w* = (up - down) / (up + down) = a / 2
    a = array(model="linear", dw=0.01, asymmetry=0.3)
    assert a.symmetry_point().item() == pytest.approx(0.15, abs=1e-6)


def test_states_override_sets_the_step_and_presets_carry_sources():
    s = devices.spec("ecram", states=500)
    assert s.dw == pytest.approx(2 / 500)
    assert s.states == pytest.approx(500)
    for p in devices.PRESETS.values():
        assert p.source and p.validate() is p


@pytest.mark.parametrize(
    "call,msg",
    [
        (lambda: devices.spec("flash"), "unknown device preset 'flash'"),
        (lambda: devices.spec("ideal", dw=3.0), "larger than its range"),
        (lambda: devices.spec("ideal", states=0.5), "larger than its range"),
        (lambda: devices.spec("ideal", colour=1), "unknown device setting"),
        (lambda: devices.spec("ideal", model="quantum"), "unknown device model"),
    ],
)
def test_bad_device_settings_are_clear_errors(call, msg):
    with pytest.raises(FrugalError, match=msg):
        call()


def test_refresh_rewrites_a_saturating_pair_onto_one_side():
    a = array(rows=1, cols=2, dw=0.1, w_min=0.0, w_max=1.0, unidirectional=True)
    a.state[0] = torch.tensor([[0.95, 0.5]])
    a.state[1] = torch.tensor([[0.65, 0.2]])
    pulses = a.refresh(0.9)  # only the first pair passed 0.9: w = 0.3 -> 3 pulses to rewrite
    assert pulses == 3
    assert a.state[0].tolist()[0] == pytest.approx([0.3, 0.5])
    assert a.state[1].tolist()[0] == pytest.approx([0.0, 0.2])
    assert a.weight().tolist()[0] == pytest.approx([0.3, 0.3])
