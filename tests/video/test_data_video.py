"""The synthetic task: exact readability per resolution, ground truth, the cue control."""

import math

import pytest
import torch

from frugalml import data
from frugalml.data.video import CLASSES, PATCH, make_clips, min_resolution, texture
from frugalml.errors import FrugalError
from frugalml.video.model import resize


@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("cls", range(len(CLASSES)))
def test_texture_is_readable_exactly_at_and_above_its_min_resolution(cls, scale):
    t = texture(cls, scale, 64)
    assert abs(float(t.mean())) < 1e-6 and math.isclose(float(t.pow(2).mean()), 1.0, rel_tol=1e-5)
    frame = torch.zeros(1, 1, 64, 64)
    r0, c0 = 12, 36  # a patch on multiples of 4, as the generator places them
    frame[..., r0 : r0 + PATCH, c0 : c0 + PATCH] = t[r0 : r0 + PATCH, c0 : c0 + PATCH]
    need = min_resolution(scale, 64)
    for res in (64, 48, 32, 16):
        energy = float(resize(frame, res).abs().max())
        if res >= need or (res == 16 and scale == 4):  # the 16 px policy sees only the coarse texture
            assert energy > 0.4, (res, need)
        else:
            assert energy < 1e-6, (res, need)  # the texture cancels exactly under area pooling


def test_classes_differ_at_full_resolution_and_vanish_together_below():
    tex = torch.stack([texture(c, 1, 64) for c in range(len(CLASSES))])
    gram = tex.flatten(1) @ tex.flatten(1).T / 64**2
    assert torch.allclose(gram.diagonal(), torch.ones(4), atol=1e-5)
    assert (gram - torch.eye(4)).abs().max() < 0.6  # distinct patterns
    assert resize(tex[:, None], 32).abs().max() < 1e-6


def test_clips_keep_per_frame_ground_truth_in_short_bursts():
    x, y, informative, min_res = make_clips(40, frames=16, size=64, seed=3)
    assert x.shape == (40, 16, 1, 64, 64) and y.shape == (40,)
    assert ((min_res > 0) == informative).all()
    assert set(min_res[informative].tolist()) <= {64, 48, 32}
    for row in informative.int():
        runs, run = [], 0
        for v in row.tolist() + [0]:
            if v:
                run += 1
            elif run:
                runs.append(run)
                run = 0
        assert 1 <= len(runs) <= 2 and all(2 <= r <= 3 for r in runs)


def test_generation_is_seeded():
    a = make_clips(5, frames=8, seed=1)
    b = make_clips(5, frames=8, seed=1)
    c = make_clips(5, frames=8, seed=2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2])
    assert not torch.equal(a[0], c[0])


def test_nocue_control_differs_only_by_the_flat_cue_squares():
    cued = make_clips(12, frames=8, cue=True, seed=5, false_cue=0.0)
    bare = make_clips(12, frames=8, cue=False, seed=5, false_cue=0.0)
    assert torch.equal(cued[1], bare[1]) and torch.equal(cued[2], bare[2])
    diff = (cued[0] - bare[0]).squeeze(2)
    values = set(torch.round(diff * 10).unique().tolist())
    assert values <= {0.0, 6.0, 12.0}  # flat +0.6 squares, possibly overlapping; no class texture
    marked = diff.flatten(2).amax(2) > 0.3
    assert torch.equal(marked, cued[2])  # the cue marks exactly the informative frames


def test_registered_datasets_and_bad_sizes():
    ds = data.get("synthetic-video", n_train=6, n_test=4, frames=8, size=32, seed=0)
    assert ds.input_shape == (8, 1, 32, 32) and ds.num_classes == 4
    assert ds.info["informative_test"].shape == (4, 8)
    nocue = data.get("synthetic-video-nocue", n_train=6, n_test=4, frames=8, size=32, seed=0)
    assert torch.equal(ds.y_train, nocue.y_train)
    with pytest.raises(FrugalError, match="multiple of 16"):
        make_clips(2, frames=8, size=40)
