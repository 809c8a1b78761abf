"""Adaptive video recognition (AR-Net, Meng et al. ECCV 2020): a light policy glances at
every frame at low resolution and decides per frame whether to skip it or which
backbone/resolution to spend on it; the chosen backbones' logits are averaged.

    from frugalml.video import VideoConfig, train, evaluate_run
    train(VideoConfig(data="synthetic", seed=0), "runs/video/s0")
    evaluate_run("runs/video/s0")["accuracy"]
"""

from frugalml.video.evaluate import evaluate_run
from frugalml.video.infer import adaptive_logits, flops_table, policy_actions, uniform_logits, video_flops
from frugalml.video.model import ARNet, ARNetConfig, resize, temperature
from frugalml.video.train import VideoConfig, load_run, train

__all__ = [
    "ARNet", "ARNetConfig", "VideoConfig", "adaptive_logits", "evaluate_run", "flops_table", "load_run",
    "policy_actions", "resize", "temperature", "train", "uniform_logits", "video_flops",
]  # fmt: skip
