"""Storage area of a spec, and the equal-area dataflow comparison of Eyeriss ISCA 2016.

ISCA 2016 compares dataflows "under the same hardware area and processing parallelism":
the PE count is fixed (256) and so is the storage area, set by row stationary's design,

    area = PEs x Area(512 B RF) + Area(PEs x 512 B global buffer)

(256 x 512 B RF and a 128 kB buffer). A dataflow that needs less RF gets a larger buffer
in the same area. Here, with areas per byte relative to one buffer byte,

    area = PEs x (pe + rf_bytes x rf_per_byte) + glb_bytes x glb_per_byte

and `allocations(arch, dataflow)` lists every (RF, buffer) split of the spec's area from
`RF_BYTES` (no RF for no-local-reuse); `best_allocation` keeps the one where the dataflow
spends least energy, so each dataflow is compared on the storage split that suits it.

What one RF byte costs against one buffer byte is the spec's `area.rf_per_byte`: a small
register file built from flip-flops or latches costs more per bit than a dense SRAM. The
ISCA paper's own area figures are not restated here; `isca16` uses 2 (our assumption) and
the ISCA benchmark sweeps it.
"""

from __future__ import annotations

from dataclasses import replace

from frugalml.accel.arch import Arch
from frugalml.errors import FrugalError

# RF sizes per PE tried for the dataflows that keep data in the PE (bytes)
RF_BYTES = (64, 128, 256, 512)
DEFAULT_AREA = {"rf_per_byte": 2.0, "glb_per_byte": 1.0, "pe": 0.0, "source": "assumption"}


def area_of(arch: Arch) -> dict:
    """The spec's area model (its own, else DEFAULT_AREA)."""
    return arch.area or DEFAULT_AREA


def storage_area(arch: Arch) -> float:
    """Area of the PEs' RFs (and PE logic) plus the global buffer, in buffer-byte units."""
    a = area_of(arch)
    return arch.pes * (a["pe"] + arch.rf_bytes * a["rf_per_byte"]) + arch.glb_bytes * a["glb_per_byte"]


def with_rf(arch: Arch, rf_bytes: int, budget: float | None = None) -> Arch | None:
    """`arch` with `rf_bytes` of RF per PE and the buffer that fills the rest of `budget` (default: the
    spec's own area); None when the RFs alone overflow it. The buffer is rounded down to whole words."""
    a = area_of(arch)
    budget = storage_area(arch) if budget is None else budget
    left = budget - arch.pes * (a["pe"] + rf_bytes * a["rf_per_byte"])
    glb = int(left / a["glb_per_byte"]) // arch.word_bytes * arch.word_bytes
    if glb < arch.word_bytes:
        return None
    notes = [*arch.notes, f"equal area: {rf_bytes} B RF per PE, {glb / 1024:.4g} kB buffer"]
    return replace(
        arch,
        name=f"{arch.name}[rf={rf_bytes}B]",
        rf_bytes=rf_bytes,
        rf_partition_words=None,
        glb_bytes=glb,
        notes=notes,
    )


def allocations(arch: Arch, dataflow: str) -> list[Arch]:
    """Every RF/buffer split of the spec's area a dataflow is tried on (NLR: no RF, all buffer)."""
    sizes = (0,) if dataflow == "nlr" else RF_BYTES
    out = [a for a in (with_rf(arch, rf) for rf in sizes) if a is not None]
    if not out:
        raise FrugalError(f"{arch.name}: no RF/buffer split fits its area for {dataflow}")
    return out


def best_allocation(layers, arch: Arch, dataflow: str, analyze_fn, **kw):
    """(ModelResult, tried) for the split where `dataflow` spends least total energy on `layers`;
    `tried` lists each split's RF bytes, buffer bytes and total energy (None: no mapping fits)."""
    best, tried = None, []
    for spec in allocations(arch, dataflow):
        try:
            res = analyze_fn(layers, spec, dataflow, **kw)
        except FrugalError:
            tried.append({"rf_bytes": spec.rf_bytes, "glb_bytes": spec.glb_bytes, "total_energy": None})
            continue
        energy = res.total()["energy"]["total"]
        tried.append({"rf_bytes": spec.rf_bytes, "glb_bytes": spec.glb_bytes, "total_energy": energy})
        if best is None or energy < best.total()["energy"]["total"]:
            best = res
    if best is None:
        raise FrugalError(f"{arch.name}: no RF/buffer split of its area fits every layer under {dataflow}")
    return best, tried
