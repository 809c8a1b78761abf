"""Access counts of the reuse model against counts worked out by hand on tiny layers."""

import pytest

from frugalml.accel import dataflows, from_dict
from frugalml.accel.mapper import Mapping, evaluate_mapping
from frugalml.accel.model import order_name
from frugalml.accel.workload import Layer

ENERGY = {"dram": 200, "glb": 6, "array": 2, "rf": 1, "mac": 1}


def arch(rows, cols, rf_bytes=64, glb_bytes=4096):
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


def vec(**kw):
    return tuple(kw.get(d, 1) for d in "NMCPQRSG")


def order_index(name):
    return [order_name(i) for i in range(6)].index(name)


def counts(ev, level):
    return [ev[f"acc_{level}_{t}"] for t in ("weights", "inputs", "outputs")]


def test_1x1_conv_weight_stationary_on_2x2_array_hand_counts():
    # 1x1 conv, 2 input channels -> 2 output channels, 2x2 output. WS: C down the rows,
    # M across the columns, each PE keeps its one weight and loops over the 4 pixels.
    layer = Layer("c", "conv", N=1, M=2, C=2, P=2, Q=2)
    m = Mapping(rf=vec(P=2, Q=2), sx=vec(M=2), sy=vec(C=2), glb=vec(), dram=vec(), glb_order=0, dram_order=0)
    ev = evaluate_mapping(layer, arch(2, 2), dataflows.get("ws"), m)
    assert ev["macs_padded"] == 16 and ev["cycles"] == 4
    # every tensor crosses DRAM exactly once: 4 weights, 8 inputs, 8 outputs written
    assert counts(ev, "dram") == [4, 8, 8]
    # GLB: weights 4 written + 4 read; inputs 8 written + 8 read (each input broadcast to the
    # 2 PEs of its row, one read); outputs 8 written by the array + 8 read out to DRAM
    assert counts(ev, "glb") == [8, 16, 16]
    # array: 4 weight fills, then one input and one partial sum per MAC
    assert counts(ev, "array") == [4, 16, 16]
    # RF: each weight written once and read by its 4 MACs; inputs and psums bypass the RF
    assert counts(ev, "rf") == [20, 0, 0]
    assert ev["energy"] == 16 * 1 + 20 * 1 + 36 * 2 + 40 * 6 + 20 * 200


def test_row_stationary_reads_each_input_row_once_for_diagonal_pes():
    # 1-D: 4 outputs of a 3-tap filter (6 inputs). RS puts R=3 on rows and P=4 on columns:
    # PE(r, p) needs input p + r, so 12 PEs use 6 distinct inputs (diagonal multicast).
    layer = Layer("row", "conv", N=1, M=1, C=1, P=4, Q=1, R=3, S=1)
    m = Mapping(rf=vec(), sx=vec(P=4), sy=vec(R=3), glb=vec(), dram=vec(), glb_order=0, dram_order=0)
    ev = evaluate_mapping(layer, arch(3, 4), dataflows.get("rs"), m)
    w, i, o = counts(ev, "glb")
    assert i == 6 + 6  # 6 written from DRAM, each read once for all 12 PEs
    assert w == 3 + 3  # 3 weights, each read once, multicast along its row
    assert o == 4 + 4  # psums reduced up the columns: 4 written, 4 read out to DRAM
    assert counts(ev, "array") == [12, 12, 12]  # one weight, one input in and one psum out per PE
    assert counts(ev, "rf") == [12 + 12, 12 + 12, 2 * 12 + 2 * 12]
    assert counts(ev, "dram") == [3, 6, 4]


@pytest.mark.parametrize(
    ("order", "weight_fills", "input_fills"),
    [
        (0, 2, 4),  # n innermost: the weight stays while both images pass; inputs refetched per m
        (2, 4, 2),  # m innermost: the input stays while both filters pass; weights refetched per n
    ],
)
def test_loop_order_decides_which_tensor_stays(order, weight_fills, input_fills):
    assert order_name(0).startswith("npq") and order_name(2).startswith("m")
    layer = Layer("fc", "fc", N=2, M=2, C=1)
    m = Mapping(rf=vec(), sx=vec(), sy=vec(), glb=vec(N=2, M=2), dram=vec(), glb_order=order, dram_order=0)
    ev = evaluate_mapping(layer, arch(1, 1), dataflows.get("rs"), m)
    w, i, o = counts(ev, "array")
    assert (w, i) == (weight_fills, input_fills)
    assert o == 4  # each of the 4 outputs drained once
    assert counts(ev, "dram") == [2, 2, 4]  # the GLB holds everything: compulsory traffic only


def test_partial_sums_spill_to_dram_when_the_reduction_is_outermost():
    # Both loops at the DRAM level, C outside M: every output leaves the chip after the first
    # channel and comes back for the second - 4 writes + 2 reads of partial sums.
    layer = Layer("spill", "fc", N=1, M=2, C=2)
    m = Mapping(
        rf=vec(), sx=vec(), sy=vec(), glb=vec(), dram=vec(M=2, C=2), glb_order=0, dram_order=order_index("npq<m<crs")
    )
    ev = evaluate_mapping(layer, arch(1, 1), dataflows.get("rs"), m)
    assert ev["acc_dram_outputs"] == 4 + 2
    # C innermost instead: each output finishes on chip and is written once
    m.dram_order = order_index("crs<npq<m")
    assert evaluate_mapping(layer, arch(1, 1), dataflows.get("rs"), m)["acc_dram_outputs"] == 2


def test_glb_keeps_an_output_tile_across_a_reduction_loop_that_does_not_move_it():
    layer = Layer("held", "fc", N=1, M=2, C=2)
    m = Mapping(rf=vec(), sx=vec(), sy=vec(), glb=vec(M=2), dram=vec(C=2), glb_order=0, dram_order=0)
    ev = evaluate_mapping(layer, arch(1, 1), dataflows.get("rs"), m)
    assert ev["acc_dram_outputs"] == 2  # the 2-output tile stays in the buffer over both channels
    assert ev["acc_dram_weights"] == 4 and ev["acc_dram_inputs"] == 2
