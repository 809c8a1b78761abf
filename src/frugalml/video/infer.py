"""The efficient inference path, its FLOPs count, and the baselines that run on it.

`adaptive_logits` runs the policy, then each backbone once on exactly the frames it was
chosen for (batched across the chosen frames), so skipping saves real time. The policy
CNN runs on every frame (batched, cheap); the LSTM step runs only on frames not skipped
over, but its FLOPs are counted on every frame (an upper bound). FLOPs are counted per
module with `frugalml.cost.profile` (FlopCounterMode, FLOPs = 2 x MACs) and summed over
what each video ran; area pooling to the backbone and policy resolutions is not a
matmul and is not counted (it is in the wall-clock).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from frugalml.video.model import ARNet, resize


class _StepOnly(nn.Module):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def forward(self, f):
        h = f.new_zeros(1, self.step.cell.hidden_size)
        return self.step(f, h, h)[0]


@dataclass
class FlopsTable:
    backbone: list[int]  # FLOPs of one frame through each backbone at its resolution
    policy_cnn: int  # per frame, at the policy resolution
    policy_step: int  # LSTM step + action head, per frame
    frames: int

    @property
    def uniform(self) -> list[int]:
        return [f * self.frames for f in self.backbone]

    def to_dict(self) -> dict:
        return {
            "backbone_flops": self.backbone,
            "policy_cnn_flops": self.policy_cnn,
            "policy_step_flops": self.policy_step,
            "frames": self.frames,
            "counted_by": "FlopCounterMode",
        }


def flops_table(model: ARNet, frames: int) -> FlopsTable:
    from frugalml.cost.counting import profile

    cfg = model.cfg
    bb = [2 * profile(b, torch.zeros(1, cfg.in_channels, r, r)).macs for b, r in zip(model.backbones, cfg.resolutions)]
    pc = 2 * profile(model.policy_cnn, torch.zeros(1, cfg.in_channels, cfg.policy_res, cfg.policy_res)).macs
    ps = 2 * profile(_StepOnly(model.policy_step), torch.zeros(1, cfg.feature)).macs
    return FlopsTable(bb, pc, ps, frames)


def video_flops(table: FlopsTable, actions: torch.Tensor, with_policy: bool = True) -> torch.Tensor:
    """FLOPs per video (B,) for actions (B, T): -1 = skipped over, < n_backbones = that backbone."""
    per = torch.zeros(actions.shape[0], dtype=torch.float64)
    for b, f in enumerate(table.backbone):
        per += (actions == b).sum(1).double() * f
    if with_policy:  # policy counted on every frame: an upper bound (skipped-over frames run no LSTM step)
        per += actions.shape[1] * (table.policy_cnn + table.policy_step)
    return per


@torch.no_grad()
def policy_actions(model: ARNet, x: torch.Tensor) -> torch.Tensor:
    """The policy's deterministic choices (B, T); -1 where a skip covered the frame.

    The LSTM steps only on frames that are not skipped over (those keep its state).
    """
    cfg = model.cfg
    bsz, steps = x.shape[:2]
    small = resize(x, cfg.policy_res)
    feats = model.policy_cnn(small.reshape(bsz * steps, *small.shape[2:])).reshape(bsz, steps, -1)
    if bsz == 1:
        return _single_video_actions(model, feats[0])
    h = feats.new_zeros(bsz, cfg.hidden)
    c = feats.new_zeros(bsz, cfg.hidden)
    actions = torch.full((bsz, steps), -1, dtype=torch.long)
    wait = torch.zeros(bsz, dtype=torch.long)  # frames still covered by an earlier skip
    nb = model.num_backbones
    skip_len = torch.tensor(cfg.skips)
    for t in range(steps):
        rows = (wait == 0).nonzero().flatten()
        if len(rows):
            logits, h_new, c_new = model.policy_step(feats[rows, t], h[rows], c[rows])
            h[rows], c[rows] = h_new, c_new
            a = logits.argmax(1)
            actions[rows, t] = a
            is_skip = a >= nb
            wait[rows[is_skip]] = skip_len[a[is_skip] - nb]
        wait = (wait - 1).clamp(min=0)
    return actions


def _single_video_actions(model: ARNet, feats: torch.Tensor) -> torch.Tensor:
    """`policy_actions` for one clip, with the recurrent loop in numpy.

    A torch op on a 32-vector costs microseconds of dispatch, which for a 16-step loop is
    more than the whole policy's arithmetic; the same float32 LSTM in numpy costs a few
    microseconds per step. Everything that does not depend on the LSTM state (input
    projection, the head's frame-feature term) is one matmul for all frames.
    """
    import numpy as np

    step = model.policy_step
    cell, hidden = step.cell, model.cfg.hidden
    f = feats.numpy()
    w_ih, w_hh = cell.weight_ih.numpy(), cell.weight_hh.numpy()
    gates_in = f @ w_ih.T + (cell.bias_ih + cell.bias_hh).numpy()  # T, 4H (gate order i, f, g, o)
    w_h = step.head.weight[:, :hidden].numpy()
    head_pre = f @ step.head.weight[:, hidden:].numpy().T + step.head.bias.numpy()  # T, actions
    h = np.zeros(hidden, dtype=np.float32)
    c = np.zeros(hidden, dtype=np.float32)
    nb = model.num_backbones
    skips = model.cfg.skips
    steps = f.shape[0]
    actions = [-1] * steps
    t = 0
    while t < steps:
        g = gates_in[t] + w_hh @ h
        sig = 1.0 / (1.0 + np.exp(-g))
        c = sig[hidden : 2 * hidden] * c + sig[:hidden] * np.tanh(g[2 * hidden : 3 * hidden])
        h = sig[3 * hidden :] * np.tanh(c)
        a = int(np.argmax(w_h @ h + head_pre[t]))
        actions[t] = a
        t += skips[a - nb] if a >= nb else 1
    return torch.tensor([actions])


@torch.no_grad()
def _single_video_backbones(model: ARNet, frames: torch.Tensor, actions: list[int]) -> torch.Tensor:
    total, count = None, 0
    for b, (bb, r) in enumerate(zip(model.backbones, model.cfg.resolutions)):
        idx = [t for t, a in enumerate(actions) if a == b]
        if idx:
            out = bb(resize(frames[idx], r)).sum(0)
            total = out if total is None else total + out
            count += len(idx)
    if total is None:
        return frames.new_zeros(1, model.cfg.num_classes)
    return (total / count)[None]


@torch.no_grad()
def in_chunks(fn, *tensors: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """fn over the clips in chunks (the same rows of every tensor), concatenated.

    Bounds memory: a backbone's activations for every frame of a whole test set at once
    are gigabytes, for the same result.
    """
    n = len(tensors[0])
    return torch.cat([fn(*(t[i : i + batch] for t in tensors)) for i in range(0, n, batch)])


def apply_backbones(model: ARNet, x: torch.Tensor, actions: torch.Tensor, grad: bool = False) -> torch.Tensor:
    """Fused logits (B, K): each backbone runs once, on the frames chosen for it."""
    if x.shape[0] == 1 and not grad:
        return _single_video_backbones(model, x[0], actions[0].tolist())
    with torch.set_grad_enabled(grad):
        bsz = x.shape[0]
        sums = x.new_zeros(bsz, model.cfg.num_classes)
        count = torch.zeros(bsz)
        for b, (bb, r) in enumerate(zip(model.backbones, model.cfg.resolutions)):
            vid, t = (actions == b).nonzero(as_tuple=True)
            if len(vid) == 0:
                continue
            out = bb(resize(x[vid, t], r))
            sums = sums.index_add(0, vid, out)
            count = count.index_add(0, vid, torch.ones(len(vid)))
        return sums / count.clamp(min=1.0)[:, None]


def adaptive_logits(model: ARNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The efficient path: policy, then only the chosen backbone on each chosen frame."""
    actions = policy_actions(model, x)
    return apply_backbones(model, x, actions), actions


@torch.no_grad()
def uniform_logits(model: ARNet, x: torch.Tensor, b: int) -> torch.Tensor:
    """Backbone b on every frame, logits averaged over time."""
    bsz, steps = x.shape[:2]
    bb, r = model.backbones[b], model.cfg.resolutions[b]
    return bb(resize(x.reshape(bsz * steps, *x.shape[2:]), r)).reshape(bsz, steps, -1).mean(1)


def random_actions(mix: torch.Tensor, bsz: int, steps: int, skips, nb: int, gen: torch.Generator) -> torch.Tensor:
    """Actions drawn i.i.d. from `mix` (over all actions) at every frame not skipped over."""
    actions = torch.full((bsz, steps), -1, dtype=torch.long)
    draws = torch.multinomial(mix.double(), bsz * steps, replacement=True, generator=gen).reshape(bsz, steps)
    for i in range(bsz):
        t = 0
        while t < steps:
            a = int(draws[i, t])
            actions[i, t] = a
            t += skips[a - nb] if a >= nb else 1
    return actions


def oracle_actions(informative: torch.Tensor) -> torch.Tensor:
    """Highest-resolution backbone exactly on the informative frames, nothing elsewhere."""
    return torch.where(informative, 0, -1).long()


def interleaved_ms(fns: dict, videos: list, rounds: int = 1, seed: int = 0) -> dict:
    """Median wall-clock ms per video of each function, interleaved so load hits all alike.

    Every video is run through every function in a shuffled order, one thread, no autograd
    (`frugalml.cost.latency.interleaved_calls`), with the calling thread's CPU time beside
    the wall-clock time. Returns {name: {"median_ms", "iqr_ms", "n", "cpu_median_ms"}} and
    per-video times for paired ratios.
    """
    from frugalml.cost.latency import interleaved_calls

    calls = interleaved_calls(fns, videos, rounds=rounds, seed=seed, threads=1)
    times = {k: c["wall"] for k, c in calls.items()}
    cpu = {k: c["cpu"] for k, c in calls.items()}
    out = {}
    for k, ts in times.items():
        q = torch.tensor(ts) * 1e3
        out[k] = {
            "median_ms": float(q.median()),
            "iqr_ms": float(q.quantile(0.75) - q.quantile(0.25)),
            "n": len(ts),
            "cpu_median_ms": float((torch.tensor(cpu[k]) * 1e3).median()),
        }
    return {
        "summary": out,
        "per_video_ms": {k: [t * 1e3 for t in v] for k, v in times.items()},
        "per_video_cpu_ms": {k: [t * 1e3 for t in v] for k, v in cpu.items()},
    }
