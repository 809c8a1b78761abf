"""Point-voxel networks (SPVCNN-style) and the voxel-only baseline (MinkowskiNet-style).

One class, `PVNet`, covers both and every subnet of the search space:

- voxel branch: a sparse 3D U-Net (stem, 3 encoder stages that halve the resolution, 3
  decoder stages that restore it with skip connections) on the occupied voxels only;
- point branch (`point_branch=True`): per-point MLPs at full point resolution (starting from
  the raw features and each point's offset inside its voxel), fused with
  the voxel branch three times (devoxelise by trilinear interpolation + MLP, then
  voxelise back by averaging), so a coarse voxel grid can still label small objects;
- voxel-only (`point_branch=False`): each point takes the label of its voxel.

A `PVNet` built with the largest channels/depths is a supernet: `set_active(arch)` makes
it run any smaller `Arch` (leading channels of each weight, first blocks of each stage,
any voxel size), and `extract(arch)` returns that subnet as a standalone `PVNet`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from frugalml.errors import FrugalError
from frugalml.models.elastic import ElasticBatchNorm, ElasticLinear
from frugalml.pointcloud.sparse import (
    SparseConv3d,
    SparseTensor,
    downsample,
    offset_keys,
    pack,
    reference_path,
    unique_coords,
)

# channel slots: stem, enc1, enc2, enc3, dec1, dec2, dec3; depth slots: enc1..3, dec1..3
N_CHANNELS, N_DEPTHS = 7, 6


@dataclass(frozen=True)
class Arch:
    channels: tuple[int, ...] = (32, 32, 64, 128, 64, 48, 32)
    depths: tuple[int, ...] = (1, 1, 1, 1, 1, 1)
    voxel_size: float = 0.2  # metres, at stride 1
    point_branch: bool = True

    def validate(self) -> Arch:
        if len(self.channels) != N_CHANNELS or len(self.depths) != N_DEPTHS:
            raise FrugalError(
                f"an architecture needs {N_CHANNELS} channel and {N_DEPTHS} depth entries, got "
                f"{len(self.channels)} and {len(self.depths)}"
            )
        if min(self.channels) < 1 or min(self.depths) < 0 or not self.voxel_size > 0:
            raise FrugalError(f"channels must be >= 1, depths >= 0, voxel size > 0: {self}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Arch:
        try:
            return cls(
                tuple(d["channels"]), tuple(d["depths"]), float(d["voxel_size"]), bool(d.get("point_branch", True))
            ).validate()
        except (KeyError, TypeError, ValueError) as e:
            raise FrugalError(f"malformed architecture {d}: {e}") from None

    def scaled(self, width: float) -> Arch:
        return replace(self, channels=tuple(max(4, int(round(c * width))) for c in self.channels))


def minkunet(width: float = 1.0, voxel_size: float = 0.2, depth: int = 1) -> Arch:
    """The voxel-only baseline (MinkowskiNet-like U-Net) at a given width and resolution."""
    return Arch(depths=(depth,) * N_DEPTHS, voxel_size=voxel_size, point_branch=False).scaled(width)


def spvcnn(width: float = 1.0, voxel_size: float = 0.2, depth: int = 1) -> Arch:
    """The hand-scaled point-voxel family (SPVCNN-like)."""
    return Arch(depths=(depth,) * N_DEPTHS, voxel_size=voxel_size, point_branch=True).scaled(width)


class ConvBNReLU(nn.Module):
    def __init__(self, cin, cout, kernel=3, stride=1, transposed=False):
        super().__init__()
        self.conv = SparseConv3d(cin, cout, kernel, stride, transposed)
        self.bn = ElasticBatchNorm(cout)

    def forward(self, x: SparseTensor, cout: int, target: SparseTensor | None = None) -> SparseTensor:
        y = self.conv(x, target=target, cout=cout)
        return y.replace(F.relu(self.bn(y.feats)))


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = SparseConv3d(c, c)
        self.bn1 = ElasticBatchNorm(c)
        self.conv2 = SparseConv3d(c, c)
        self.bn2 = ElasticBatchNorm(c)

    def forward(self, x: SparseTensor) -> SparseTensor:
        c = x.feats.shape[1]
        y = F.relu(self.bn1(self.conv1(x, cout=c).feats))
        y = self.bn2(self.conv2(x.replace(y), cout=c).feats)
        return x.replace(F.relu(x.feats + y))


class FuseUp(nn.Module):
    """Concatenate the upsampled tensor with the skip and convolve (as two summed convs, so each part can shrink)."""

    def __init__(self, c_up, c_skip, cout):
        super().__init__()
        self.a = SparseConv3d(c_up, cout)
        self.b = SparseConv3d(c_skip, cout)
        self.bn = ElasticBatchNorm(cout)

    def forward(self, up: SparseTensor, skip: SparseTensor, cout: int) -> SparseTensor:
        y = self.a(up, cout=cout).feats + self.b(skip, cout=cout).feats
        return skip.replace(F.relu(self.bn(y)))


class PointMLP(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.fc = ElasticLinear(cin, cout, bias=False)
        self.bn = ElasticBatchNorm(cout)

    def forward(self, z: torch.Tensor, cout: int) -> torch.Tensor:
        return F.relu(self.bn(self.fc(z, cout)))


_CORNERS = torch.tensor([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)])


def devoxelize(x: SparseTensor, xyz: torch.Tensor, batch: torch.Tensor, voxel_size: float) -> torch.Tensor:
    """Features at points by trilinear interpolation between the 8 nearest voxel centres.

    Missing (unoccupied) neighbours get weight 0 and the rest are renormalised; the voxel
    that contains the point is always among the 8 and always occupied. Neighbour rows and
    weights depend only on the voxel set, so they are cached with it (and reused by every
    devoxelisation at the same stride in one forward pass). The fast path (the default)
    looks the neighbours up in the hash's dense table, builds the 8 weights as products of
    per-axis factors and sums the 8 weighted rows one corner at a time (a working set that
    stays in cache); `conv_path("reference")` runs it as it always ran.
    """
    if reference_path():
        return _devoxelize_reference(x, xyz, batch, voxel_size)
    key = ("devox", x.stride)
    if key not in x.cache:
        p = xyz / (voxel_size * x.stride) - 0.5  # voxel centres at integer positions
        base = torch.floor(p)
        hi = (p - base).T.contiguous()  # (3, P): weight of the upper corner along each axis
        f = torch.stack([1 - hi, hi])  # (2, 3, P)
        # (cx, cy, cz) -> cx * 4 + cy * 2 + cz, the order of _CORNERS
        w = (f[:, None, None, 0] * f[None, :, None, 1] * f[None, None, :, 2]).reshape(8, -1)
        idx = x.hash().lookup(torch.cat([batch[:, None].long(), base.long()], 1), _CORNERS)  # (8, P)
        w = w * (idx >= 0)
        w = w / w.sum(0, keepdim=True).clamp(min=1e-12)
        x.cache[key] = (idx.clamp(min=0), w.unsqueeze(-1))
    idx, w = x.cache[key]
    out = x.feats.index_select(0, idx[0]) * w[0]
    for j in range(1, 8):
        out = out.addcmul_(x.feats.index_select(0, idx[j]), w[j])
    return out


def _devoxelize_reference(x: SparseTensor, xyz: torch.Tensor, batch: torch.Tensor, voxel_size: float) -> torch.Tensor:
    """`devoxelize` as it always ran: 8 searchsorted lookups per point, one (8, P, C) gather."""
    key = ("devox-reference", x.stride)
    if key not in x.cache:
        size = voxel_size * x.stride
        p = xyz / size - 0.5
        base = torch.floor(p)
        frac = p - base
        keys = pack(torch.cat([batch[:, None].long(), base.long()], 1))
        idx = x.hash().find_keys(keys[None, :] + offset_keys(_CORNERS)[:, None])  # (8, P)
        w = torch.where(_CORNERS.bool()[:, None, :], frac[None], 1 - frac[None]).prod(-1) * (idx >= 0)
        w = w / w.sum(0, keepdim=True).clamp(min=1e-12)
        x.cache[key] = (idx.clamp(min=0), w.unsqueeze(-1))
    idx, w = x.cache[key]
    return (x.feats[idx] * w).sum(0)


def voxelize(z: torch.Tensor, rows: torch.Tensor, n_voxels: int) -> torch.Tensor:
    """Mean of the point features falling in each voxel (`rows`: each point's voxel row)."""
    s = z.new_zeros(n_voxels, z.shape[1]).index_add_(0, rows, z)
    n = z.new_zeros(n_voxels).index_add_(0, rows, torch.ones_like(rows, dtype=z.dtype))
    return s / n.clamp(min=1)[:, None]


class PVNet(nn.Module):
    """Point-voxel (or voxel-only) segmentation network; input (B, N, 4) -> logits (B, N, classes)."""

    def __init__(self, arch: Arch = Arch(), num_classes: int = 9, in_channels: int = 4):
        super().__init__()
        arch = arch.validate()
        self.arch, self.num_classes, self.in_channels = arch, num_classes, in_channels
        self.active = arch
        c, d = arch.channels, arch.depths
        self.stem = nn.ModuleList([ConvBNReLU(in_channels, c[0]), ConvBNReLU(c[0], c[0])])
        self.down = nn.ModuleList([ConvBNReLU(c[i], c[i + 1], kernel=2, stride=2) for i in range(3)])
        self.enc = nn.ModuleList([nn.ModuleList([ResBlock(c[i + 1]) for _ in range(d[i])]) for i in range(3)])
        ups_in = [c[3], c[4], c[5]]
        skips = [c[2], c[1], c[0]]
        self.up = nn.ModuleList(
            [ConvBNReLU(ups_in[j], c[4 + j], kernel=2, stride=2, transposed=True) for j in range(3)]
        )
        self.fuse = nn.ModuleList([FuseUp(c[4 + j], skips[j], c[4 + j]) for j in range(3)])
        self.dec = nn.ModuleList([nn.ModuleList([ResBlock(c[4 + j]) for _ in range(d[3 + j])]) for j in range(3)])
        if arch.point_branch:
            # point stem on the raw features plus each point's offset inside its voxel: detail below voxel size
            self.point_stem = PointMLP(in_channels + 3, c[0])
            self.point = nn.ModuleList([PointMLP(c[0], c[3]), PointMLP(c[3], c[5]), PointMLP(c[5], c[6])])
        self.classifier = ElasticLinear(c[6], num_classes, zero_bias=True)

    # --- supernet interface -------------------------------------------------------------------
    def set_active(self, arch: Arch) -> PVNet:
        arch = arch.validate()
        big = self.arch
        if any(a > b for a, b in zip(arch.channels, big.channels)) or any(
            a > b for a, b in zip(arch.depths, big.depths)
        ):
            raise FrugalError(f"{arch} does not fit in this network ({big})")
        if arch.point_branch and not big.point_branch:
            raise FrugalError("this network has no point branch")
        self.active = arch
        return self

    def extract(self, arch: Arch) -> PVNet:
        """The subnet `arch` as a standalone network holding copies of the shared weights."""
        self.set_active(arch)
        sub = PVNet(arch, self.num_classes, self.in_channels)
        own = self.state_dict()
        new = {}
        for k, v in sub.state_dict().items():
            src = own[k]
            new[k] = src[tuple(slice(0, n) for n in v.shape)].clone() if v.dim() else src.clone()
        sub.load_state_dict(new)
        return sub

    # --- forward --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_channels:
            raise FrugalError(f"expected points of shape (batch, points, {self.in_channels}), got {list(x.shape)}")
        b, n, _ = x.shape
        batch = torch.arange(b).repeat_interleave(n)
        return self.forward_points(x.reshape(b * n, -1), batch).reshape(b, n, -1)

    def forward_points(self, pts: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """Logits (P, classes) for a flat list of points (P, 4) with each point's scene index."""
        a = self.active
        c, d, v = a.channels, a.depths, a.voxel_size
        xyz = pts[:, :3]
        if len(pts) == 0:
            return pts.new_zeros(0, self.num_classes)
        grid = torch.floor(xyz / v).long()
        coords, p2v = unique_coords(torch.cat([batch[:, None].long(), grid], 1))
        feats = torch.cat([xyz * 0.1, pts[:, 3:]], 1)  # metres / 10 keeps the input near unit scale
        x0 = SparseTensor(voxelize(feats, p2v, len(coords)), coords, 1, {})
        for layer in self.stem:
            x0 = layer(x0, c[0])
        skips, h = [x0], x0
        for i in range(3):
            h = self.down[i](h, c[i + 1])
            for blk in self.enc[i][: d[i]]:
                h = blk(h)
            skips.append(h)
        # each point's voxel row at strides 1, 2, 4, 8
        rows = [p2v]
        for s in skips[:-1]:
            rows.append(downsample(s)[1][rows[-1]])

        if a.point_branch:
            offset = xyz / v - grid - 0.5  # in [-0.5, 0.5) per axis
            z = devoxelize(x0, xyz, batch, v) + self.point_stem(torch.cat([feats, offset], 1), c[0])
            z = devoxelize(h, xyz, batch, v) + self.point[0](z, c[3])
            h = h.replace(voxelize(z, rows[3], len(h.coords)))
        for j in range(3):
            target = skips[2 - j]
            h = self.up[j](h, c[4 + j], target=target)
            h = self.fuse[j](h, target, c[4 + j])
            for blk in self.dec[j][: d[3 + j]]:
                h = blk(h)
            if a.point_branch and j == 1:
                z = devoxelize(h, xyz, batch, v) + self.point[1](z, c[5])
                h = h.replace(voxelize(z, rows[1], len(h.coords)))
        if a.point_branch:
            z = devoxelize(h, xyz, batch, v) + self.point[2](z, c[6])
            return self.classifier(z)
        return self.classifier(h.feats)[p2v]
