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

import contextlib
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
    if bsz == 1:
        return torch.tensor([_single_video_actions(model, x[0])])
    small = resize(x, cfg.policy_res)
    feats = model.policy_cnn(small.reshape(bsz * steps, *small.shape[2:])).reshape(bsz, steps, -1)
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


class _NumpyStep:
    """The policy's LSTM step and action head as float32 numpy arrays, prepared once per set of weights.

    A torch op on a 32-vector costs microseconds of dispatch, which for a 16-step loop is
    more than the whole policy's arithmetic. Prepared so that a step is one matrix-vector
    product and one tanh for all four gates: the recurrent gate weights and the head's state
    weights are stacked (the product that ends step t also starts step t+1), and the sigmoid
    gates' rows are halved (sigmoid(x) = (1 + tanh(x / 2)) / 2).
    """

    def __init__(self, model: ARNet):
        import numpy as np

        step, hidden = model.policy_step, model.cfg.hidden
        cell = step.cell
        scale = np.full(4 * hidden, 0.5, dtype=np.float32)  # gate order i, f, g, o; g is a tanh already
        scale[2 * hidden : 3 * hidden] = 1.0
        w_ih, w_hh = cell.weight_ih.detach().numpy(), cell.weight_hh.detach().numpy()
        self.w_in = np.ascontiguousarray((w_ih * scale[:, None]).T)  # feature, 4H
        self.b_in = ((cell.bias_ih + cell.bias_hh).detach().numpy() * scale).astype(np.float32)
        head = step.head.weight.detach().numpy()
        self.w_rec = np.ascontiguousarray(np.concatenate([w_hh * scale[:, None], head[:, :hidden]]))  # 4H + A, H
        self.w_head = np.ascontiguousarray(head[:, hidden:].T)  # feature, A
        self.b_head = step.head.bias.detach().numpy().copy()
        self.hidden = hidden
        self.key = _weights_key(step)


def _weights_key(module: nn.Module) -> tuple:
    """Changes whenever a parameter is replaced or updated in place (an optimizer step, load_state_dict)."""
    return tuple((p.data_ptr(), p._version) for p in module.parameters())


def _numpy_step(model: ARNet) -> _NumpyStep:
    prepared = model.__dict__.get("_numpy_step")
    if prepared is None or prepared.key != _weights_key(model.policy_step):
        prepared = _NumpyStep(model)
        model.__dict__["_numpy_step"] = prepared
    return prepared


def _single_video_actions(model: ARNet, clip: torch.Tensor) -> list[int]:
    """`policy_actions` for one clip (T, C, H, W): the policy CNN on all frames in one call, the
    input projections of all frames in one matmul, then the recurrent loop in numpy."""
    import numpy as np

    ps = _numpy_step(model)
    feats = model.policy_cnn(resize(clip, model.cfg.policy_res)).numpy()
    gates_in = feats @ ps.w_in + ps.b_in  # T, 4H (sigmoid gates halved)
    head_in = feats @ ps.w_head + ps.b_head  # T, A
    hid = ps.hidden
    c = np.zeros(hid, dtype=np.float32)
    rec = np.zeros(ps.w_rec.shape[0], dtype=np.float32)  # w_rec @ h for h = 0
    nb, skips = model.num_backbones, model.cfg.skips
    steps = feats.shape[0]
    actions = [-1] * steps
    t = 0
    while t < steps:
        u = np.tanh(gates_in[t] + rec[: 4 * hid])  # i, f, o: 2 sigmoid - 1; g: tanh
        s = u * 0.5 + 0.5
        c = s[hid : 2 * hid] * c + s[:hid] * u[2 * hid : 3 * hid]
        rec = ps.w_rec @ (s[3 * hid :] * np.tanh(c))
        a = int(np.argmax(rec[4 * hid :] + head_in[t]))
        actions[t] = a
        t += skips[a - nb] if a >= nb else 1
    return actions


def _single_video_backbones(model: ARNet, frames: torch.Tensor, actions: list[int]) -> torch.Tensor:
    """Fused logits (1, K) of one clip: each chosen backbone runs once, on all the frames chosen for it."""
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
        with torch.no_grad():
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
    """The efficient path: policy, then only the chosen backbone on each chosen frame.

    One clip (the latency case) goes straight through: policy in one CNN call and a numpy loop,
    then one call per chosen backbone on all of its frames, with no autograd bookkeeping.
    """
    if x.shape[0] == 1:
        with contextlib.nullcontext() if torch.is_inference_mode_enabled() else torch.inference_mode():
            actions = _single_video_actions(model, x[0])
            return _single_video_backbones(model, x[0], actions), torch.tensor([actions])
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
