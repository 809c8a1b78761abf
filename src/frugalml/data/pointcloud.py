"""LiDAR-like street scenes made by ray casting, and a loader for SemanticKITTI files.

    from frugalml import data
    ds = data.get("lidar", scenes_train=64, scenes_test=16, points=4096)
    ds.x_train            # (S, N, 4) float32: x, y, z (m, sensor frame), intensity in [0, 1]
    ds.y_train            # (S, N) int64 class per point (CLASSES), -1 = ignore

A spinning sensor 1.73 m above a street casts `beams x azimuths` rays; every ray stops at
the nearest surface (so objects occlude what is behind them), gets Gaussian range noise
and drops out with a probability that grows with range. Because rays are spread evenly in
angle, point density falls with distance as on a real scanner. Scenes differ by seed.

The user's own scans in the SemanticKITTI layout (`velodyne/NNNNNN.bin`: float32 x, y, z,
remission; `labels/NNNNNN.label`: uint32, semantic id in the low 16 bits) load with
`load_scan` / `load_sequence`, their ids mapped onto the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from frugalml.data import register
from frugalml.data.base import Dataset
from frugalml.errors import FrugalError

CLASSES = ["road", "sidewalk", "building", "pole", "traffic-sign", "person", "cyclist", "car", "vegetation"]
IGNORE = -1
ROAD, SIDEWALK, BUILDING, POLE, SIGN, PERSON, CYCLIST, CAR, VEGETATION = range(len(CLASSES))
# Mean reflectivity per class (remission is noisy and overlaps between classes on purpose).
_REFLECT = np.array([0.25, 0.35, 0.30, 0.55, 0.85, 0.30, 0.40, 0.60, 0.20], dtype=np.float32)
SENSOR_HEIGHT = 1.73


@dataclass
class Scene:
    points: np.ndarray  # (P, 4) float32
    labels: np.ndarray  # (P,) int64


def _boxes_hit(d: np.ndarray, o: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distance along each ray to each axis-aligned box (slab method); inf where missed. (R, M)."""
    if len(lo) == 0:
        return np.full((len(d), 0), np.inf)
    inv = 1.0 / np.where(np.abs(d) < 1e-12, 1e-12, d)  # (R, 3)
    t1 = (lo[None] - o) * inv[:, None]  # (R, M, 3)
    t2 = (hi[None] - o) * inv[:, None]
    near = np.minimum(t1, t2).max(-1)
    far = np.maximum(t1, t2).min(-1)
    return np.where((near <= far) & (near > 1e-6), near, np.inf)


def _cylinders_hit(d, o, cyl: np.ndarray) -> np.ndarray:
    """Vertical cylinders (cx, cy, r, z0, z1): distance to the side wall; inf where missed."""
    if len(cyl) == 0:
        return np.full((len(d), 0), np.inf)
    cx, cy, r, z0, z1 = (cyl[:, i][None] for i in range(5))
    ox, oy = o[0] - cx, o[1] - cy
    dx, dy = d[:, :1], d[:, 1:2]
    a = dx * dx + dy * dy
    b = 2 * (ox * dx + oy * dy)
    c = ox * ox + oy * oy - r * r
    disc = b * b - 4 * a * c
    ok = disc >= 0
    t = (-b - np.sqrt(np.where(ok, disc, 0))) / np.maximum(2 * a, 1e-12)
    z = o[2] + t * d[:, 2:3]
    return np.where(ok & (t > 1e-6) & (z >= z0) & (z <= z1), t, np.inf)


def _spheres_hit(d, o, sph: np.ndarray) -> np.ndarray:
    """Spheres (cx, cy, cz, r); inf where missed."""
    if len(sph) == 0:
        return np.full((len(d), 0), np.inf)
    oc = o[None] - sph[:, :3]  # (M, 3)
    b = d @ oc.T  # (R, M), rays are unit length
    c = (oc * oc).sum(1)[None] - sph[:, 3][None] ** 2
    disc = b * b - c
    ok = disc >= 0
    t = -b - np.sqrt(np.where(ok, disc, 0))
    return np.where(ok & (t > 1e-6), t, np.inf)


def _layout(rng: np.random.Generator, length: float, density: float):
    """Primitives of one street: boxes, cylinders, spheres with a class each."""
    boxes, box_cls, cyls, cyl_cls, sphs, sph_cls = [], [], [], [], [], []

    def box(cx, cy, z0, sx, sy, sz, cls):
        boxes.append([cx - sx / 2, cy - sy / 2, z0, cx + sx / 2, cy + sy / 2, z0 + sz])
        box_cls.append(cls)

    half = length / 2
    road = rng.uniform(3.5, 5.0)
    walk = road + rng.uniform(2.5, 4.0)
    for side in (-1, 1):
        # sidewalk: a 15 cm kerb along the road
        box(0, side * (road + walk) / 2, 0, length * 2, walk - road, 0.15, SIDEWALK)
        # buildings with gaps
        x = -half
        while x < half:
            w = rng.uniform(6, 20)
            if rng.random() < 0.8:
                depth = rng.uniform(6, 12)
                setback = rng.uniform(0.5, 3)
                box(x + w / 2, side * (walk + setback + depth / 2), 0, w, depth, rng.uniform(4, 15), BUILDING)
            x += w + rng.uniform(0, 4) * (rng.random() < 0.4)
    n = lambda mean: rng.poisson(mean * density)  # noqa: E731

    def clear_of_sensor(x, y, margin=3.0):
        return abs(x) > margin or abs(y) > 1.5

    for _ in range(n(8)):  # cars, driving or parked
        x, y = rng.uniform(-half, half), rng.choice([-1, 1]) * rng.uniform(0.8, road - 1.0)
        if not clear_of_sensor(x, y, 4.0):
            continue
        ln, wd = rng.uniform(3.8, 4.8), rng.uniform(1.7, 1.9)
        box(x, y, 0.25, ln, wd, rng.uniform(0.7, 0.9), CAR)  # body
        box(x - 0.2, y, 0.95, ln * 0.55, wd * 0.9, rng.uniform(0.45, 0.6), CAR)  # cabin
    for _ in range(n(6)):  # pedestrians on the sidewalks
        x, y = rng.uniform(-half, half), rng.choice([-1, 1]) * rng.uniform(road + 0.5, walk - 0.3)
        h = rng.uniform(1.55, 1.9)
        box(x, y, 0, 0.45, 0.35, h, PERSON)
    for _ in range(n(2)):  # cyclists near the kerb
        x, y = rng.uniform(-half, half), rng.choice([-1, 1]) * rng.uniform(road - 1.0, road - 0.4)
        if not clear_of_sensor(x, y):
            continue
        box(x, y, 0, 1.7, 0.5, 1.0, CYCLIST)  # bicycle
        box(x, y, 1.0, 0.5, 0.4, 0.75, CYCLIST)  # rider
    for _ in range(n(8)):  # poles, some with a sign
        x, y = rng.uniform(-half, half), rng.choice([-1, 1]) * (road + rng.uniform(0.3, 0.8))
        h = rng.uniform(3.0, 7.0)
        cyls.append([x, y, rng.uniform(0.06, 0.15), 0, h])
        cyl_cls.append(POLE)
        if rng.random() < 0.5:
            z = rng.uniform(1.8, min(h, 3.0) - 0.2)
            box(x, y - np.sign(y) * 0.1, z, 0.8, 0.08, 0.7, SIGN)
    for _ in range(n(6)):  # trees: trunk + crown
        x, y = rng.uniform(-half, half), rng.choice([-1, 1]) * rng.uniform(road + 0.8, walk + 0.5)
        h = rng.uniform(2.0, 3.5)
        cyls.append([x, y, rng.uniform(0.12, 0.25), 0, h])
        cyl_cls.append(VEGETATION)
        r = rng.uniform(1.2, 2.5)
        sphs.append([x, y, h + r * 0.7, r])
        sph_cls.append(VEGETATION)
    for _ in range(n(5)):  # bushes
        x, y = rng.uniform(-half, half), rng.choice([-1, 1]) * rng.uniform(walk - 1.0, walk + 1.0)
        r = rng.uniform(0.5, 1.1)
        sphs.append([x, y, r * 0.5, r])
        sph_cls.append(VEGETATION)

    def arr(a, k):
        return np.asarray(a, dtype=np.float64).reshape(-1, k)

    return (
        arr(boxes, 6),
        np.asarray(box_cls, dtype=np.int64),
        arr(cyls, 5),
        np.asarray(cyl_cls, dtype=np.int64),
        arr(sphs, 4),
        np.asarray(sph_cls, dtype=np.int64),
    )


def make_scene(
    seed: int,
    beams: int = 32,
    azimuths: int = 360,
    max_range: float = 40.0,
    range_noise: float = 0.02,
    dropout: float = 0.15,
    density: float = 1.0,
    fov_deg: tuple[float, float] = (-25.0, 10.0),
) -> Scene:
    """One ray-cast street scene: (P, 4) points and (P,) labels, P varies with the scene."""
    if beams < 1 or azimuths < 1 or max_range <= 0:
        raise FrugalError(f"beams, azimuths and max_range must be positive (got {beams}, {azimuths}, {max_range})")
    rng = np.random.default_rng(seed)
    boxes, box_cls, cyls, cyl_cls, sphs, sph_cls = _layout(rng, 2 * max_range, density)
    elev = np.deg2rad(np.linspace(fov_deg[0], fov_deg[1], beams) + rng.normal(0, 0.05, beams))
    azim = np.linspace(0, 2 * np.pi, azimuths, endpoint=False) + rng.uniform(0, 2 * np.pi / azimuths)
    el, az = np.meshgrid(elev, azim, indexing="ij")
    d = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1).reshape(-1, 3)
    o = np.array([0.0, 0.0, SENSOR_HEIGHT])

    ground = np.where(d[:, 2] < -1e-9, -o[2] / np.minimum(d[:, 2], -1e-9), np.inf)
    dists = [
        ground[:, None],
        _boxes_hit(d, o, boxes[:, :3], boxes[:, 3:]),
        _cylinders_hit(d, o, cyls),
        _spheres_hit(d, o, sphs),
    ]
    classes = np.concatenate([[ROAD], box_cls, cyl_cls, sph_cls])
    t_all = np.concatenate(dists, axis=1)
    first = t_all.argmin(1)  # the nearest surface occludes the rest
    t = t_all[np.arange(len(d)), first]
    labels = classes[first]
    t = t + rng.normal(0, range_noise, len(t))
    keep = np.isfinite(t) & (t < max_range) & (t > 0.5)
    keep &= rng.random(len(t)) >= dropout * (np.where(keep, t, 0) / max_range)
    xyz = o + d[keep] * t[keep, None]
    labels = labels[keep]
    intensity = _REFLECT[labels] * np.exp(-t[keep] / 100) + rng.normal(0, 0.08, len(labels))
    pts = np.concatenate([xyz, np.clip(intensity, 0, 1)[:, None]], 1).astype(np.float32)
    return Scene(pts, labels.astype(np.int64))


def sample_points(scene: Scene, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exactly `n` points of a scene: without replacement if it has enough, else with repeats.

    An empty scene gives `n` points at the sensor labelled IGNORE, so a batch keeps its shape
    and such points count for neither loss nor IoU.
    """
    p = len(scene.labels)
    if p == 0:
        pts = np.zeros((n, 4), dtype=np.float32)
        return pts, np.full(n, IGNORE, dtype=np.int64)
    idx = rng.choice(p, n, replace=p < n)
    return scene.points[idx], scene.labels[idx]


def _stack(scenes: list[Scene], n: int, seed: int):
    rng = np.random.default_rng(seed)
    if not scenes:
        return torch.zeros((0, n, 4)), torch.zeros((0, n), dtype=torch.long)
    xs, ys = zip(*(sample_points(s, n, rng) for s in scenes))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def lidar_scenes(split: str, count: int, seed: int = 0, **kw) -> list[Scene]:
    """The whole scans (every point, no sampling) behind `lidar(seed=seed)`'s first `count` scenes of `split`."""
    if split not in ("train", "test"):
        raise FrugalError(f"split must be 'train' or 'test', got {split!r}")
    base = seed * 1_000_003 + (500_000 if split == "test" else 0)
    return [make_scene(base + i, **kw) for i in range(count)]


@register("lidar")
def lidar(
    scenes_train: int = 64,
    scenes_test: int = 16,
    points: int = 4096,
    seed: int = 0,
    beams: int = 32,
    azimuths: int = 360,
    max_range: float = 40.0,
) -> Dataset:
    """Ray-cast street scenes, `points` per scene (subsampled), labels in `CLASSES`."""
    if scenes_train < 0 or scenes_test < 0 or points < 1:
        raise FrugalError(f"need scenes >= 0 and points >= 1 (got {scenes_train}, {scenes_test}, {points})")
    kw = dict(beams=beams, azimuths=azimuths, max_range=max_range)
    train = lidar_scenes("train", scenes_train, seed, **kw)
    test = lidar_scenes("test", scenes_test, seed, **kw)
    xtr, ytr = _stack(train, points, seed)
    xte, yte = _stack(test, points, seed + 1)
    info = {
        "source": "frugalml ray-cast street generator",
        "classes": CLASSES,
        "seed": seed,
        "points": points,
        "raw_points_mean": float(np.mean([len(s.labels) for s in train + test] or [0])),
        **kw,
    }
    return Dataset("lidar", xtr, ytr, xte, yte, len(CLASSES), info)


# --- SemanticKITTI layout -------------------------------------------------------------------

# SemanticKITTI raw ids -> our classes (unlisted ids are ignored).
KITTI_MAP = {
    10: CAR,
    13: CAR,
    16: CAR,
    18: CAR,
    20: CAR,
    252: CAR,
    256: CAR,
    257: CAR,
    258: CAR,
    259: CAR,
    30: PERSON,
    254: PERSON,
    31: CYCLIST,
    32: CYCLIST,
    253: CYCLIST,
    255: CYCLIST,
    11: CYCLIST,
    15: CYCLIST,
    40: ROAD,
    44: ROAD,
    60: ROAD,
    48: SIDEWALK,
    49: SIDEWALK,
    72: SIDEWALK,
    50: BUILDING,
    51: BUILDING,
    52: BUILDING,
    80: POLE,
    81: SIGN,
    70: VEGETATION,
    71: VEGETATION,
}


def _kitti_lookup() -> np.ndarray:
    table = np.full(1 << 16, IGNORE, dtype=np.int64)
    for raw, ours in KITTI_MAP.items():
        table[raw] = ours
    return table


def read_bin(path: str | Path) -> np.ndarray:
    """A SemanticKITTI velodyne scan: float32 records of (x, y, z, remission) -> (P, 4)."""
    path = Path(path)
    if not path.is_file():
        raise FrugalError(f"point file not found: {path}")
    size = path.stat().st_size
    if size % 16:
        raise FrugalError(f"{path}: {size} bytes is not a whole number of (x, y, z, remission) float32 records")
    pts = np.fromfile(path, dtype="<f4").reshape(-1, 4)
    if not np.isfinite(pts).all():
        raise FrugalError(f"{path}: contains NaN or infinite coordinates")
    return pts


def read_label(path: str | Path, expected: int | None = None, raw: bool = False) -> np.ndarray:
    """SemanticKITTI labels (uint32; semantic id in the low 16 bits) mapped to `CLASSES` ids."""
    path = Path(path)
    if not path.is_file():
        raise FrugalError(f"label file not found: {path}")
    size = path.stat().st_size
    if size % 4:
        raise FrugalError(f"{path}: {size} bytes is not a whole number of uint32 labels")
    lab = np.fromfile(path, dtype="<u4") & 0xFFFF
    if expected is not None and len(lab) != expected:
        raise FrugalError(f"{path}: {len(lab)} labels but the matching .bin has {expected} points")
    return lab.astype(np.int64) if raw else _kitti_lookup()[lab]


def load_scan(bin_path: str | Path, label_path: str | Path | None = None) -> Scene:
    pts = read_bin(bin_path)
    labels = read_label(label_path, len(pts)) if label_path is not None else np.full(len(pts), IGNORE, np.int64)
    return Scene(pts, labels)


def write_scan(scene: Scene, bin_path: str | Path, label_path: str | Path | None = None) -> None:
    """Write a scene in the SemanticKITTI layout (our class ids mapped to a KITTI id each)."""
    inverse = {
        ROAD: 40,
        SIDEWALK: 48,
        BUILDING: 50,
        POLE: 80,
        SIGN: 81,
        PERSON: 30,
        CYCLIST: 31,
        CAR: 10,
        VEGETATION: 70,
    }
    Path(bin_path).parent.mkdir(parents=True, exist_ok=True)
    scene.points.astype("<f4").tofile(bin_path)
    if label_path is not None:
        Path(label_path).parent.mkdir(parents=True, exist_ok=True)
        raw = np.array([inverse.get(int(c), 0) for c in scene.labels], dtype="<u4")
        raw.tofile(label_path)


def load_sequence(root: str | Path, limit: int | None = None) -> list[tuple[str, Scene]]:
    """All scans of a SemanticKITTI sequence directory (`velodyne/*.bin`, optional `labels/*.label`)."""
    root = Path(root)
    vel = root / "velodyne" if (root / "velodyne").is_dir() else root
    bins = sorted(vel.glob("*.bin"))
    if not bins:
        raise FrugalError(f"no .bin scans in {vel}")
    labels_dir = root / "labels"
    out = []
    for b in bins[:limit]:
        lab = labels_dir / (b.stem + ".label")
        if not lab.exists():
            lab = b.with_suffix(".label")
        out.append((b.stem, load_scan(b, lab if lab.exists() else None)))
    return out


@register("semantickitti")
def semantickitti(root: str, points: int = 4096, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """The user's SemanticKITTI-layout scans as a fixed-size dataset (last scans are the test split)."""
    scans = [s for _, s in load_sequence(root)]
    n_test = int(round(len(scans) * test_fraction))
    train, test = scans[: len(scans) - n_test], scans[len(scans) - n_test :]
    xtr, ytr = _stack(train, points, seed)
    xte, yte = _stack(test, points, seed + 1)
    info = {
        "source": str(root),
        "classes": CLASSES,
        "points": points,
        "empty_scans": sum(len(s.labels) == 0 for s in scans),
    }
    return Dataset("semantickitti", xtr, ytr, xte, yte, len(CLASSES), info)
