"""Mapping search: the cheapest legal tiling and loop order of one layer on one dataflow.

The space is every split of each loop bound over RF / array rows / array columns / GLB /
DRAM (ceil-divided, so a factor need not divide the bound) times 6 x 6 loop orders at the
GLB and DRAM levels. `search(..., exhaustive=True)` enumerates all of it (tiny layers
only). The default search prunes, in three steps, keeping the evaluation vectorised:

1. array: only *maximal* spatial splits (no factor can grow without overflowing the axis);
2. RF: only maximal RF tiles (no factor can grow without overflowing the RF); at most
   `limit` candidate factors per dimension; dims the RF does not index take 1, middle or
   all of what is left. Each (array, RF) pair is scored with everything else at the GLB
   level (an unbounded buffer) and the best `keep` go on;
3. GLB: maximal GLB tiles of those, every order pair, scored exactly; the best wins.

Tests check the pruned choice against the exhaustive optimum on small layers.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from frugalml.accel import model as mdl
from frugalml.accel.model import I_, O_, W_, D
from frugalml.errors import FrugalError

_NUM_ORDERS = len(mdl.ORDERS)


@lru_cache(maxsize=4096)
def candidates(b: int) -> tuple[int, ...]:
    """Every factor f that gives a distinct remainder ceil(b / f)."""
    vals = {1, b}
    k = 1
    while k <= b:
        vals.add(-(-b // k))
        k += 1 if k < 4096 else k // 64
    return tuple(sorted(vals))


@lru_cache(maxsize=4096)
def reduced(b: int, limit: int) -> tuple[int, ...]:
    """At most `limit` candidates, spread evenly on a log scale (1 and b always in)."""
    full = candidates(b)
    if len(full) <= limit:
        return full
    arr = np.array(full)
    picks = {1, b}
    for target in np.geomspace(1, b, limit):
        picks.add(int(arr[np.argmin(np.abs(np.log(arr) - np.log(target)))]))
    return tuple(sorted(picks))


def _ceil_div(a, b):
    return -(-a // b)


def _enumerate(dims, cands, fits, maximal, init=None) -> np.ndarray:
    """Factor vectors (K, 8) over `dims` (others as `init`, default 1) that fit; optionally only maximal ones.

    Breadth-first and vectorised: `fits` takes a (K, 8) array; usage must grow with every
    factor, so a partial vector that does not fit is dropped with all its extensions.
    """
    base = np.array(init if init is not None else [1] * D, dtype=np.int64)
    cur = base[None, :].copy()
    for d in dims:
        cs = np.array(cands[d], dtype=np.int64)
        nxt = np.repeat(cur, len(cs), axis=0)
        nxt[:, d] = np.tile(cs, len(cur))
        cur = nxt[fits(nxt)]
        if not len(cur):
            return cur
    if not maximal:
        return cur
    is_max = np.ones(len(cur), bool)
    for d in dims:
        cs = np.array(cands[d], dtype=np.int64)
        pos = np.searchsorted(cs, cur[:, d])
        has_next = pos + 1 < len(cs)
        grown = cur.copy()
        grown[:, d] = cs[np.minimum(pos + 1, len(cs) - 1)]
        is_max &= ~(has_next & fits(grown))
    return cur[is_max]


@dataclass
class Mapping:
    rf: tuple
    sx: tuple
    sy: tuple
    glb: tuple
    dram: tuple
    glb_order: int
    dram_order: int

    def to_dict(self) -> dict:
        names = "NMCPQRSG"

        def nz(v):
            return {names[d]: int(v[d]) for d in range(D) if v[d] > 1}

        return {
            "rf": nz(self.rf),
            "array_x": nz(self.sx),
            "array_y": nz(self.sy),
            "glb": nz(self.glb),
            "dram": nz(self.dram),
            "glb_order": mdl.order_name(self.glb_order),
            "dram_order": mdl.order_name(self.dram_order),
        }


def _rf_fits(arch, df, stride, scale=1.0):
    part = arch.rf_partition_words
    keeps = [t for t in (W_, I_, O_) if df.keeps(t)]
    caps = tuple(part[t] * scale for t in ("weights", "inputs", "outputs")) if part else None
    words = arch.rf_words * scale

    def fits(e):
        e = np.atleast_2d(np.asarray(e, dtype=np.int64))
        if caps:
            ok = np.ones(len(e), bool)
            for t in keeps:
                ok &= mdl.tile_size(t, e, stride) <= caps[t]
            return ok
        return sum((mdl.tile_size(t, e, stride) for t in keeps), np.zeros(len(e), np.int64)) <= words

    return fits


OBJECTIVES = ("energy", "delay", "edp", "dram")


def _score(out, objective):
    if objective == "dram":
        # fewest DRAM words (uncompressed), then least energy
        words = out["acc_dram_weights"] + out["acc_dram_inputs"] + out["acc_dram_outputs"]
        return words * (1 + 1e-18 * out["energy"])
    if objective == "energy":
        return out["energy"] * (1 + 1e-12 * out["cycles"])
    if objective == "delay":
        return out["cycles"] * (1 + 1e-12 * out["energy"])
    return out["energy"] * out["cycles"]


@dataclass
class _Search:
    """What every step of one search reads: the layer, the hardware, the objective, whether to prune."""

    layer: object
    arch: object
    df: object
    objective: str
    prune: bool

    @property
    def bounds(self) -> tuple:
        return self.layer.bounds

    @property
    def stride(self):
        return self.layer.stride

    def cands(self, rem, dims_limit=None) -> dict:
        """Candidate factors per dimension for remainders `rem`, at most `dims_limit` each when pruning."""
        if self.prune and dims_limit:
            return {d: reduced(rem[d], dims_limit) for d in range(D)}
        return {d: candidates(rem[d]) for d in range(D)}

    def no_fit(self, why: str) -> FrugalError:
        return FrugalError(f"layer {self.layer.name} cannot fit any {self.df.name} mapping on {self.arch.name}: {why}")


@dataclass
class _Tiles:
    """Candidate (RF tile, array columns, array rows) triples as arrays, and what each leaves above the array."""

    rf: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    rem: np.ndarray

    def take(self, idx) -> _Tiles:
        return _Tiles(self.rf[idx], self.sx[idx], self.sy[idx], self.rem[idx])


def search(
    layer,
    arch,
    df,
    objective="energy",
    exhaustive=False,
    limit=8,
    keep=32,
    max_tiles=1500,
    glb_limit=5,
    starts_n=8,
    max_arrays=128,
):
    """Best mapping of `layer` on `arch` under dataflow `df`: (Mapping, evaluation dict of scalars)."""
    if objective not in OBJECTIVES:
        raise FrugalError(f"unknown objective '{objective}' ({', '.join(OBJECTIVES)})")
    s = _Search(layer, arch, df, objective, prune=not exhaustive)
    inner, min_pes = _array_splits(s, max_arrays)
    tiles, glb_min = _fit_in_glb(s, _rf_tiles(s, inner, limit))
    if s.prune and len(tiles.rf) > keep:
        tiles = _keep_best(s, tiles, glb_min, keep)
    starts, evaluated = _best_glb_tiles(s, tiles, _glb_tiles(s, tiles, min(limit, glb_limit), max_tiles), starts_n)
    if s.prune:
        best, extra = _refine(layer, arch, df, np.array(starts, dtype=np.int64), objective, limit, min_pes)
    else:
        best, extra = starts[0], 0
    best = [int(v) for v in best]
    mapping = Mapping(*(tuple(best[i * D : (i + 1) * D]) for i in range(5)), best[5 * D], best[5 * D + 1])
    return mapping, evaluate_mapping(layer, arch, df, mapping), evaluated + extra


def _array_splits(s: _Search, max_arrays: int) -> tuple[list, float]:
    """Step 1, the array: (rows, columns) splits, rows first, then columns from what is left; and the PE floor."""
    rows_y, cols_x = s.arch.pe_array

    def axis_fits(size):
        return lambda e: e.prod(axis=1) <= size

    y_list = _enumerate(s.df.y_dims, s.cands(s.bounds), axis_fits(rows_y), s.prune)
    inner = []
    for sy in y_list.tolist():
        rem_y = tuple(_ceil_div(b, f) for b, f in zip(s.bounds, sy, strict=True))
        for sx in _enumerate(s.df.x_dims, s.cands(rem_y), axis_fits(cols_x), s.prune).tolist():
            inner.append((sy, sx))
    if not s.prune:
        return inner, 0
    # arrays left mostly idle are slow and rarely cheaper: keep splits that use >= 3/4 of the best
    used = [math.prod(y) * math.prod(x) for y, x in inner]
    ranked = sorted(zip(used, range(len(inner)), strict=True), reverse=True)
    min_pes = 0.75 * ranked[0][0]
    return [inner[i] for u, i in ranked if u >= min_pes][:max_arrays], min_pes


def _rf_tiles(s: _Search, inner: list, limit: int) -> list:
    """Step 2, the RF tile: (rf, sx, sy) for every array split, RF tiles shared by splits leaving the same rest."""
    df = s.df
    relevant = [d for d in df.rf_dims if any(df.keeps(t) and mdl.RELEVANT[t][d] for t in range(3))]
    free = [d for d in df.rf_dims if d not in relevant]
    dims = [d for d in relevant if d not in df.rf_full]
    pairs = []
    rf_cache: dict[tuple, list] = {}
    for sy, sx in inner:
        rem = tuple(_ceil_div(b, y * x) for b, y, x in zip(s.bounds, sy, sx, strict=True))
        if any(rem[d] != s.bounds[d] for d in df.rf_full):
            continue
        if rem not in rf_cache:
            rf_cache[rem] = _rf_tiles_for(s, rem, limit, dims, free)
        pairs.extend((rf, sx, sy) for rf in rf_cache[rem])
    if not pairs:
        raise s.no_fit(
            f"the register file ({s.arch.rf_words} words) is too small for its smallest tile "
            f"(R x S = {s.layer.R} x {s.layer.S})"
        )
    return pairs


def _rf_tiles_for(s: _Search, rem: tuple, limit: int, dims: list, free: list) -> list:
    """RF tiles for what is left inside one PE: maximal over `dims`, then each choice for the `free` dims."""
    cands = s.cands(rem, limit)
    base = [1] * D
    for d in s.df.rf_full:
        base[d] = rem[d]
    tiles = []
    if _rf_fits(s.arch, s.df, s.stride)(base)[0]:
        # maximal tiles at full, 1/4 and 1/16 of the RF, and the minimal one: a smaller RF tile can leave the
        # buffer room that matters more
        for scale in (1.0, 0.25, 0.0625) if s.prune else (1.0,):
            f = _rf_fits(s.arch, s.df, s.stride, scale)
            if f(base)[0]:
                tiles += [t for t in _enumerate(dims, cands, f, s.prune, init=base).tolist() if t not in tiles]
        if s.prune and base not in tiles:
            tiles.append(list(base))  # and the smallest tile
    # dims the RF tile does not index: none or all of what is left inside the PE
    if s.prune:
        extras = set(itertools.product(*[sorted({1, rem[d]}) for d in free]))
    else:
        extras = set(itertools.product(*[cands[d] for d in free]))
    rfs = []
    for t in tiles:
        for extra in sorted(extras):
            rf = list(t)
            for d, f in zip(free, extra, strict=True):
                rf[d] = f
            rfs.append(rf)
    return rfs


def _fit_in_glb(s: _Search, pairs: list) -> tuple[_Tiles, np.ndarray]:
    """The triples whose smallest buffer tile fits the GLB, and the words that tile needs."""
    rf_a = np.array([p[0] for p in pairs], dtype=np.int64)
    sx_a = np.array([p[1] for p in pairs], dtype=np.int64)
    sy_a = np.array([p[2] for p in pairs], dtype=np.int64)
    rem_a = -(-np.array(s.bounds, dtype=np.int64) // (rf_a * sx_a * sy_a))
    glb_min = mdl.glb_usage(rf_a * sx_a * sy_a, s.stride, s.arch)
    ok = glb_min <= s.arch.glb_words
    if not ok.any():
        raise s.no_fit(
            f"its smallest buffer tile needs {int(glb_min.min())} words, the global buffer holds {s.arch.glb_words}"
        )
    return _Tiles(rf_a, sx_a, sy_a, rem_a).take(ok), glb_min[ok]


def _keep_best(s: _Search, tiles: _Tiles, glb_min: np.ndarray, keep: int) -> _Tiles:
    """Score each (array, RF) pair with an unbounded buffer, keep the best `keep`."""
    k = len(tiles.rf)
    rep = np.repeat
    n = _NUM_ORDERS
    out = mdl.evaluate(
        s.bounds,
        s.stride,
        s.arch,
        s.df,
        rep(tiles.rf, n, 0),
        rep(tiles.sx, n, 0),
        rep(tiles.sy, n, 0),
        rep(tiles.rem, n, 0),
        np.ones((k * n, D), np.int64),
        np.tile(np.arange(n), k),
        np.zeros(k * n, np.int64),
    )
    best = _score(out, s.objective).reshape(k, _NUM_ORDERS).min(axis=1)
    # half the places go to the best overall, half to the best that leave most of the buffer free
    top = list(np.argsort(best, kind="stable")[: keep // 2])
    roomy = np.flatnonzero(glb_min <= s.arch.glb_words / 8)
    for j in roomy[np.argsort(best[roomy], kind="stable")]:
        if len(top) >= keep:
            break
        if j not in top:
            top.append(j)
    for j in np.argsort(best, kind="stable"):
        if len(top) >= keep:
            break
        if j not in top:
            top.append(j)
    return tiles.take(np.array(top))


def _glb_tiles(s: _Search, tiles: _Tiles, glb_limit: int, max_tiles: int) -> list:
    """Step 3: (triple index, GLB tile) rows, fewer candidates per dim while there are too many rows."""
    while True:
        rows = []
        for i in range(len(tiles.rf)):
            e_arr_i = tiles.rf[i] * tiles.sx[i] * tiles.sy[i]
            rem = tiles.rem[i].tolist()
            cands = s.cands(rem, glb_limit)

            def glb_fits(g, _e=e_arr_i):
                return mdl.glb_usage(g * _e, s.stride, s.arch) <= s.arch.glb_words

            for g in _enumerate([d for d in range(D) if rem[d] > 1], cands, glb_fits, s.prune).tolist():
                rows.append((i, g))
        if not s.prune or len(rows) <= max_tiles or glb_limit <= 3:
            return rows
        glb_limit -= 1


def _best_glb_tiles(s: _Search, tiles: _Tiles, rows: list, starts_n: int) -> tuple[list, int]:
    """Score every GLB tile with both loop orders: the best (the best `starts_n` when pruning) and the count."""
    idx = np.array([r[0] for r in rows])
    glb_a = np.array([r[1] for r in rows], dtype=np.int64)
    dram_a = -(-tiles.rem[idx] // glb_a)
    n_orders = _NUM_ORDERS * _NUM_ORDERS
    k = len(rows)
    go = np.tile(np.repeat(np.arange(_NUM_ORDERS), _NUM_ORDERS), k)
    do = np.tile(np.tile(np.arange(_NUM_ORDERS), _NUM_ORDERS), k)
    rep = np.repeat
    out = mdl.evaluate(
        s.bounds,
        s.stride,
        s.arch,
        s.df,
        rep(tiles.rf[idx], n_orders, 0),
        rep(tiles.sx[idx], n_orders, 0),
        rep(tiles.sy[idx], n_orders, 0),
        rep(glb_a, n_orders, 0),
        rep(dram_a, n_orders, 0),
        go,
        do,
    )
    score = _score(out, s.objective)
    starts = []
    for j in np.argsort(score, kind="stable")[: starts_n if s.prune else 1].tolist():
        r = j // n_orders
        i = idx[r]
        starts.append(np.concatenate([tiles.rf[i], tiles.sx[i], tiles.sy[i], glb_a[r], dram_a[r], [go[j], do[j]]]))
    return starts, k * n_orders


def _split(m: np.ndarray):
    return [m[:, i * D : (i + 1) * D] for i in range(5)] + [m[:, 5 * D], m[:, 5 * D + 1]]


def _refine(layer, arch, df, starts, objective, limit, min_pes=0, max_steps=30):
    """Hill-climb from each start: re-split one dimension over all five levels, or change the
    loop orders, while that lowers the score (using at least `min_pes` PEs, as step 1 does).
    Catches what the pruning steps left out."""
    bounds, stride = layer.bounds, layer.stride
    rows_y, cols_x = arch.pe_array
    fits_rf = _rf_fits(arch, df, stride)
    orders = np.array([(g, d) for g in range(_NUM_ORDERS) for d in range(_NUM_ORDERS)], dtype=np.int64)

    def opts(b):
        return reduced(b, max(limit, 12))

    splits = {}
    for d in range(D):
        b = bounds[d]
        out = []
        rf_opts = (b,) if d in df.rf_full else (opts(b) if d in df.rf_dims else (1,))
        for f_rf in rf_opts:
            r1 = _ceil_div(b, f_rf)
            for f_y in opts(r1) if d in df.y_dims else (1,):
                r2 = _ceil_div(r1, f_y)
                for f_x in opts(r2) if d in df.x_dims else (1,):
                    r3 = _ceil_div(r2, f_x)
                    for f_g in opts(r3):
                        out.append((f_rf, f_x, f_y, f_g, _ceil_div(r3, f_g)))
        splits[d] = np.array(out, dtype=np.int64)
    total = 0
    best_rows, best_scores = [], []
    for start in starts:
        cur = start.copy()
        cur_score = None
        for _ in range(max_steps):
            cands = [np.repeat(cur[None, :], len(orders), 0)]
            cands[0][:, 5 * D :] = orders
            for d in range(D):
                if bounds[d] == 1:
                    continue
                sp = splits[d]
                nb = np.repeat(cur[None, :], len(sp), 0)
                for lv in range(5):
                    nb[:, lv * D + d] = sp[:, lv]
                cands.append(nb)
            cand = np.concatenate(cands)
            rf, sx, sy, glb, dram, go, do = _split(cand)
            ok = (sx.prod(1) <= cols_x) & (sy.prod(1) <= rows_y) & fits_rf(rf)
            ok &= (sx * sy).prod(1) >= min_pes
            ok &= mdl.glb_usage(rf * sx * sy * glb, stride, arch) <= arch.glb_words
            cand = cand[ok]
            rf, sx, sy, glb, dram, go, do = _split(cand)
            out = mdl.evaluate(bounds, stride, arch, df, rf, sx, sy, glb, dram, go, do)
            total += len(cand)
            sc = _score(out, objective)
            j = int(np.argmin(sc))
            if cur_score is not None and sc[j] >= cur_score * (1 - 1e-12):
                break
            cur, cur_score = cand[j].copy(), float(sc[j])
        best_rows.append(cur)
        best_scores.append(cur_score)
    return best_rows[int(np.argmin(best_scores))], total


def evaluate_mapping(layer, arch, df, mapping: Mapping) -> dict:
    """Scalars of `model.evaluate` for one mapping."""

    def a(v):
        return np.array([v], dtype=np.int64)

    out = mdl.evaluate(
        layer.bounds,
        layer.stride,
        arch,
        df,
        a(mapping.rf),
        a(mapping.sx),
        a(mapping.sy),
        a(mapping.glb),
        a(mapping.dram),
        np.array([mapping.glb_order]),
        np.array([mapping.dram_order]),
    )
    return {key: float(v[0]) for key, v in out.items()}
