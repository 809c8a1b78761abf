"""Footprints of jobs too big to run, against the published figures in REFERENCE.md."""

import pytest

from frugalml.cost.carbon import LBS_PER_KG, intensity
from frugalml.cost.estimate import estimate
from frugalml.errors import FrugalError


def test_gpt3_on_v100_reproduces_lambda_labs_estimate():
    e = estimate(flops=3.14e23, hardware_name="v100", sustained_tflops=28, price_per_hour=1.5)
    assert e.device_years == pytest.approx(355, rel=0.02)
    assert e.cost_usd == pytest.approx(4.6e6, rel=0.02)


@pytest.mark.parametrize(
    "watts,hours,kwh,lbs",
    [(1515.43, 274_120, 656_347, 626_155), (1515.43, 84, 201.1, 192), (517.66, 336, 274.8, 262)],
)
def test_strubell_table3_rows(watts, hours, kwh, lbs):
    e = estimate(power_w=watts, hours=hours, pue=1.58, intensity=432.7)
    assert e.energy_kwh == pytest.approx(kwh, rel=0.01)
    assert e.co2e_lbs == pytest.approx(lbs, rel=0.01)


def test_strubell_constant_is_432_7_g_per_kwh():
    # 0.954 lbs/kWh (EPA 2018, Strubell et al.) expressed in g/kWh
    assert 0.954 / LBS_PER_KG * 1000 == pytest.approx(432.7, abs=0.05)


def test_flops_estimate_uses_tdp_times_hours_times_pue():
    e = estimate(flops=28e12 * 3600, hardware_name="v100", sustained_tflops=28, pue=1.0, intensity=100)
    assert e.device_hours == pytest.approx(1.0)
    assert e.energy_kwh == pytest.approx(0.300)  # 300 W TDP for one hour
    assert e.co2e_kg == pytest.approx(0.030)


def test_devices_split_wall_time_not_device_time():
    e = estimate(flops=1e21, hardware_name="a100", devices=8, pue=1.1, region="FRA")
    single = estimate(flops=1e21, hardware_name="a100", devices=1, pue=1.1, region="FRA")
    assert e.device_hours == pytest.approx(single.device_hours)
    assert e.wall_hours == pytest.approx(single.wall_hours / 8)
    assert e.energy_kwh == pytest.approx(single.energy_kwh)


def test_region_intensity_comes_from_codecarbon_data():
    fra, ind = intensity("FRA"), intensity("IND")
    assert fra.g_per_kwh < 150 < ind.g_per_kwh  # nuclear-heavy vs coal-heavy grid
    assert "CodeCarbon" in fra.source
    assert intensity("gcp:us-central1").g_per_kwh > 0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(power_w=100, hours=-1), "hours must be positive"),
        (dict(flops=1e20, hardware_name="nope"), "unknown hardware 'nope'"),
        (dict(power_w=100, hours=1, region="ATLANTIS"), "unknown region 'ATLANTIS'"),
        (dict(power_w=100, hours=1, pue=0.5), "cannot be below 1"),
        (dict(flops=1e20), "needs --hardware"),
        (dict(), "give --flops"),
        (dict(params=7e9, hardware_name="a100"), "give both --params and --tokens"),
        (dict(params=7e9, tokens=1e12, flops=1e20, hardware_name="a100"), "not both"),
        (dict(flops=1e20, hardware_name="a100", mfu=1.5), r"mfu is a fraction of peak in \(0, 1\]"),
        (dict(flops=1e20, hardware_name="a100", mfu=0.5, sustained_tflops=100), "not both"),
        (dict(power_w=100, hours=1, mfu=0.5), "--mfu needs --flops"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, message):
    with pytest.raises(FrugalError, match=message):
        estimate(**kwargs)


def test_6nd_rule_gives_the_same_figures_as_the_flops():
    # Llama-2-7B-sized run: 6 x 7e9 parameters x 1e12 tokens = 4.2e22 FLOPs
    e = estimate(params=7e9, tokens=1e12, hardware_name="a100", region="FRA")
    same = estimate(flops=4.2e22, hardware_name="a100", region="FRA")
    assert e.flops == pytest.approx(4.2e22)
    # at the A100's 124.8 sustained TFLOPS: 4.2e22 / 124.8e12 / 3600 = 93,483 device-hours
    assert e.device_hours == pytest.approx(93_483, rel=1e-4)
    for key in ("device_hours", "energy_kwh", "co2e_kg", "cost_usd"):
        assert getattr(e, key) == pytest.approx(getattr(same, key))
    inference = estimate(params=7e9, tokens=1e12, inference=True, hardware_name="a100")
    assert inference.flops == pytest.approx(1.4e22)  # 2ND
    assert inference.device_hours == pytest.approx(e.device_hours / 3)


def test_mfu_is_a_fraction_of_the_device_peak_and_assumptions_are_numbers():
    # A100 dense FP16 peak 312 TFLOPS; at 50% MFU 156 TFLOPS sustained
    e = estimate(flops=156e12 * 3600, hardware_name="a100", mfu=0.5, pue=1.0, intensity=100)
    assert e.device_hours == pytest.approx(1.0)
    assert e.assumptions["sustained_tflops"]["value"] == pytest.approx(156)
    assert e.assumptions["mfu"]["value"] == 0.5
    assert e.assumptions["pue"]["value"] == 1.0
    assert all(isinstance(a["value"], (int, float)) for a in e.assumptions.values())
    assert all(isinstance(a["source"], str) and a["unit"] for a in e.assumptions.values())
