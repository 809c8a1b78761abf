"""AR-Net-style networks: per-resolution backbones, a low-resolution policy with an LSTM,
and the training-time rollout (hard straight-through Gumbel-softmax over actions).

Actions, in this order: one per backbone (highest resolution first), then skip-k for
k in `skips`. Skip-k means: this frame and the next k-1 get neither backbone nor policy
step. Fusion is the mean of the per-frame logits over the frames a backbone looked at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def resize(x: torch.Tensor, res: int) -> torch.Tensor:
    """Area-pool frames (..., C, H, W) to res x res (exact averaging; no new frequencies)."""
    if x.shape[-1] == res and x.shape[-2] == res:
        return x
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    h, w = x.shape[-2:]
    if h % res == 0 and w % res == 0 and h == w:
        out = F.avg_pool2d(flat, h // res)  # same numbers as adaptive pooling, faster kernel
    else:
        out = F.adaptive_avg_pool2d(flat, res)
    return out.reshape(*lead, *out.shape[-3:])


class Backbone(nn.Module):
    """Small fully convolutional frame classifier; the same design at every resolution."""

    def __init__(self, in_channels: int = 1, num_classes: int = 4, widths=(32, 64, 128)):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1), nn.ReLU()]
            c = w
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        # max over positions: evidence is a small patch anywhere in the frame
        return self.fc(self.features(x).amax(dim=(2, 3)))


class PolicyCNN(nn.Module):
    """Frame encoder of the policy, run at the policy resolution."""

    def __init__(self, in_channels: int = 1, res: int = 16, widths=(8, 16), feature: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        c, size = in_channels, res
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1), nn.ReLU()]
            c, size = w, (size + 1) // 2
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(c * size * size, feature)

    def forward(self, x):
        return torch.tanh(self.proj(self.features(x).flatten(1)))  # tanh: no dead units at high policy lr


class PolicyStep(nn.Module):
    """One LSTM step and the action head (what the policy costs per frame it looks at).

    The head reads the LSTM state and the current frame's features, so a decision can
    react to what is on this frame as well as to what came before.
    """

    def __init__(self, feature: int, hidden: int, actions: int):
        super().__init__()
        self.cell = nn.LSTMCell(feature, hidden)
        self.head = nn.Linear(hidden + feature, actions)

    def forward(self, f, h, c):
        h, c = self.cell(f, (h, c))
        return self.head(torch.cat([h, f], 1)), h, c


@dataclass
class ARNetConfig:
    in_channels: int = 1
    num_classes: int = 4
    resolutions: tuple[int, ...] = (64, 48, 32)
    policy_res: int = 16
    skips: tuple[int, ...] = (1, 2, 4)
    backbone_widths: tuple[int, ...] = (32, 64, 128)
    policy_widths: tuple[int, ...] = (8, 16)
    feature: int = 32
    hidden: int = 32


class ARNet(nn.Module):
    def __init__(self, cfg: ARNetConfig):
        super().__init__()
        self.cfg = cfg
        self.backbones = nn.ModuleList(
            Backbone(cfg.in_channels, cfg.num_classes, cfg.backbone_widths) for _ in cfg.resolutions
        )
        self.policy_cnn = PolicyCNN(cfg.in_channels, cfg.policy_res, cfg.policy_widths, cfg.feature)
        self.policy_step = PolicyStep(cfg.feature, cfg.hidden, self.num_actions)
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.long))  # drives the temperature

    @property
    def num_backbones(self) -> int:
        return len(self.cfg.resolutions)

    @property
    def num_actions(self) -> int:
        return len(self.cfg.resolutions) + len(self.cfg.skips)

    def action_names(self) -> list[str]:
        return [f"res{r}" for r in self.cfg.resolutions] + [f"skip{k}" for k in self.cfg.skips]

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every backbone on every frame: (B, T, C, H, W) -> (B, T, n_backbones, classes)."""
        b, t = x.shape[:2]
        frames = x.reshape(b * t, *x.shape[2:])
        outs = [bb(resize(frames, r)) for bb, r in zip(self.backbones, self.cfg.resolutions)]
        return torch.stack(outs, 1).reshape(b, t, self.num_backbones, -1)

    def rollout(self, small: torch.Tensor, logits: torch.Tensor, sample: bool, tau: float = 1.0, policy=None):
        """Run the policy over time and fuse the chosen backbones' logits.

        small: (B, T, C, p, p) frames at the policy resolution; logits: (B, T, nb, K).
        `sample`: hard straight-through Gumbel-softmax (training) instead of argmax.
        `policy`: optional fixed actions (B, T) replacing the policy's choice (baselines).
        Returns fused logits (B, K), use (B, T, nb) one-hot weights of the backbone
        actually run per frame, alive (B, T) and actions (B, T) (-1 where skipped over).
        """
        bsz, steps = small.shape[:2]
        nb = self.num_backbones
        feats = self.policy_cnn(small.reshape(bsz * steps, *small.shape[2:])).reshape(bsz, steps, -1)
        h = feats.new_zeros(bsz, self.cfg.hidden)
        c = feats.new_zeros(bsz, self.cfg.hidden)
        cover = [feats.new_zeros(bsz) for _ in range(steps + max(self.cfg.skips))]
        uses, alives, actions = [], [], []
        for t in range(steps):
            alive = 1.0 - cover[t]  # exactly 0 or 1 in the forward pass
            a_logits, h_new, c_new = self.policy_step(feats[:, t], h, c)
            if policy is not None:
                a = F.one_hot(policy[:, t].clamp(min=0), self.num_actions).float()
            elif sample:
                a = F.gumbel_softmax(a_logits, tau=tau, hard=True)
            else:
                a = F.one_hot(a_logits.argmax(1), self.num_actions).float()
            keep = alive[:, None]
            h = keep * h_new + (1 - keep) * h
            c = keep * c_new + (1 - keep) * c
            w = keep * a
            for j, k in enumerate(self.cfg.skips):
                for d in range(1, k):
                    cover[t + d] = cover[t + d] + w[:, nb + j]
            uses.append(w[:, :nb])
            alives.append(alive)
            actions.append(torch.where(alive > 0.5, a.argmax(1), torch.full_like(a.argmax(1), -1)))
        use = torch.stack(uses, 1)  # B, T, nb
        alive = torch.stack(alives, 1)
        count = use.sum((1, 2))
        fused = (use[..., None] * logits).sum((1, 2)) / count.clamp(min=1.0)[:, None]
        return fused, use, alive, torch.stack(actions, 1)


def temperature(epoch: float, start: float = 5.0, decay: float = 0.045) -> float:
    """AR-Net's annealing: tau = 5 exp(-0.045 epoch)."""
    return start * math.exp(-decay * epoch)
