"""Sparse voxel tensors and convolutions over occupied voxels only, in plain PyTorch.

A `SparseTensor` holds features (M, C) of the M occupied voxels and their integer
coordinates (M, 4) = (batch, x, y, z) at a given stride. Convolution never builds the
dense grid: it finds the (input, output) voxel pairs that exist for every kernel offset
(a sorted hash + `searchsorted`), multiplies the gathered inputs by that offset's weight
(matmuls, which `FlopCounterMode` counts: MACs = pairs x C_in x C_out) and adds the
products into the outputs. That is the gather-matmul-scatter scheme of
MinkowskiEngine/torchsparse, without their CUDA kernels.

Two implementations give the same numbers:

- `conv_reference`: the plain scheme, one gather + matmul + `index_add_` per kernel offset
  (27 of each for a 3x3x3 kernel), kernel maps from 27 hash lookups. Kept for the tests and
  the benchmark (`benchmarks/bench_sparse_conv.py`).
- the default path: on a small CPU workload every tensor op costs microseconds of overhead,
  so the fast path cuts the number of ops per layer: all pairs of all offsets in one gather,
  sorted by offset so each offset's rows are a contiguous slice (a view), one matmul per
  offset on its slice, one scatter; the centre offset of a submanifold conv (every voxel
  with itself) is a plain matmul with no gather or scatter; gathers are `index_select`
  (several times faster than indexing with a tensor); kernel maps come from one gather
  from a dense table of the voxels' bounding box (`VoxelHash.lookup`) instead of a binary
  search per (voxel, offset). Stride-2 and transposed k=2 convs sort the fine voxels by
  their offset in the 2x2x2 cell the same way. Without autograd, products go straight
  into one buffer, and large maps add them into their outputs as a sparse 0/1 matrix
  product (`PairMap.add_into`; never while a FLOP counter watches). Only existing pairs
  are multiplied, so counted MACs are exactly those of the reference.

Kernel maps are built once per voxel set (stride) and forward pass and cached in
`SparseTensor.cache`, which every tensor of one forward pass shares (encoder, decoder and
point branch).

Why not a library: spconv 2.3.8 installs from PyPI with a toolchain (cumm, pccm,
ccimport, ninja, pybind11) and runs on CPU, where its convolutions are per-offset torch
matmuls that FlopCounterMode counts exactly; but two 16-channel submanifold convs,
kernel maps included, took 2.4 ms on the 2,048-point scene and 4.9 ms on a 10,589-point
one here, against 1.6 and 4.7 ms on the fast path (one thread, measured once).
torchsparse and MinkowskiEngine have no wheels for Python 3.11 on PyPI.

Weights are stored as (K, C_in, C_out); a layer can run with fewer channels than it was
built with (`cin`, `cout` slice the leading ones), which is how a supernet runs a subnet.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

_BITS = 20  # coordinates are offset by 2**19 and packed in 20 bits each (+ batch in the top bits)
_OFF = 1 << (_BITS - 1)


def pack(coords: torch.Tensor) -> torch.Tensor:
    """(M, 4) int (batch, x, y, z) -> (M,) int64 keys, order-preserving per field."""
    c = coords.long()
    return (c[:, 0] << (3 * _BITS)) | ((c[:, 1] + _OFF) << (2 * _BITS)) | ((c[:, 2] + _OFF) << _BITS) | (c[:, 3] + _OFF)


def unpack(keys: torch.Tensor) -> torch.Tensor:
    mask = (1 << _BITS) - 1
    return torch.stack(
        [
            keys >> (3 * _BITS),
            ((keys >> (2 * _BITS)) & mask) - _OFF,
            ((keys >> _BITS) & mask) - _OFF,
            (keys & mask) - _OFF,
        ],
        1,
    )


def unique_coords(coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct rows of (M, 4) coordinates (sorted) and each row's index among them.

    Through packed int64 keys: `torch.unique(dim=0)` compares rows one by one and is ~50x slower.
    """
    keys, inverse = torch.unique(pack(coords), return_inverse=True)
    return unpack(keys), inverse


def offset_keys(offs: torch.Tensor) -> torch.Tensor:
    """Key deltas of coordinate offsets (K, 3): pack(c + off) == pack(c) + delta while fields stay in range."""
    offs = offs.long()
    return (offs[:, 0] << (2 * _BITS)) + (offs[:, 1] << _BITS) + offs[:, 2]


class VoxelHash:
    """Lookup from coordinates to row index for one set of voxels.

    Two ways, the same answers: sorted packed keys + `searchsorted` (`find_keys`, `find`;
    what the reference path uses), and for `lookup` a dense table over the voxels' bounding
    box padded by the largest offset (one gather per query), used while that box holds at
    most `TABLE_CELLS_PER_VOXEL` cells per voxel (else `lookup` falls back to searchsorted).
    """

    TABLE_CELLS_PER_VOXEL = 256
    TABLE_MIN_CELLS = 1 << 16

    def __init__(self, coords: torch.Tensor):
        self.coords = coords
        self._sorted: tuple[torch.Tensor, torch.Tensor] | None = None
        self._tables: dict[int, tuple | None] = {}

    @property
    def keys(self) -> torch.Tensor:
        return self._sort()[0]

    @property
    def order(self) -> torch.Tensor:
        return self._sort()[1]

    def _sort(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._sorted is None:
            self._sorted = torch.sort(pack(self.coords))
        return self._sorted

    def find_keys(self, q: torch.Tensor) -> torch.Tensor:
        """Row index of each packed key in `q` (any shape), -1 where that voxel is not occupied."""
        if len(self.keys) == 0 or q.numel() == 0:
            return torch.full(q.shape, -1, dtype=torch.long)
        pos = torch.searchsorted(self.keys, q.reshape(-1)).clamp_(max=len(self.keys) - 1)
        hit = self.keys[pos] == q.reshape(-1)
        return torch.where(hit, self.order[pos], -1).reshape(q.shape)

    def find(self, coords: torch.Tensor) -> torch.Tensor:
        """Row index of each queried coordinate, -1 where that voxel is not occupied."""
        return self.find_keys(pack(coords))

    def _table(self, pad: int) -> tuple | None:
        """(table of rows, -1 where empty; lowest and highest corner; strides; each voxel's cell) over
        the bounding box padded by `pad`, or None when it would be too large."""
        if pad not in self._tables:
            c, t = self.coords, None
            if len(c):
                lo, hi = torch.aminmax(c, dim=0)
                lo[1:] -= pad
                hi[1:] += pad
                dims = (hi - lo + 1).tolist()
                if math.prod(dims) <= max(self.TABLE_MIN_CELLS, self.TABLE_CELLS_PER_VOXEL * len(c)):
                    strides = torch.tensor([dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1])
                    cells = ((c - lo) * strides).sum(1)
                    table = torch.full((math.prod(dims),), -1, dtype=torch.long)
                    table[cells] = torch.arange(len(c))
                    t = (table, lo, hi, strides, cells)
            self._tables[pad] = t
        return self._tables[pad]

    def lookup(self, base: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
        """(K, N) row of the voxel at `base[n] + offs[k]` (base (N, 4) coordinates, offs (K, 3)), -1 where none."""
        if len(self.coords) == 0 or len(base) == 0:
            return torch.full((len(offs), len(base)), -1, dtype=torch.long)
        pad = int(offs.abs().max()) if len(offs) else 0
        t = self._table(pad)
        if t is not None:
            table, lo, hi, strides, cells = t
            delta = (offs.long() * strides[1:]).sum(1)
            if base is self.coords:  # the table's own voxels: inside it by construction
                q = cells[None, :] + delta[:, None]
                return table.index_select(0, q.view(-1)).view(q.shape)
            zero = torch.zeros(1, dtype=torch.long)
            low, high = torch.cat([zero, offs.min(0).values]), torch.cat([zero, offs.max(0).values])
            b_lo, b_hi = torch.aminmax(base, dim=0)
            if bool(((b_lo + low >= lo) & (b_hi + high <= hi)).all()):
                q = ((base - lo) * strides).sum(1)[None, :] + delta[:, None]
                return table.index_select(0, q.view(-1)).view(q.shape)
        return self.find_keys(pack(base)[None, :] + offset_keys(offs)[:, None])


@dataclass
class SparseTensor:
    feats: torch.Tensor  # (M, C)
    coords: torch.Tensor  # (M, 4) int64: batch, x, y, z in units of `stride` voxels
    stride: int = 1
    # shared between all tensors of one forward pass: hashes, kernel maps, coarser coordinates
    cache: dict = field(default_factory=dict)

    def replace(self, feats: torch.Tensor) -> SparseTensor:
        return SparseTensor(feats, self.coords, self.stride, self.cache)

    def hash(self) -> VoxelHash:
        key = ("hash", self.stride)
        if key not in self.cache:
            self.cache[key] = VoxelHash(self.coords)
        return self.cache[key]


def offsets(kernel: int) -> torch.Tensor:
    """Kernel offsets in (dx, dy, dz) lexicographic order, matching the flattened dense kernel."""
    return _offsets(kernel).clone()


@functools.cache
def _offsets(kernel: int) -> torch.Tensor:
    r = range(-(kernel // 2), kernel - kernel // 2) if kernel % 2 else range(kernel)
    return torch.tensor(list(itertools.product(r, r, r)), dtype=torch.long)


def submanifold_map(x: SparseTensor, kernel: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For each offset: (input rows, output rows) with input = output + offset, both occupied.

    The reference path's kernel map: one hash lookup of every (voxel, offset) pair, then the
    pairs of each offset apart.
    """
    key = ("subm", x.stride, kernel)
    if key not in x.cache:
        # one batched lookup of every (voxel, offset) pair, through key arithmetic
        src = x.hash().find_keys(pack(x.coords)[None, :] + offset_keys(offsets(kernel))[:, None])
        pairs = []
        for row in src:
            dst = torch.nonzero(row >= 0).squeeze(1)
            pairs.append((row[dst], dst))
        x.cache[key] = pairs
    return x.cache[key]


def downsample(x: SparseTensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Coordinates at stride x2, each input's output row, and its offset index in the 2x2x2 cell."""
    key = ("down", x.stride)
    if key not in x.cache:
        half = torch.div(x.coords[:, 1:], 2, rounding_mode="floor")
        parent = torch.cat([x.coords[:, :1], half], 1)
        coarse, inverse = unique_coords(parent)
        rem = x.coords[:, 1:] - 2 * half  # 0 or 1 per axis
        which = rem[:, 0] * 4 + rem[:, 1] * 2 + rem[:, 2]
        x.cache[key] = (coarse, inverse, which)
    return x.cache[key]


CSR_MIN_PAIRS = 16384  # below that, building the matrix costs about what the convs at that stride save


@dataclass
class PairMap:
    """Every (input, output) pair of a convolution, sorted by kernel offset: offset `ks[i]` has the
    next `counts[i]` rows of `src`/`dst` (offsets without pairs are left out)."""

    src: torch.Tensor
    dst: torch.Tensor
    ks: list[int]
    counts: list[int]
    _sums: dict = field(default_factory=dict, repr=False)

    def add_into(self, out: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
        """`out.index_add_(0, dst, products)`: each product row added to its output row.

        Without autograd and with no dispatch mode watching (a FLOP counter), as a product with
        the 0/1 matrix (outputs x pairs) in compressed sparse rows, cached with the map: a
        few times faster than `index_add_` on a CPU. It holds additions only, no
        multiply-accumulates, and a counter always sees `index_add_`, so counted MACs stay the
        pairs x C_in x C_out of the matmuls.
        """
        if len(self.dst) < CSR_MIN_PAIRS or plain_ops_needed(products, out):
            return out.index_add_(0, self.dst, products)
        key = (products.dtype, len(out))
        if key not in self._sums:
            rows = torch.zeros(len(out) + 1, dtype=torch.long)
            rows[1:] = torch.bincount(self.dst, minlength=len(out)).cumsum(0)
            cols = torch.argsort(self.dst.int(), stable=True)  # (int32 sorts twice as fast)
            ones = torch.ones(len(cols), dtype=products.dtype)
            self._sums[key] = csr_matrix(rows, cols, ones, (len(out), len(cols)))
        return out.add_(self._sums[key] @ products)


def plain_ops_needed(*tensors: torch.Tensor) -> bool:
    """Whether to keep to plain ops (`index_add_`, elementwise products) rather than a sparse-matrix
    product: autograd needs them, or a dispatch mode (a FLOP counter) is watching."""
    return (
        torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    ) or torch._C._len_torch_dispatch_stack() > 0


def csr_matrix(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A sparse matrix in compressed sparse rows, only ever multiplied by a dense one."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(rows, cols, values, shape, check_invariants=False)


def neighbour_map(x: SparseTensor, kernel: int) -> tuple[PairMap, int]:
    """The submanifold kernel map without the centre offset (which pairs every voxel with itself),
    and the centre offset's index."""
    key = ("nbr", x.stride, kernel)
    if key not in x.cache:
        if kernel % 2 == 0:
            raise ValueError("a submanifold convolution needs an odd kernel")
        offs = _offsets(kernel)
        n_k, m = len(offs), len(x.coords)
        half = n_k // 2  # the centre offset (0, 0, 0)
        src = x.hash().lookup(x.coords, torch.cat([offs[:half], offs[half + 1 :]]))  # (K - 1, M)
        hit = src >= 0
        counts = hit.sum(1).tolist()
        flat = hit.view(-1).nonzero().squeeze(1)  # ordered by offset, then output row
        ks = [j if j < half else j + 1 for j in range(n_k - 1)]
        keep = [i for i, c in enumerate(counts) if c]
        pm = PairMap(
            src.view(-1).index_select(0, flat), flat % max(m, 1), [ks[i] for i in keep], [counts[i] for i in keep]
        )
        x.cache[key] = (pm, half)
    return x.cache[key]


def cell_map(x: SparseTensor) -> tuple[PairMap, torch.Tensor]:
    """The stride-2 kernel-2 map of `x` (src: fine rows, dst: coarse rows, sorted by offset in the
    2x2x2 cell) and the permutation that puts the fine rows back in order (for the transposed conv)."""
    key = ("cells", x.stride)
    if key not in x.cache:
        _, inverse, which = downsample(x)
        order = torch.argsort(which, stable=True)
        counts = torch.bincount(which, minlength=8).tolist()
        keep = [k for k in range(8) if counts[k]]
        pm = PairMap(order, inverse[order], keep, [counts[k] for k in keep])
        back = torch.empty_like(order)
        back[order] = torch.arange(len(order))  # the inverse permutation, without a second sort
        x.cache[key] = (pm, back)
    return x.cache[key]


def _products(feats: torch.Tensor, pm: PairMap, w: torch.Tensor) -> torch.Tensor:
    """feats[src] times each offset's weight, in pair order: one gather, one matmul per offset slice
    (written straight into one output when no gradient is needed, else concatenated)."""
    g = feats.index_select(0, pm.src)  # (much faster than feats[pm.src] on a CPU)
    parts = g.split(pm.counts)
    if len(parts) == 1:
        return parts[0] @ w[pm.ks[0]]
    if torch.is_grad_enabled() and (feats.requires_grad or w.requires_grad):
        return torch.cat([p @ w[k] for p, k in zip(parts, pm.ks)])
    out = g.new_empty(len(g), w.shape[2])
    for p, k, o in zip(parts, pm.ks, out.split(pm.counts)):
        torch.mm(p, w[k], out=o)
    return out


_PATHS = ("fast", "reference")
_path = ["fast"]


@contextmanager
def conv_path(name: str):
    """Run every `SparseConv3d` in the block on the `fast` path (the default) or the `reference` one
    (which also makes `devoxelize` look up its neighbours as it always has, with searchsorted)."""
    if name not in _PATHS:
        raise ValueError(f"unknown sparse convolution path '{name}' (known: {', '.join(_PATHS)})")
    _path.append(name)
    try:
        yield
    finally:
        _path.pop()


def reference_path() -> bool:
    """Whether the reference path is on (`conv_path("reference")`)."""
    return _path[-1] == "reference"


def _sliced(weight: torch.Tensor, cin: int | None, cout: int | None) -> torch.Tensor:
    return weight[:, : cin or weight.shape[1], : cout or weight.shape[2]]


def conv_reference(
    x: SparseTensor, w: torch.Tensor, kernel: int, stride: int, transposed: bool, target: SparseTensor | None = None
) -> SparseTensor:
    """The reference sparse convolution (weights `w` (K, C_in, C_out), already sliced): per kernel
    offset one gather, one matmul and one `index_add_`."""
    n_out = w.shape[2]
    if stride == 1:
        out = x.feats.new_zeros(len(x.coords), n_out)
        for k, (src, dst) in enumerate(submanifold_map(x, kernel)):
            if len(src):
                out.index_add_(0, dst, x.feats[src] @ w[k])
        return x.replace(out)
    if not transposed:
        coarse, inverse, which = downsample(x)
        out = x.feats.new_zeros(len(coarse), n_out)
        for k in range(8):
            sel = torch.nonzero(which == k).squeeze(1)
            if len(sel):
                out.index_add_(0, inverse[sel], x.feats[sel] @ w[k])
        return SparseTensor(out, coarse, x.stride * 2, x.cache)
    _, parent, which = downsample(target)
    out = x.feats.new_zeros(len(target.coords), n_out)
    for k in range(8):
        sel = torch.nonzero(which == k).squeeze(1)
        if len(sel):
            out.index_add_(0, sel, x.feats[parent[sel]] @ w[k])
    return target.replace(out)


def conv_fast(
    x: SparseTensor, w: torch.Tensor, kernel: int, stride: int, transposed: bool, target: SparseTensor | None = None
) -> SparseTensor:
    """The same convolution as `conv_reference` with a few ops per layer (see the module notes)."""
    n_out = w.shape[2]
    if stride == 1:
        pm, centre = neighbour_map(x, kernel)
        out = x.feats @ w[centre]
        if pm.counts:
            out = pm.add_into(out, _products(x.feats, pm, w))
        return x.replace(out)
    if not transposed:
        pm, _ = cell_map(x)
        coarse = downsample(x)[0]
        out = x.feats.new_zeros(len(coarse), n_out)
        if pm.counts:
            out = pm.add_into(out, _products(x.feats, pm, w))
        return SparseTensor(out, coarse, x.stride * 2, x.cache)
    pm, back = cell_map(target)
    if not pm.counts:
        return target.replace(x.feats.new_zeros(0, n_out))
    # each fine voxel meets its coarse parent at one offset: products in offset order, then back in row order
    return target.replace(_products(x.feats, PairMap(pm.dst, pm.src, pm.ks, pm.counts), w).index_select(0, back))


class SparseConv3d(nn.Module):
    """3D convolution on occupied voxels.

    - `stride=1` (submanifold, odd kernel): outputs at the input voxels.
    - `stride=2, kernel=2`: outputs at the occupied cells of the grid twice as coarse.
    - `transposed=True, stride=2, kernel=2`: back to the finer voxels `target` lists.
    """

    def __init__(
        self, cin: int, cout: int, kernel: int = 3, stride: int = 1, transposed: bool = False, bias: bool = False
    ):
        super().__init__()
        if stride == 2 and kernel != 2:
            raise ValueError("strided sparse convolution supports kernel 2 only")
        self.kernel, self.stride, self.transposed = kernel, stride, transposed
        k = kernel**3
        self.weight = nn.Parameter(torch.empty(k, cin, cout))
        nn.init.kaiming_uniform_(self.weight.view(k * cin, cout).T, a=math.sqrt(5))  # fan-in k * cin
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None

    def forward(self, x: SparseTensor, target: SparseTensor | None = None, cout: int | None = None) -> SparseTensor:
        w = _sliced(self.weight, x.feats.shape[1], cout)
        if self.transposed and (target is None or target.stride * 2 != x.stride):
            raise ValueError("transposed convolution needs the finer tensor it returns to")
        conv = conv_reference if reference_path() else conv_fast
        res = conv(x, w, self.kernel, self.stride, self.transposed, target)
        if self.bias is not None:
            res.feats = res.feats + self.bias[: w.shape[2]]
        return res

    def dense_weight(self) -> torch.Tensor:
        """The same kernel as a `conv3d` weight (C_out, C_in, k, k, k), for checks."""
        k = self.kernel
        return self.weight.detach().permute(2, 1, 0).reshape(self.weight.shape[2], self.weight.shape[1], k, k, k)
