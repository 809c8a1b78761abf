"""The storage-area model and the equal-area comparison, against hand computations on a tiny spec."""

import pytest

from frugalml.accel import Layer, analyze, from_dict
from frugalml.accel.area import allocations, best_allocation, storage_area, with_rf
from frugalml.accel.energy import compare
from tests.accel.nets import TINY_SPEC

SPEC = TINY_SPEC | {"area": {"rf_per_byte": 2.0, "glb_per_byte": 1.0, "pe": 10}}


def test_storage_area_and_the_buffer_that_fills_it_by_hand():
    arch = from_dict(SPEC)
    # 4 PEs x (10 + 64 B x 2) + 4096 B x 1
    assert storage_area(arch) == 4 * (10 + 128) + 4096 == 4648
    half = with_rf(arch, 32)  # any size, not only those of RF_BYTES
    assert half.rf_bytes == 32 and half.glb_bytes == 4648 - 4 * (10 + 64) == 4352
    assert storage_area(half) == storage_area(arch)
    none = with_rf(arch, 0)
    assert none.glb_bytes == 4648 - 40 == 4608
    assert with_rf(arch, 600) is None  # 4 x (10 + 1200) > 4648: the RFs alone overflow the area
    # an odd leftover is rounded down to whole 2-byte words
    odd = from_dict(SPEC | {"area": {"rf_per_byte": 1.25, "glb_per_byte": 1.0}})
    assert storage_area(odd) == 4 * 80 + 4096 == 4416
    assert with_rf(odd, 33).glb_bytes == 4250  # 4416 - 4 x 41.25 = 4251 bytes, 2125 words


def test_no_local_reuse_gets_all_of_the_rf_area_as_buffer():
    arch = from_dict(SPEC)
    (nlr,) = allocations(arch, "nlr")
    assert nlr.rf_bytes == 0 and nlr.glb_bytes == 4608
    rs = allocations(arch, "rs")
    assert [a.rf_bytes for a in rs] == [64, 128, 256, 512][: len(rs)]
    assert all(abs(storage_area(a) - storage_area(arch)) < 2 for a in rs)


def test_best_allocation_is_the_cheapest_split_and_compare_reports_it():
    arch = from_dict(SPEC)
    layers = [Layer("c", "conv", N=2, M=4, C=4, P=6, Q=6, R=3, S=3)]
    by_hand = {}
    for spec in allocations(arch, "ws"):
        by_hand[spec.rf_bytes] = analyze(layers, spec, "ws").total()["energy"]["total"]
    best, tried = best_allocation(layers, arch, "ws", analyze)
    assert {t["rf_bytes"]: t["total_energy"] for t in tried} == pytest.approx(by_hand)
    assert best.arch.rf_bytes == min(by_hand, key=by_hand.get)
    table, _ = compare(layers, arch, ("ws", "nlr"), equal_area=True)
    assert table["ws"]["rf_bytes"] == best.arch.rf_bytes
    assert table["ws"]["total_energy"] == pytest.approx(min(by_hand.values()))
    assert table["nlr"]["rf_bytes"] == 0 and table["nlr"]["glb_bytes"] == 4608
    same, _ = compare(layers, arch, ("ws",))
    assert same["ws"]["rf_bytes"] == 64 and same["ws"]["glb_bytes"] == 4096  # equal storage: the spec's sizes
