"""Sparse voxel tensors and convolutions over occupied voxels only, in plain PyTorch.

A `SparseTensor` holds features (M, C) of the M occupied voxels and their integer
coordinates (M, 4) = (batch, x, y, z) at a given stride. Convolution never builds the
dense grid: for every kernel offset it finds the (input, output) voxel pairs that exist
(a sorted hash + `searchsorted`), multiplies the gathered inputs by that offset's weight
(one matmul, which `FlopCounterMode` counts: MACs = pairs x C_in x C_out) and adds the
products into the outputs (`index_add_`). That is the gather-matmul-scatter scheme of
MinkowskiEngine/torchsparse, without their CUDA kernels.

Why not a library: spconv 2.3.8 installs from PyPI and runs on CPU, but its convolutions
are opaque custom ops that FlopCounterMode cannot see (MACs would read 0) and it pulls in
a JIT toolchain (cumm, pccm, ccimport, ninja); torchsparse and MinkowskiEngine have no
wheels for Python 3.11 on PyPI.

Weights are stored as (K, C_in, C_out); a layer can run with fewer channels than it was
built with (`cin`, `cout` slice the leading ones), which is how a supernet runs a subnet.
"""

from __future__ import annotations

import itertools
import math
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
    """Lookup from coordinates to row index for one set of voxels (sorted keys + searchsorted)."""

    def __init__(self, coords: torch.Tensor):
        keys = pack(coords)
        self.keys, self.order = torch.sort(keys)

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
    r = range(-(kernel // 2), kernel - kernel // 2) if kernel % 2 else range(kernel)
    return torch.tensor(list(itertools.product(r, r, r)), dtype=torch.long)


def submanifold_map(x: SparseTensor, kernel: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For each offset: (input rows, output rows) with input = output + offset, both occupied."""
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


def _sliced(weight: torch.Tensor, cin: int | None, cout: int | None) -> torch.Tensor:
    return weight[:, : cin or weight.shape[1], : cout or weight.shape[2]]


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
        cin = x.feats.shape[1]
        w = _sliced(self.weight, cin, cout)
        n_out = w.shape[2]
        if self.stride == 1:
            out = x.feats.new_zeros(len(x.coords), n_out)
            for k, (src, dst) in enumerate(submanifold_map(x, self.kernel)):
                if len(src):
                    out.index_add_(0, dst, x.feats[src] @ w[k])
            res = x.replace(out)
        elif not self.transposed:
            coarse, inverse, which = downsample(x)
            out = x.feats.new_zeros(len(coarse), n_out)
            for k in range(8):
                sel = torch.nonzero(which == k).squeeze(1)
                if len(sel):
                    out.index_add_(0, inverse[sel], x.feats[sel] @ w[k])
            res = SparseTensor(out, coarse, x.stride * 2, x.cache)
        else:
            if target is None or target.stride * 2 != x.stride:
                raise ValueError("transposed convolution needs the finer tensor it returns to")
            _, parent, which = downsample(target)
            out = x.feats.new_zeros(len(target.coords), n_out)
            for k in range(8):
                sel = torch.nonzero(which == k).squeeze(1)
                if len(sel):
                    out.index_add_(0, sel, x.feats[parent[sel]] @ w[k])
            res = target.replace(out)
        if self.bias is not None:
            res.feats = res.feats + self.bias[:n_out]
        return res

    def dense_weight(self) -> torch.Tensor:
        """The same kernel as a `conv3d` weight (C_out, C_in, k, k, k), for checks."""
        k = self.kernel
        return self.weight.detach().permute(2, 1, 0).reshape(self.weight.shape[2], self.weight.shape[1], k, k, k)
