"""Eyeriss v1 chip features against hand counts: run-length code, zero gating, weights that bypass
the buffer, and joules / watts from sourced per-access energies."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from frugalml.accel import Layer, analyze, dataflows, extract, from_dict, load_arch
from frugalml.accel.arch import LEVELS
from frugalml.accel.mapper import Mapping, evaluate_mapping
from frugalml.accel.workload import conv_layer, rlc_ratio_at_zeros, rlc_words, with_zero_fractions
from frugalml.errors import FrugalError
from tests.accel.nets import TINY_SPEC

BASE = TINY_SPEC


def vec(**kw):
    return tuple(kw.get(d, 1) for d in "NMCPQRSG")


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ([0, 0, 5, 0, 7], 4),  # pairs (2, 5), (1, 7): one 64-bit word = 4 16-bit words
        ([1, 2, 3, 4, 5, 6], 8),  # dense: 6 pairs, 2 words of 3 - the code expands dense data by 4/3
        ([0] * 40 + [9], 4),  # 40 zeros: a pair (31, 0) covers 32, then (8, 9): 2 pairs
        ([0] * 64, 4),  # trailing zeros: 2 pairs of 32
        ([0] * 97, 8),  # 4 pairs (32 + 32 + 32 + 1) -> 2 words
        ([3] * 7 + [0] * 33, 12),  # 7 pairs + 2 for the 33 trailing zeros = 9 pairs -> 3 words
    ],
)
def test_run_length_code_sizes_by_hand(values, words):
    assert rlc_words(np.array(values)) == words


def test_extract_measures_input_and_relu_output_compression():
    # a 1x1 conv with weight -1: 7 positive inputs then 9 zeros; every output <= 0, zero after ReLU
    net = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(-1.0)
    x = torch.zeros(1, 1, 4, 4)
    x.view(-1)[:7] = torch.arange(1.0, 8.0)
    (layer,) = extract(net, x)
    assert layer.input_rlc == pytest.approx(12 / 16)  # 7 + 1 pairs -> 3 words of 4
    assert layer.output_rlc == pytest.approx(4 / 16)  # 16 zeros: 1 pair -> 1 word
    assert layer.input_density == pytest.approx(7 / 16)


def test_rlc_shrinks_dram_activation_traffic_by_the_measured_ratio():
    layer = Layer("fc", "fc", N=4, M=8, C=8, input_rlc=0.5, output_rlc=0.25)
    raw = from_dict(BASE)
    rlc = from_dict(BASE | {"rlc": True})
    a = analyze([layer], raw, "rs").total()["accesses"]["dram"]
    b = analyze([layer], rlc, "rs").total()["accesses"]["dram"]
    assert a["outputs"] == 32  # the layer fits on chip: each output written once, no spills
    assert b["inputs"] == pytest.approx(a["inputs"] * 0.5)
    assert b["outputs"] == pytest.approx(32 * 0.25)
    assert b["weights"] == a["weights"]  # weights are not compressed
    # an incompressible input (ratio above 1) is sent raw
    dense = dataclasses.replace(layer, input_rlc=4 / 3)
    assert analyze([dense], rlc, "rs").total()["accesses"]["dram"]["inputs"] == a["inputs"]


def test_zero_gating_saves_mac_and_rf_energy_not_cycles():
    layer = Layer("fc", "fc", N=4, M=8, C=8, input_density=0.25)
    plain = analyze([layer], from_dict(BASE), "rs").layers[0]
    gated = analyze([layer], from_dict(BASE | {"zero_gating": True}), "rs").layers[0]
    macs = plain.macs  # 256, no padding on this layer
    assert gated.cycles == plain.cycles
    assert gated.energy["mac"] == pytest.approx(plain.energy["mac"] * 0.25)
    # three quarters of the MACs skip their weight read and their partial-sum read and write
    assert gated.accesses["rf"]["weights"] == pytest.approx(plain.accesses["rf"]["weights"] - 0.75 * macs)
    assert gated.accesses["rf"]["outputs"] == pytest.approx(plain.accesses["rf"]["outputs"] - 1.5 * macs)
    assert gated.accesses["rf"]["inputs"] == plain.accesses["rf"]["inputs"]


def test_weights_that_bypass_the_buffer_come_straight_from_dram():
    # the 1x1 WS case of test_model: 4 weights, one per PE, each filled once
    layer = Layer("c", "conv", N=1, M=2, C=2, P=2, Q=2)
    m = Mapping(rf=vec(P=2, Q=2), sx=vec(M=2), sy=vec(C=2), glb=vec(), dram=vec(), glb_order=0, dram_order=0)
    arch = from_dict(BASE | {"glb_bypass": ["weights"]})
    ev = evaluate_mapping(layer, arch, dataflows.get("ws"), m)
    assert ev["acc_glb_weights"] == 0 and ev["acc_dram_weights"] == 4 and ev["acc_array_weights"] == 4
    assert ev["acc_glb_inputs"] == 16 and ev["acc_glb_outputs"] == 16  # unchanged from the shared buffer


def test_joules_are_accesses_times_sourced_energies_summed_by_hand():
    v1 = load_arch("eyeriss-v1")
    assert v1.absolute and set(v1.energy_sources) == set(LEVELS)
    assert all(len(v1.energy_sources[lv]) > 20 for lv in LEVELS)
    e = v1.energy  # pJ: dram 325, glb 9, array 3, rf 1.5, mac 1.5
    layer = Layer("c", "conv", N=1, M=2, C=2, P=2, Q=2)
    m = Mapping(rf=vec(P=2, Q=2), sx=vec(M=2), sy=vec(C=2), glb=vec(), dram=vec(), glb_order=0, dram_order=0)
    tiny = dataclasses.replace(v1, pe_array=(2, 2), glb_bypass=(), rf_partition_words=None)
    ev = evaluate_mapping(layer, tiny, dataflows.get("ws"), m)
    # hand counts (test_model): DRAM 4+8+8, GLB 8+16+16, array 4+16+16, RF 20, 16 MACs
    by_hand = 20 * e["dram"] + 40 * e["glb"] + 36 * e["array"] + 20 * e["rf"] + 16 * e["mac"]
    assert by_hand == pytest.approx(20 * 325 + 40 * 9 + 36 * 3 + 20 * 1.5 + 16 * 1.5)
    assert ev["energy"] == pytest.approx(by_hand)


def test_power_is_energy_over_modelled_time_and_onchip_leaves_dram_out():
    layer = Layer("fc", "fc", N=4, M=8, C=8)
    spec = BASE | {"energy": {"unit": "pJ", "dram": 325.0, "glb": 9.0, "array": 3.0, "rf": 1.5, "mac": 1.5}}
    tot = analyze([layer], from_dict(spec), "rs").total()
    e = tot["energy"]
    assert tot["energy_j"] == pytest.approx(e["total"] * 1e-12)
    assert tot["onchip_energy_j"] == pytest.approx((e["glb"] + e["array"] + e["rf"] + e["mac"]) * 1e-12)
    assert tot["latency_s"] == pytest.approx(tot["cycles"] / 1e8)
    assert tot["onchip_power_w"] == pytest.approx(tot["onchip_energy_j"] / tot["latency_s"])
    assert "power_w" not in analyze([layer], from_dict(BASE), "rs").total()  # normalised: no watts


@pytest.mark.parametrize(
    ("zeros", "ratio"),
    [
        (0.0, 4 / 3),  # dense: one pair (21.3 bits) per 16-bit value
        (0.25, 1.0),  # 4/3 x 0.75 / (1 - 0.25**32) = 1 to 1e-19
        (0.5, 2 / 3),  # 0.5**32 ~ 2e-10: no run of 32 zeros to speak of
        (1.0, 0.0),
    ],
)
def test_run_length_ratio_at_a_fraction_of_zeros_by_hand(zeros, ratio):
    assert rlc_ratio_at_zeros(zeros) == pytest.approx(ratio, rel=1e-9)


def test_run_length_ratio_at_random_zeros_matches_the_code_on_a_sample():
    # at 95% zeros runs of 32+ zeros are common (0.95**32 = 0.19): the closed form counts their extra pairs
    rng = np.random.default_rng(1)
    for zeros in (0.6, 0.95):
        values = (rng.random(600_000) >= zeros).astype(np.int16)
        assert rlc_words(values) / len(values) == pytest.approx(rlc_ratio_at_zeros(zeros), rel=0.01)
    assert rlc_ratio_at_zeros(0.95) == pytest.approx(4 / 3 * 0.05 / (1 - 0.95**32))


def test_given_zero_fractions_set_dram_traffic_of_a_tiny_layer_by_hand():
    layer = Layer("fc", "fc", N=4, M=8, C=8)  # inputs 32 words, outputs 32, weights 64; fits on chip
    (given,) = with_zero_fractions([layer], [0.5])
    assert given.input_density == 0.5
    raw = analyze([layer], from_dict(BASE), "rs").total()["accesses"]["dram"]
    assert (raw["weights"], raw["inputs"], raw["outputs"]) == (64, 32, 32)
    b = analyze([given], from_dict(BASE | {"rlc": True}), "rs").total()["accesses"]["dram"]
    # half zeros: 16 pairs per 32 values, 3 pairs per 4 words -> 21.33 words; the output (the last
    # layer's, so as sparse as its input) likewise
    assert b["inputs"] == pytest.approx(32 * 2 / 3) and b["outputs"] == pytest.approx(32 * 2 / 3)
    assert b["weights"] == 64


def test_given_zeros_of_a_padded_input_leave_its_padding_free():
    # 3x3 conv, padding 1, on a 4x4 input: the model reads 6x6 = 36 words per channel and image
    layer = conv_layer("c", 2, 1, 1, 4, 4, 3, 3, padding=(1, 1))
    assert layer.input_hw == (6, 6) and layer.input_hw_unpadded == (4, 4)
    (given,) = with_zero_fractions([layer], [0.25])
    # a quarter zeros compresses the 16 real values to 16 words (ratio 1); the 20 padding zeros are free
    assert given.input_rlc == pytest.approx(16 / 36)
    raw = analyze([layer], from_dict(BASE), "rs").total()["accesses"]["dram"]
    b = analyze([given], from_dict(BASE | {"rlc": True}), "rs").total()["accesses"]["dram"]
    # every input word read (halo re-reads included) shrinks by 16 / 36: read once, 2 x 36 words -> 2 x 16
    assert raw["inputs"] >= 2 * 36 and b["inputs"] == pytest.approx(raw["inputs"] * 16 / 36)


def test_each_output_is_as_sparse_as_the_next_input_by_default():
    a, b = Layer("a", "fc", N=1, M=8, C=8), Layer("b", "fc", N=1, M=8, C=8)
    la, lb = with_zero_fractions([a, b], [0.0, 0.5])
    assert la.output_rlc == pytest.approx(2 / 3) and lb.output_rlc == pytest.approx(2 / 3)
    assert la.input_rlc == pytest.approx(4 / 3)  # dense input: larger than raw, so sent raw
    (lc,) = with_zero_fractions([a], [0.5], output_zeros=[0.25])
    assert lc.output_rlc == pytest.approx(1.0)
    with pytest.raises(FrugalError, match="2 fractions of zeros for 1 layers"):
        with_zero_fractions([a], [0.1, 0.2])


def test_extract_measures_the_input_ratio_over_the_padded_input():
    # a dense 4x4 input padded to 6x6: 16 nonzero values, every zero run (6 + 1 = 7 at most) under 32,
    # plus one pair for the 7 trailing zeros: 17 pairs -> 6 words of 64 bits = 24 words over 36
    net = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    (layer,) = extract(net, torch.arange(1.0, 17.0).reshape(1, 1, 4, 4))
    assert layer.padding == (1, 1)
    assert layer.input_rlc == pytest.approx(24 / 36)
    assert layer.input_density == 1.0  # of the real input


def test_conv1d_padding_is_read():
    net = nn.Conv1d(1, 1, 3, padding=2, bias=False)
    (layer,) = extract(net, torch.ones(1, 1, 5))
    assert layer.padding == (0, 2) and layer.Q == 7 and layer.input_hw == (1, 9)
