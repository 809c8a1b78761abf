"""The pruned mapper against exhaustive enumeration, and mapping errors."""

import pytest

from frugalml.accel import Layer, dataflows, from_dict
from frugalml.accel.mapper import candidates, search
from frugalml.errors import FrugalError

ENERGY = {"dram": 200, "glb": 6, "array": 2, "rf": 1, "mac": 1}


def tiny(rows, cols, rf_bytes, glb_bytes):
    return from_dict(
        {
            "name": "tiny",
            "pe_array": [rows, cols],
            "rf_bytes": rf_bytes,
            "glb_bytes": glb_bytes,
            "word_bytes": 2,
            "clock_hz": 1e8,
            "energy": ENERGY,
        }
    )


def test_candidates_give_every_distinct_remainder():
    assert candidates(7) == (1, 2, 3, 4, 7)  # ceil(7/f) = 7, 4, 3, 2, 1
    assert candidates(12) == (1, 2, 3, 4, 6, 12)
    for b in (5, 13, 55):
        rems = {-(-b // f) for f in range(1, b + 1)}
        assert {-(-b // f) for f in candidates(b)} == rems


CASES = [
    (Layer("conv3x3", "conv", N=2, M=4, C=2, P=4, Q=3, R=3, S=3), (3, 4, 32, 256)),
    (Layer("strided", "conv", N=1, M=3, C=2, P=4, Q=2, R=2, S=2, stride=(2, 2)), (2, 3, 24, 200)),
    (Layer("fc", "fc", N=3, M=6, C=8), (2, 3, 24, 200)),
]


def check_against_exhaustive(layer, hw, df):
    arch = tiny(*hw)
    flow = dataflows.get(df)
    # keep=4 forces the pruning to throw most (array, RF) pairs away
    _, pruned, n_pruned = search(layer, arch, flow, keep=4)
    _, best, n_all = search(layer, arch, flow, exhaustive=True)
    assert n_all > n_pruned  # the pruned search really looked at fewer mappings
    assert pruned["energy"] >= best["energy"] * (1 - 1e-9)  # nothing beats the exhaustive optimum
    assert pruned["energy"] <= 1.02 * best["energy"]


FAST = [(1, "rs"), (1, "nlr"), (2, "rs"), (2, "ws"), (2, "os"), (2, "nlr"), (0, "nlr")]
SLOW = [(0, "rs"), (0, "ws"), (0, "os"), (1, "ws"), (1, "os")]  # up to 7 million mappings each


@pytest.mark.parametrize(("case", "df"), FAST, ids=[f"{CASES[c][0].name}-{d}" for c, d in FAST])
def test_pruned_mapper_within_2_percent_of_exhaustive_optimum(case, df):
    check_against_exhaustive(*CASES[case], df)


@pytest.mark.slow
@pytest.mark.parametrize(("case", "df"), SLOW, ids=[f"{CASES[c][0].name}-{d}" for c, d in SLOW])
def test_pruned_mapper_within_2_percent_of_exhaustive_optimum_slow(case, df):
    check_against_exhaustive(*CASES[case], df)


def test_layer_that_fits_no_mapping_is_named():
    # row stationary keeps a whole filter row (S=11) in the RF; 8 words cannot hold it
    arch = tiny(12, 14, 16, 108 * 1024)
    layer = Layer("features.0", "conv", N=1, M=96, C=3, P=55, Q=55, R=11, S=11, stride=(4, 4))
    with pytest.raises(FrugalError, match="features.0 cannot fit any rs mapping"):
        search(layer, arch, dataflows.get("rs"))


def test_buffer_too_small_for_any_tile_is_named():
    arch = tiny(2, 2, 64, 4)  # a 2-word buffer
    with pytest.raises(FrugalError, match="layer big cannot fit any ws mapping.*global buffer holds 2"):
        search(Layer("big", "conv", N=1, M=4, C=4, P=4, Q=4, R=3, S=3), arch, dataflows.get("ws"))


def test_mapper_uses_the_whole_array_when_the_layer_allows():
    arch = tiny(4, 4, 64, 8192)
    layer = Layer("c", "conv", N=1, M=16, C=16, P=8, Q=8, R=1, S=1)
    mapping, ev, _ = search(layer, arch, dataflows.get("nlr"), objective="delay")
    assert ev["cycles"] == layer.macs / 16  # 16 PEs busy every cycle


def dram_words(ev):
    return ev["acc_dram_weights"] + ev["acc_dram_inputs"] + ev["acc_dram_outputs"]


def test_dram_objective_reads_each_tensor_once_when_the_layer_fits_the_buffer():
    layer, arch = Layer("fc", "fc", N=4, M=8, C=8), tiny(2, 2, 64, 4096)
    once = 64 + 32 + 32  # weights, inputs, outputs: all fit the 2048-word buffer
    _, ev, _ = search(layer, arch, dataflows.get("rs"), objective="dram")
    assert dram_words(ev) == once


@pytest.mark.parametrize("case", [0, 1, 2], ids=[c[0].name for c in CASES])
def test_dram_objective_finds_the_exhaustive_fewest_dram_words(case):
    layer, hw = CASES[case]
    arch, flow = tiny(*hw), dataflows.get("rs")
    _, best, _ = search(layer, arch, flow, objective="dram", exhaustive=True)
    _, pruned, _ = search(layer, arch, flow, objective="dram")
    _, by_energy, _ = search(layer, arch, flow, objective="energy", exhaustive=True)
    assert dram_words(pruned) == dram_words(best) <= dram_words(by_energy)
