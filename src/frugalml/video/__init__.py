"""Adaptive video recognition (AR-Net, Meng et al. ECCV 2020): a light policy glances at
every frame at low resolution and decides per frame whether to skip it or which
backbone/resolution to spend on it; the chosen backbones' logits are averaged.

    from frugalml.video import VideoConfig, train, evaluate_run
    train(VideoConfig(data="synthetic", seed=0), "runs/video/s0")
    evaluate_run("runs/video/s0")["accuracy"]
"""

# Loaded on first use, so `frugal --help` (which imports frugalml.video.cli) needs no torch.
_LAZY = {
    "evaluate_run": "frugalml.video.evaluate",
    **{
        n: "frugalml.video.infer"
        for n in ("adaptive_logits", "flops_table", "policy_actions", "uniform_logits", "video_flops")
    },
    **{n: "frugalml.video.model" for n in ("ARNet", "ARNetConfig", "resize", "temperature")},
    **{n: "frugalml.video.training" for n in ("VideoConfig", "load_run", "train")},
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'frugalml.video' has no attribute '{name}'")


__all__ = sorted(_LAZY)
