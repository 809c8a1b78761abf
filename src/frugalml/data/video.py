"""Video clips: a synthetic task built to test adaptive frame/resolution selection, and a
loader for the user's own clips (`CLASS/clip.mp4`, decoded with PyAV).

Synthetic task (`synthetic-video`, `synthetic-video-nocue` as the negative control).
A clip is T grey frames of `size` px. The class is one of four zero-mean binary textures
(horizontal stripes, vertical stripes, checkerboard, dot grid) shown on a 16x16 patch in
one or two short bursts of 2-3 frames; every other frame is distractor only. Each burst
draws its texture scale s (cells of s px):

    s=1  readable only at full resolution (64 px)      min_res = size
    s=2  readable at 3/4 resolution (48 px) and up      min_res = 3*size//4
    s=4  readable at half resolution (32 px) and up     min_res = size//2

"Readable" is exact, not approximate: frames are reduced with area pooling
(`adaptive_avg_pool2d`), patches sit on multiples of 4 px and the s=2 texture is
phase-shifted by one pixel, so every pooling window at a too-low resolution covers equal
positive and negative texture mass and the texture sums to exactly zero (a test pins this).
All frames carry distractors: two moving Gaussian blobs, decoy patches of random
pixels (high-frequency but unstructured) and white noise. In the cued variant a bright
flat square sits behind the evidence patch: a coarse cue, visible at 24 px, that says
*where* evidence is but not *what* it is (a few uninformative frames carry a false cue).

Per-frame ground truth is kept in `Dataset.info`: `informative_{train,test}` (N, T) bool
and `min_res_{train,test}` (N, T) int (0 on uninformative frames).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

from frugalml.data import register
from frugalml.data.base import Dataset
from frugalml.errors import FrugalError

CLASSES = ["hstripes", "vstripes", "checker", "dots"]
SCALES = (1, 2, 4)
PATCH = 16
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def texture(cls: int, scale: int, size: int) -> torch.Tensor:
    """The class texture on the whole frame grid, zero mean, unit RMS (absolute coordinates)."""
    offset = 1 if scale == 2 else 0  # makes 2x2 pooling cancel the s=2 texture exactly
    coords = (torch.arange(size) + offset) // scale
    v, u = torch.meshgrid(coords, coords, indexing="ij")  # v: row cell, u: column cell
    if cls == 0:
        t = (-1.0) ** v
    elif cls == 1:
        t = (-1.0) ** u
    elif cls == 2:
        t = (-1.0) ** (u + v)
    elif cls == 3:
        t = ((u % 2 == 1) & (v % 2 == 1)).float() * 4 - 1
        t = t / math.sqrt(3.0)
    else:
        raise ValueError(cls)
    return t.float()


def min_resolution(scale: int, size: int) -> int:
    return {1: size, 2: 3 * size // 4, 4: size // 2}[scale]


def _place(rng: np.random.Generator, size: int) -> tuple[int, int]:
    """Top-left corner of a patch, on a multiple of 4 px (see module docstring)."""
    hi = (size - PATCH) // 4
    return int(rng.integers(0, hi + 1)) * 4, int(rng.integers(0, hi + 1)) * 4


def _bursts(rng: np.random.Generator, frames: int) -> list[tuple[int, int]]:
    """One or two non-overlapping bursts of 2-3 frames, as (start, length)."""
    n = int(rng.integers(1, 3))
    taken = np.zeros(frames + 1, dtype=bool)
    out = []
    for _ in range(100):
        if len(out) == n:
            break
        length = int(rng.integers(2, 4))
        start = int(rng.integers(0, frames - length + 1))
        if taken[max(start - 1, 0) : start + length + 1].any():
            continue
        taken[start : start + length] = True
        out.append((start, length))
    return sorted(out)


def make_clips(
    n: int,
    frames: int = 16,
    size: int = 64,
    cue: bool = True,
    seed: int = 0,
    amplitude: float = 0.4,
    noise: float = 0.25,
    false_cue: float = 0.05,
    scale_probs: tuple[float, float, float] = (0.4, 0.3, 0.3),
):
    """Generate `n` clips: x (n, T, 1, size, size), y (n,), informative (n, T), min_res (n, T)."""
    if frames < 4 or size < 32 or size % 16:
        raise FrugalError(
            f"synthetic video needs >= 4 frames and a size that is a multiple of 16 >= 32 "
            f"(got {frames} frames, {size} px)"
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small ops: extra threads only add contention on a busy machine
    try:
        return _make_clips(n, frames, size, cue, seed, amplitude, noise, false_cue, scale_probs)
    finally:
        torch.set_num_threads(threads)


def _make_clips(n, frames, size, cue, seed, amplitude, noise, false_cue, scale_probs):
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, frames, size, size)
    # distractors: two moving Gaussian blobs per clip (smooth, low frequency)
    grid = torch.arange(size, dtype=torch.float32)
    tt = torch.arange(frames, dtype=torch.float32)
    for lo in range(0, n, 64):
        hi = min(lo + 64, n)
        m = hi - lo
        start = torch.rand(m, 2, 2, generator=gen) * size  # clip, blob, (y, x)
        vel = (torch.rand(m, 2, 2, generator=gen) - 0.5) * 6
        amp = (torch.rand(m, 2, generator=gen) * 2 - 1) * 0.6
        pos = (start[:, None] + vel[:, None] * tt[None, :, None, None]) % size  # m, T, blob, 2
        gy = torch.exp(-((grid - pos[..., 0:1]) ** 2) / (2 * 6.0**2))  # m, T, blob, H (separable Gaussian)
        gx = torch.exp(-((grid - pos[..., 1:2]) ** 2) / (2 * 6.0**2))
        x[lo:hi] = torch.einsum("mtbh,mtbw->mthw", gy * amp[:, None, :, None], gx)
    xn = x.numpy()  # shares memory: numpy slicing is much faster than torch's for this loop
    textures = {(c, s): texture(c, s, size).numpy() * amplitude for c in range(len(CLASSES)) for s in SCALES}
    y = rng.integers(0, len(CLASSES), n)
    informative = np.zeros((n, frames), dtype=bool)
    min_res = np.zeros((n, frames), dtype=np.int64)
    half = (24 - PATCH) // 2
    decoys = rng.choice(np.array([-amplitude, amplitude], dtype=np.float32), (n, frames, PATCH, PATCH))
    for i in range(n):
        for start, length in _bursts(rng, frames):
            s = SCALES[int(rng.choice(3, p=scale_probs))]
            r0, c0 = _place(rng, size)
            tex = textures[(int(y[i]), s)][r0 : r0 + PATCH, c0 : c0 + PATCH]
            for t in range(start, start + length):
                if cue:
                    xn[i, t, max(r0 - half, 0) : r0 + PATCH + half, max(c0 - half, 0) : c0 + PATCH + half] += 0.6
                xn[i, t, r0 : r0 + PATCH, c0 : c0 + PATCH] += tex
                informative[i, t] = True
                min_res[i, t] = min_resolution(s, size)
        for t in np.flatnonzero(~informative[i]):
            if rng.random() < 0.5:  # decoy: high-frequency but unstructured
                r0, c0 = _place(rng, size)
                xn[i, t, r0 : r0 + PATCH, c0 : c0 + PATCH] += decoys[i, t]
            fake = rng.random() < false_cue  # drawn in both variants so they stay frame-for-frame alike
            r0, c0 = _place(rng, size)
            if cue and fake:
                xn[i, t, max(r0 - half, 0) : r0 + PATCH + half, max(c0 - half, 0) : c0 + PATCH + half] += 0.6
    y, informative, min_res = torch.from_numpy(y).long(), torch.from_numpy(informative), torch.from_numpy(min_res)
    x += torch.randn(x.shape, generator=gen) * noise
    return x[:, :, None], y, informative, min_res


def _synthetic(cue: bool, n_train: int, n_test: int, frames: int, size: int, seed: int, **kw) -> Dataset:
    if n_train < 1 or n_test < 1:
        raise FrugalError(f"need at least one training and one test clip (got {n_train}, {n_test})")
    xtr, ytr, inf_tr, mr_tr = make_clips(n_train, frames, size, cue, seed * 2 + 1, **kw)
    xte, yte, inf_te, mr_te = make_clips(n_test, frames, size, cue, seed * 2 + 2, **kw)
    info = {
        "source": "frugalml.data.video.make_clips",
        "cue": cue,
        "classes": CLASSES,
        "frames": frames,
        "size": size,
        "informative_train": inf_tr,
        "informative_test": inf_te,
        "min_res_train": mr_tr,
        "min_res_test": mr_te,
    }
    name = "synthetic-video" if cue else "synthetic-video-nocue"
    return Dataset(name, xtr, ytr, xte, yte, len(CLASSES), info)


@register("synthetic-video")
def synthetic_video(n_train: int = 1000, n_test: int = 500, frames: int = 16, size: int = 64, seed: int = 0, **kw):
    """Synthetic clips with a coarse cue marking where the evidence is."""
    return _synthetic(True, n_train, n_test, frames, size, seed, **kw)


@register("synthetic-video-nocue")
def synthetic_video_nocue(
    n_train: int = 1000, n_test: int = 500, frames: int = 16, size: int = 64, seed: int = 0, **kw
):
    """The same clips without the coarse cue (negative control)."""
    return _synthetic(False, n_train, n_test, frames, size, seed, **kw)


# ---------------------------------------------------------------- the user's own clips


class _TooShort(Exception):
    pass


def _decode(path: Path, frames: int, size: int) -> np.ndarray:
    """T frames sampled uniformly over the clip, as (T, 3, size, size) uint8.

    Raises PyAV's errors for unreadable files, `_TooShort(n_frames)` for too few frames.
    """
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24", width=size, height=size) for f in container.decode(stream)]
    if not decoded:
        raise EOFError("no decodable video frames")
    if len(decoded) < frames:
        raise _TooShort(len(decoded))
    idx = np.linspace(0, len(decoded) - 1, frames).round().astype(int)
    return np.stack([decoded[i] for i in idx]).transpose(0, 3, 1, 2)


@register("video-folder")
def video_folder(
    path: str | Path,
    frames: int = 16,
    size: int = 64,
    test_fraction: float = 0.25,
    seed: int = 0,
    warn=None,
) -> Dataset:
    """Clips from `path/CLASS/*.mp4`; unreadable or empty files are reported and skipped."""
    root = Path(path)
    if not root.is_dir():
        raise FrugalError(f"video folder not found: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise FrugalError(f"{root} has no class folders (expected {root}/CLASS/clip.mp4)")
    if frames < 1 or size < 8:
        raise FrugalError(f"need frames >= 1 and size >= 8 (got {frames}, {size})")
    warn = warn or (lambda msg: print(msg, file=sys.stderr))
    xs, ys, skipped = [], [], []
    for label, cls in enumerate(classes):
        for f in sorted((root / cls).iterdir()):
            if f.suffix.lower() not in VIDEO_EXTENSIONS:
                continue
            if f.stat().st_size == 0:
                skipped.append(str(f))
                warn(f"skipping {f}: zero-length file")
                continue
            try:
                clip = _decode(f, frames, size)
            except _TooShort as e:
                raise FrugalError(f"{f} has {e.args[0]} frames, fewer than the {frames} asked for") from None
            except Exception as e:  # PyAV raises many error types for broken files
                skipped.append(str(f))
                warn(f"skipping {f}: cannot decode ({type(e).__name__}: {e})")
                continue
            xs.append(clip)
            ys.append(label)
    if skipped:
        warn(f"skipped {len(skipped)} unreadable video file(s) in {root}")
    if not xs:
        raise FrugalError(f"no readable clips under {root} (skipped {len(skipped)})")
    x = torch.from_numpy(np.stack(xs)).float() / 255.0
    y = torch.tensor(ys, dtype=torch.long)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(ys), dtype=bool)
    for c in range(len(classes)):  # stratified; every class keeps a training clip
        idx = np.flatnonzero(np.array(ys) == c)
        rng.shuffle(idx)
        k = min(int(round(len(idx) * test_fraction)), len(idx) - 1)
        test[idx[:k]] = True
    if not test.any():
        raise FrugalError(f"{root}: too few clips for a test split ({len(ys)} clips)")
    t = torch.from_numpy(test)
    info = {"source": str(root), "classes": classes, "frames": frames, "size": size, "skipped": skipped}
    return Dataset(f"video-folder:{root.name}", x[~t], y[~t], x[t], y[t], len(classes), info)
