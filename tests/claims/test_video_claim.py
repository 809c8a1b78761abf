"""Claim: the adaptive video model spends fewer FLOPs than uniform full resolution, and fewer
still as the efficiency weight grows (tiny synthetic run)."""

from dataclasses import replace

import torch

from frugalml.video.config import VideoConfig, _stage
from frugalml.video.infer import flops_table, in_chunks, policy_actions, video_flops
from frugalml.video.training import load_data, load_run, train


def test_adaptive_flops_below_uniform_and_falling_with_the_efficiency_weight(tmp_path):
    base = VideoConfig(
        frames=6,
        size=32,
        n_train=48,
        n_test=32,
        resolutions=[32, 24, 16],
        policy_res=16,
        backbone_widths=[8, 16, 16],
        backbone=_stage(2, 16, 3e-3, 64),
        policy=_stage(4, 16, 1e-2, 64),
        finetune=_stage(0, 16, 1e-3, 64),
    )
    ds = load_data(base)
    flops = {}
    for w in (0.005, 0.02, 0.05):
        run = tmp_path / f"w{w}"
        train(replace(base, efficiency_weight=w), run, progress=False, ds=ds)
        _, model, _, _ = load_run(run)
        table = flops_table(model, base.frames)
        with torch.no_grad():
            actions = in_chunks(lambda v, m=model: policy_actions(m, v), ds.x_test)
        flops[w] = float(video_flops(table, actions).mean())  # policy included
    uniform = base.frames * table.to_dict()["backbone_flops"][0]
    print(f"FLOPs per video: uniform 32 px {uniform:,.0f}; adaptive by efficiency weight", flops)
    # at the time of writing: uniform 1,549,056; 0.005 -> 1,349,376, 0.02 -> 865,536, 0.05 -> 477,696
    assert flops[0.005] < 0.95 * uniform
    assert flops[0.02] < 0.9 * flops[0.005]
    assert flops[0.05] < 0.9 * flops[0.02]
