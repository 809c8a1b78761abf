"""The `pointvoxel` search space (SPVNAS-style, a `frugalml.models.space.SearchSpace`), on ray-cast LiDAR scenes.

Genes: voxel size at stride 1 (`voxel`), channels of each of the seven U-Net stages
(`c0` stem, `c1..c3` encoder, `c4..c6` decoder; fractions of the supernet's widths) and
the number of residual blocks of each encoder/decoder stage (`d1..d6`). The point branch
is always on: that is what lets a coarse voxel grid keep small objects.

    frugal nas train --space pointvoxel
    frugal nas search --run RUN --latency-ms ...

MACs are counted by `frugalml.cost.profile` on a fixed example scene (sparse convolution
cost depends on the occupied voxels, so on the scene itself); latency is measured on it.
`pointvoxel` takes a 2,048-point sample of that scene (the training input); `pointvoxel-scan`
is the same space (genes, data, supernet) costed on the whole scan (10,589 points), the input
a deployed network sees, where gathers and kernel-map lookups weigh more than at 2k points.
"""

from __future__ import annotations

import torch

from frugalml.models.elastic import ElasticBatchNorm
from frugalml.models.space import SearchSpace, register
from frugalml.pointcloud.model import N_CHANNELS, N_DEPTHS, Arch, PVNet
from frugalml.pointcloud.train import class_weights, score, segmentation_loss

EXAMPLE_SCENE = 10_000_019  # seed of the scene MACs and latency are taken on (10,589 points)
MAX_CHANNELS = (16, 16, 32, 64, 32, 24, 16)  # spvcnn(width=0.5)
FRACTIONS = (0.5, 0.75, 1.0)


def channel_choices(c_max: int) -> tuple[int, ...]:
    return tuple(sorted({max(4, int(round(c_max * f))) for f in FRACTIONS}))


def arch_from_genes(genes: dict) -> Arch:
    return Arch(
        channels=tuple(int(genes[f"c{i}"]) for i in range(N_CHANNELS)),
        depths=tuple(int(genes[f"d{i + 1}"]) for i in range(N_DEPTHS)),
        voxel_size=float(genes["voxel"]),
        point_branch=True,
    )


@register("pointvoxel")
class PointVoxelSpace(SearchSpace):
    # points of the example scene that MACs and latency are taken on: None = `points` (a sample), 0 = all
    example_points: int | None = None

    def __init__(
        self,
        voxels=(0.3, 0.4, 0.5),
        depths=(0, 1),
        max_channels=MAX_CHANNELS,
        scenes_train: int = 48,
        scenes_val: int = 8,
        scenes_test: int = 16,
        points: int = 2048,
        seed: int = 0,
    ):
        self.voxels = tuple(sorted(voxels, reverse=True))  # small (cheap) to large (costly): coarse to fine
        self.depths = tuple(sorted(depths))
        self.max_channels = tuple(max_channels)
        self.num_classes = 9
        self.config = {
            "voxels": list(self.voxels),
            "depths": list(self.depths),
            "max_channels": list(max_channels),
            "scenes_train": scenes_train,
            "scenes_val": scenes_val,
            "scenes_test": scenes_test,
            "points": points,
            "seed": seed,
        }
        genes = {"voxel": self.voxels}
        genes |= {f"c{i}": channel_choices(c) for i, c in enumerate(self.max_channels)}
        genes |= {f"d{i + 1}": self.depths for i in range(N_DEPTHS)}
        self.genes = genes
        self._weight = None
        self._example = None

    def features(self, arch: dict) -> list[float]:
        # voxel count grows roughly like 1/voxel^2 on surfaces, so that is the predictor's resolution feature
        f = [(min(self.voxels) / arch["voxel"]) ** 2]
        f += [arch[f"c{i}"] / max(self.genes[f"c{i}"]) for i in range(N_CHANNELS)]
        f += [arch[f"d{i + 1}"] / max(self.depths) if max(self.depths) else 0.0 for i in range(N_DEPTHS)]
        return f

    # ---- networks ---------------------------------------------------------------------
    def largest_arch(self) -> Arch:
        return Arch(self.max_channels, (max(self.depths),) * N_DEPTHS, min(self.voxels), True)

    def build_supernet(self, seed: int = 0) -> PVNet:
        torch.manual_seed(seed)
        return PVNet(self.largest_arch(), self.num_classes)

    def set_active(self, supernet: PVNet, arch: dict) -> None:
        supernet.set_active(arch_from_genes(arch))

    def extract(self, supernet: PVNet, arch: dict) -> PVNet:
        self.validate(arch)
        sub = supernet.extract(arch_from_genes(arch))
        supernet.set_active(supernet.arch)
        return sub.eval()

    def build_subnet(self, arch: dict, seed: int = 0) -> PVNet:
        self.validate(arch)
        torch.manual_seed(seed)
        return PVNet(arch_from_genes(arch), self.num_classes)

    def example_input(self, arch: dict | None = None) -> torch.Tensor:
        """One generated scene (1, points, 4), the same for every architecture (`example_points` of it)."""
        if self._example is None:
            import numpy as np

            from frugalml.data.pointcloud import make_scene, sample_points

            scene = make_scene(EXAMPLE_SCENE)
            n = self.config["points"] if self.example_points is None else self.example_points
            pts = scene.points if n == 0 else sample_points(scene, n, np.random.default_rng(0))[0]
            self._example = torch.from_numpy(pts)[None]
        return self._example

    def level_stats(self, voxel: float) -> dict:
        """Occupied voxels and 3x3x3 neighbour pairs at strides 1, 2, 4, 8 of the example scene at `voxel` m."""
        key = float(voxel)
        self._stats = getattr(self, "_stats", {})
        if key not in self._stats:
            self._stats[key] = scene_stats(self.example_input()[0], key)
        return self._stats[key]

    def macs(self, arch: dict) -> int:
        """MACs of one forward pass on the example scene from voxel/pair counts (tested against FlopCounterMode)."""
        st = self.level_stats(arch["voxel"])
        a = arch_from_genes(arch)
        return count_macs(a, st, self.num_classes)

    # ---- data and scoring -------------------------------------------------------------
    def dataset(self, quick: bool = False):
        """(train, val, test): ray-cast scenes; val scenes are held out of the training scenes."""
        from frugalml import data
        from frugalml.data.base import Dataset

        c = self.config
        n_train, n_val, n_test = c["scenes_train"], c["scenes_val"], c["scenes_test"]
        points = c["points"]
        if quick:
            n_train, n_val, n_test, points = 6, 2, 2, min(points, 512)
        ds = data.get("lidar", scenes_train=n_train, scenes_test=n_test, points=points, seed=c["seed"])
        nv = min(n_val, max(len(ds.y_train) // 4, 1))
        xtr, ytr, xv, yv = ds.x_train[nv:], ds.y_train[nv:], ds.x_train[:nv], ds.y_train[:nv]
        info = dict(ds.info)
        train = Dataset("lidar-nas", xtr, ytr, xv, yv, ds.num_classes, info | {"val_is_test": True})
        val = Dataset("lidar-nas-val", xtr, ytr, xv, yv, ds.num_classes, info)
        test = Dataset("lidar-nas-test", xtr, ytr, ds.x_test, ds.y_test, ds.num_classes, info)
        self._weight = class_weights(ytr, ds.num_classes)
        return train, val, test

    def loss(self, model, x, y, teacher_logits=None):
        """(loss, sum of per-scene point accuracies, logits); class-weighted cross-entropy or distillation."""
        return segmentation_loss(model, x, y, teacher_logits=teacher_logits, weight=self._weight)

    @torch.no_grad()
    def prepare(self, subnet, train, scenes: int = 8, batch: int = 4) -> None:
        """Recalibrate BatchNorm statistics of an extracted sub-network (cumulative mean over `scenes` scenes)."""
        recalibrate_bn(subnet, train.x_train[:scenes], batch)

    @torch.no_grad()
    def evaluate(self, subnet, ds, split: str = "test") -> float:
        """mIoU (0..1) on the split's scenes."""
        x, y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_train, ds.y_train)
        return score(subnet, x, y, self.num_classes)["miou"]

    def scaling_family(self) -> list[tuple[str, dict]]:
        """Hand-designed point-voxel baselines: one width fraction for every stage, depth 1, each voxel size."""
        out = []
        for v in self.voxels:
            for k in range(len(FRACTIONS)):
                g = {"voxel": v}
                g |= {
                    f"c{i}": channel_choices(c)[min(k, len(channel_choices(c)) - 1)]
                    for i, c in enumerate(self.max_channels)
                }
                g |= {f"d{i + 1}": max(self.depths) for i in range(N_DEPTHS)}
                out.append((f"w{FRACTIONS[k]}-v{v}", g))
        return out


@register("pointvoxel-scan")
class ScanPointVoxelSpace(PointVoxelSpace):
    """`pointvoxel` with MACs counted and latency measured on the whole example scan (10,589 points)."""

    example_points = 0


def scene_stats(points: torch.Tensor, voxel: float) -> dict:
    """Points, occupied voxels per level and submanifold 3x3x3 (input, output) pairs per level."""
    from frugalml.pointcloud.sparse import SparseTensor, downsample, submanifold_map, unique_coords

    grid = torch.floor(points[:, :3] / voxel).long()
    coords, _ = unique_coords(torch.cat([torch.zeros(len(grid), 1, dtype=torch.long), grid], 1))
    x = SparseTensor(torch.zeros(len(coords), 0), coords, 1, {})
    voxels, pairs = [], []
    for level in range(4):
        voxels.append(len(x.coords))
        pairs.append(sum(len(src) for src, _ in submanifold_map(x, 3)))
        if level < 3:
            coarse, _, _ = downsample(x)
            x = SparseTensor(torch.zeros(len(coarse), 0), coarse, x.stride * 2, x.cache)
    return {"points": len(points), "voxels": voxels, "pairs": pairs}


def count_macs(a: Arch, st: dict, num_classes: int, in_channels: int = 4) -> int:
    """Multiply-accumulates of `PVNet(a)` given `scene_stats`: every matmul of the network, nothing else.

    Submanifold conv: pairs x C_in x C_out; stride-2 and transposed conv: fine voxels x C_in x C_out
    (each fine voxel meets exactly one kernel offset); point MLPs and classifier: rows x C_in x C_out.
    """
    c, d = a.channels, a.depths
    n, p, pts = st["voxels"], st["pairs"], st["points"]
    m = p[0] * in_channels * c[0] + p[0] * c[0] * c[0]
    for i in range(3):
        m += n[i] * c[i] * c[i + 1] + d[i] * 2 * p[i + 1] * c[i + 1] ** 2
    ups_in, skips = (c[3], c[4], c[5]), (c[2], c[1], c[0])
    for j in range(3):
        lvl = 2 - j
        m += n[lvl] * ups_in[j] * c[4 + j]
        m += p[lvl] * (c[4 + j] + skips[j]) * c[4 + j]
        m += d[3 + j] * 2 * p[lvl] * c[4 + j] ** 2
    if a.point_branch:
        m += pts * ((in_channels + 3) * c[0] + c[0] * c[3] + c[3] * c[5] + c[5] * c[6]) + pts * c[6] * num_classes
    else:
        m += n[0] * c[6] * num_classes
    return int(m)


@torch.no_grad()
def recalibrate_bn(net: PVNet, x: torch.Tensor, batch: int = 4) -> None:
    """Reset BatchNorm running statistics and re-estimate them as the mean over batches of `x`."""
    bns = [m for m in net.modules() if isinstance(m, ElasticBatchNorm)]
    for bn in bns:
        bn.running_mean.zero_()
        bn.running_var.fill_(1)
    net.train()
    for i, start in enumerate(range(0, len(x), batch)):
        for bn in bns:
            bn.momentum = 1.0 / (i + 1)  # cumulative average over batches
        net(x[start : start + batch])
    for bn in bns:
        bn.momentum = 0.1
    net.eval()
