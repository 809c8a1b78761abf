"""Analytical access-count model of a spatial accelerator, vectorised over mappings.

Storage hierarchy, outer to inner: DRAM -> global buffer (GLB) -> PE array (spatial,
rows Y x columns X) -> register file (RF) in each PE -> MAC. A *mapping* splits every
loop dimension (N M C P Q R S G) into factors at five levels,

    total = dram x glb x spatial_y x spatial_x x rf     (ceil-divided: padding allowed)

and orders the temporal loops at the GLB and DRAM levels. What a tile costs follows the
reuse reasoning of Eyeriss (ISCA 2016, Sec. V): a tensor's tile at a level is refilled
once per iteration of the loops above it, except for the innermost run of loops that do
not index that tensor (it stays put - stationarity). Inputs also reuse the overlap of
sliding windows (halo) along the innermost loop that moves them, both across PEs
(diagonal multicast in row stationary) and in time.

Per tensor t (weights W, inputs I, outputs/partial sums O):

* held in the RF: each PE's RF tile is filled `reloads` times; each fill is one array
  delivery and one RF write; the GLB reads only the union of what all PEs need
  (multicast, and the sliding-window union for inputs); the RF is read once per MAC
  (partial sums: read and write).
* not held in the RF (the dataflow keeps it elsewhere): every MAC gets its operand over
  the array; the GLB reads the union across PEs once per cycle (with sliding-window
  forwarding between neighbouring PEs for inputs, as in ShiDianNao).
* partial sums: each refill of an output tile reads the old partial sum from the level
  above except the first time (zero init); each drain writes it back. Reduction across
  PEs (C, R, S on the array) happens in the array, not in the buffer.
* the GLB holds the tiles of all three tensors; DRAM is read once per GLB-tile fill. A
  tensor in the arch's `glb_bypass` (Eyeriss v1's weights) skips the GLB: DRAM gives
  what the array takes.

Energy = sum of accesses x the arch's energy per access at each level. The loop order
within a level is one of the 6 orders of the three dimension classes {N,P,Q} (do not
index W), {M} (do not index I), {C,R,S} (do not index O); G is always outermost.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

N, M, C, P, Q, R, S, G = range(8)
D = 8
W_, I_, O_ = 0, 1, 2
TENSOR_NAMES = ("weights", "inputs", "outputs")
RELEVANT = np.array(
    [
        [False, True, True, False, False, True, True, True],  # W: M C R S G
        [True, False, True, True, True, True, True, True],  # I: N C P Q R S G
        [True, True, False, True, True, False, False, True],  # O: N M P Q G
    ]
)
CLASSES = ([N, P, Q], [M], [C, R, S])
ORDERS = list(permutations(range(3)))  # inner -> outer order of the classes
SEQS = np.array([[d for k in perm for d in CLASSES[k]] + [G] for perm in ORDERS])  # (6, 8) inner -> outer


def order_name(i: int) -> str:
    """Inner-to-outer loop order of classes, e.g. 'npq<m<crs'."""
    return "<".join(["npq", "m", "crs"][k] for k in ORDERS[i])


def _span(p, r, u):
    """Input rows needed by p output rows of an r-tall filter at stride u."""
    return np.minimum((p - 1) * u + r, p * r)


def tile_size(t: int, e: np.ndarray, stride) -> np.ndarray:
    """Words of tensor t in a tile with loop extents e (K, 8)."""
    if t == W_:
        return e[:, M] * e[:, C] * e[:, R] * e[:, S] * e[:, G]
    if t == O_:
        return e[:, N] * e[:, M] * e[:, P] * e[:, Q] * e[:, G]
    return e[:, N] * e[:, C] * e[:, G] * _span(e[:, P], e[:, R], stride[0]) * _span(e[:, Q], e[:, S], stride[1])


def _halo(e, d, b, stride):
    """Growth of the input tile when the loop over dim d (bound b) sweeps it: union / one tile."""
    ratio = np.asarray(b, dtype=float).copy()
    for dim, pair, u, first in (
        (P, R, stride[0], True),
        (R, P, stride[0], False),
        (Q, S, stride[1], True),
        (S, Q, stride[1], False),
    ):
        sel = d == dim
        if not sel.any():
            continue
        ext, other = e[sel, dim], e[sel, pair]
        if first:
            grown, base = _span(ext * b[sel], other, u), _span(ext, other, u)
        else:
            grown, base = _span(other, ext * b[sel], u), _span(other, ext, u)
        ratio[sel] = grown / base
    return ratio


def reloads(t: int, e: np.ndarray, levels, stride, stationary=True) -> np.ndarray:
    """How many tile-fills the loops in `levels` (inner -> outer list of (factors, order)) cause."""
    k = e.shape[0]
    rows = np.arange(k)
    factor = np.ones(k)
    still = np.full(k, stationary)
    first_seen = np.zeros(k, bool)
    for fac, order in levels:
        seq = SEQS[order]
        for pos in range(D):
            d = seq[:, pos]
            b = fac[rows, d]
            nonunit = b > 1
            irrelevant = ~RELEVANT[t][d]
            hold = still & irrelevant & nonunit
            trigger = nonunit & ~hold
            first = trigger & ~first_seen
            mult = b.astype(float)
            if t == I_ and first.any():
                mult = np.where(first, _halo(e, d, b, stride), mult)
            factor = np.where(trigger, factor * mult, factor)
            first_seen |= trigger
            still &= ~trigger
    return factor


def evaluate(bounds, stride, arch, df, rf, sx, sy, glb, dram, glb_order, dram_order):
    """Access counts and energy of K mappings at once. Factor arrays are (K, 8) ints.

    Returns a dict of (K,) arrays: `energy`, `cycles`, per level `acc_<level>_<tensor>`
    and `en_<level>`. Capacity is checked by the caller (mapper).
    """
    k = rf.shape[0]
    sp = sx * sy
    npe = sp.prod(axis=1).astype(float)
    e_arr = rf * sp
    e_glb = e_arr * glb
    tot = e_glb * dram
    temporal = (rf * glb * dram).astype(float)
    cycles = temporal.prod(axis=1)
    macs = cycles * npe
    upper = [(glb, glb_order), (dram, dram_order)]
    out = {"cycles": cycles, "macs_padded": macs}
    en = arch.energy
    acc = {lv: np.zeros((3, k)) for lv in ("dram", "glb", "array", "rf")}
    for t in (W_, I_, O_):
        if df.keeps(t):
            per_pe = tile_size(t, rf, stride) * reloads(t, rf, upper, stride) * npe
            from_glb = tile_size(t, e_arr, stride) * reloads(t, e_arr, upper, stride)
            per_mac = 2 if t == O_ else 1
            acc["rf"][t] = per_mac * macs + per_pe * (2 if t == O_ else 1)
        else:
            per_pe = macs.copy()
            # no storage in the PE: a fresh operand every cycle, except sliding-window forwarding
            all_levels = [(rf, np.zeros(k, int)), *upper]
            from_glb = tile_size(t, sp, stride) * reloads(t, sp, all_levels, stride, stationary=False)
        fills = tile_size(t, e_glb, stride) * reloads(t, e_glb, [(dram, dram_order)], stride)
        if TENSOR_NAMES[t] in getattr(arch, "glb_bypass", ()):
            # straight from DRAM to the PEs (Eyeriss v1's weights): what the array takes, DRAM gives
            acc["array"][t] = per_pe
            acc["dram"][t] = from_glb
            continue
        if t == O_:
            total = tile_size(O_, tot, stride)
            psum_reads = np.maximum(from_glb - total, 0)
            acc["array"][t] = per_pe + psum_reads
            acc["glb"][t] = from_glb + psum_reads + fills + np.maximum(fills - total, 0)
            acc["dram"][t] = fills + np.maximum(fills - total, 0)
        else:
            acc["array"][t] = per_pe
            acc["glb"][t] = from_glb + fills
            acc["dram"][t] = fills
    energy = en["mac"] * macs
    out["en_mac"] = en["mac"] * macs
    for lv, a in acc.items():
        for t in range(3):
            out[f"acc_{lv}_{TENSOR_NAMES[t]}"] = a[t]
        out[f"en_{lv}"] = en[lv] * a.sum(axis=0)
        energy = energy + out[f"en_{lv}"]
    out["energy"] = energy
    return out


def glb_usage(e_glb, stride, arch=None) -> np.ndarray:
    """Words the GLB tile of extents `e_glb` holds (tensors the arch sends around the GLB excluded)."""
    skip = getattr(arch, "glb_bypass", ())
    return sum(tile_size(t, e_glb, stride) for t in range(3) if TENSOR_NAMES[t] not in skip)
