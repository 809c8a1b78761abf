"""`frugal demo` step: a small AR-Net on synthetic clips, adaptive vs uniform full resolution.

Small enough to run in well under a minute on 2 cores (the quick setting is a smoke test:
its model is barely trained, so its accuracy means nothing; the FLOPs and ms are real).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path


def demo(out: Path, quick: bool, console) -> list[dict]:
    import torch

    from frugalml.report.console import demo_row
    from frugalml.video.evaluate import evaluate_and_record
    from frugalml.video.training import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = _demo_config(quick)
        out = Path(out)
        train(cfg, out, progress=False)
        res = evaluate_and_record(out, latency_videos=8 if quick else 24, random_draws=2, plots=not quick)
    finally:
        torch.set_num_threads(threads)
    base = res["baselines"][f"uniform_{cfg.resolutions[0]}"]
    if console is not None:
        _print_summary(console, cfg, res, base)
    note = (
        "counted FLOPs; ms measured interleaved, 1 thread (at this toy size the policy's fixed cost can exceed "
        "the backbone time saved); the claim is in benchmarks/bench_video_arnet.py"
    )
    what = f"adaptive vs uniform {cfg.resolutions[0]} px"
    return [
        demo_row("video", what, "GFLOPs/video", base["gflops_per_video"], res["gflops_per_video"], note),
        demo_row("video", what, "ms/video", base["ms_per_video"], res["ms_per_video"], note),
        demo_row("video", what, "accuracy", base["accuracy"], res["accuracy"], "test clips; tiny model"),
    ]


def _demo_config(quick: bool):
    """The demo's AR-Net: the quick one is a smoke test (barely trained), the other a small real run."""
    from frugalml.video.training import VideoConfig

    epochs = (1, 1) if quick else (3, 4)  # backbone, policy; the fine-tune takes 1 either way
    base = VideoConfig()
    return VideoConfig(
        n_train=32 if quick else 160,
        n_test=16 if quick else 64,
        frames=8,
        size=32,
        resolutions=[32, 24, 16],
        policy_res=8,
        backbone=replace(base.backbone, epochs=epochs[0], batch_size=8),
        policy=replace(base.policy, epochs=epochs[1], batch_size=8),
        finetune=replace(base.finetune, epochs=1, batch_size=8),
    )


def _print_summary(console, cfg, res: dict, base: dict) -> None:
    from frugalml.report.console import fmt_num

    console.print(
        f"[bold]video[/bold] AR-Net on {cfg.n_train} synthetic clips ({cfg.frames} frames, {cfg.size} px): "
        f"adaptive accuracy {res['accuracy']:.3f} at {fmt_num(res['gflops_per_video'])} GFLOPs/video vs "
        f"uniform {cfg.resolutions[0]} px {base['accuracy']:.3f} at {fmt_num(base['gflops_per_video'])}; "
        f"random policy (same action mix) {res['baselines']['random']['accuracy']:.3f}"
    )
