"""Structured tickets: prune whole channels, units and attention heads, then remove them for real.

The coupling between layers (a conv's output channels, the BatchNorm after it, every conv
that reads them, all the branches of a residual add, the q/k/v/out projections of one
attention head) comes from torch-pruning's dependency graph, traced from one example input,
not from per-architecture code. A *group* is one such set of coupled channels, named by its
root module; a *plan* maps each root to the channel indices (of the unpruned model) removed.

- `prune_structures` extends a plan by norm: every group loses `rate` of its live channels
  (layerwise) or one threshold over all groups' RMS channel norms removes `rate` of them
  (global). Attention groups lose whole heads.
- `param_mask` is the plan as a mask over *every* parameter (weights, biases, norm affines),
  found by letting torch-pruning remove the plan from a copy whose entries hold their own
  ids, so the masked model and the compact one zero and remove exactly the same entries.
- `compact` removes the channels a trained model no longer uses (every weight that reads
  them is zero) and checks that the compact model computes the same outputs; `rebuild`
  replays the recorded removals on a fresh model so an export loads without pickle.

Groups left alone: the network's output layer, and any group with a LayerNorm, GroupNorm,
InstanceNorm, Embedding, recurrent or nn.MultiheadAttention layer or a grouped (not
depthwise) conv, whose statistics or shapes change when a zero channel is removed.
An attention module exposes its heads through an int `head_dim` (or `num_heads`) attribute
over child Linear q/k/v layers; its `num_heads` is updated after heads are removed.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from frugalml.errors import FrugalError

STRUCTURES = ("none", "channels", "heads")
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_UNSAFE = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.Embedding,
    nn.MultiheadAttention,
    nn.RNNBase,
)


def _tp():
    try:
        import torch_pruning
    except ImportError:  # pragma: no cover - a core dependency
        raise FrugalError("structured pruning needs torch-pruning: pip install 'torch-pruning>=1.5'") from None
    return torch_pruning


def _as_tuple(example) -> tuple:
    return tuple(example) if isinstance(example, (tuple, list)) else (example,)


def graph(model: nn.Module, example):
    """torch-pruning's dependency graph of `model`, traced on `example`; FrugalError if it cannot be traced."""
    tp = _tp()
    was = model.training
    model.eval()
    try:
        with torch.enable_grad():
            return tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)
    except Exception as e:  # tracing runs the user's forward: any error is a graph we cannot handle
        raise FrugalError(
            f"cannot trace {type(model).__name__} for structured pruning: {type(e).__name__}: {e}"
        ) from None
    finally:
        model.train(was)


def output_modules(model: nn.Module, example) -> set[nn.Module]:
    """Weighted layers whose output is the network's output, and the last one run."""
    seen: list[tuple[nn.Module, object]] = []  # the tensors themselves: an id is reused once a tensor is freed
    hooks = [
        m.register_forward_hook(lambda mod, i, o: seen.append((mod, o)))
        for m in model.modules()
        if isinstance(m, _WEIGHTED)
    ]
    try:
        out = _run(model, example)
    finally:
        for h in hooks:
            h.remove()
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    found = {m for m, o in seen if any(o is t for t in outs)}
    if seen:
        found.add(seen[-1][0])
    return found


def _head_block(model: nn.Module, module: nn.Module) -> int | None:
    """Channels per head when `module` is a child Linear of an attention module, else None."""
    for parent in model.modules():
        if any(c is module for c in parent.children()):
            hd, nh = getattr(parent, "head_dim", None), getattr(parent, "num_heads", None)
            if isinstance(hd, int) and hd > 0:
                return hd
            if isinstance(nh, int) and nh > 0 and isinstance(module, nn.Linear) and module.out_features % nh == 0:
                return module.out_features // nh
    return None


class Group:
    """One set of coupled channels: root module name, channel count, head size, and its torch-pruning group."""

    def __init__(self, name: str, module: nn.Module, tp_group, block: int):
        self.name, self.module, self.tp_group, self.block = name, module, tp_group, block
        self.size = len(tp_group[0][1])

    def producers(self):
        """(module, index entries) of the weighted layers whose output channels this group removes."""
        return [(d.target.module, i) for d, i in self.tp_group if isinstance(d.target.module, _WEIGHTED) and _is_out(d)]

    def consumers(self):
        """(module, index entries) of the weighted layers that read this group's channels."""
        return [
            (d.target.module, i) for d, i in self.tp_group if isinstance(d.target.module, _WEIGHTED) and not _is_out(d)
        ]


def _is_out(dep) -> bool:
    return dep.handler.__name__ == "prune_out_channels"


def groups(model: nn.Module, example, structure: str = "channels", dg=None) -> list[Group]:
    """The channel groups `structure` may prune, in module order (see the module docstring for what is left alone)."""
    if structure not in STRUCTURES or structure == "none":
        raise FrugalError(f"unknown structure '{structure}' (channels, heads)")
    dg = dg or graph(model, example)
    names = {m: n for n, m in model.named_modules()}
    skip = list(output_modules(model, example))
    out = []
    for g in dg.get_all_groups(ignored_layers=skip, root_module_types=_WEIGHTED):
        root = g[0][0].target.module
        mods = [dep.target.module for dep, _ in g]
        removed = [dep.target.module for dep, _ in g if _is_out(dep)]
        if any(isinstance(m, _UNSAFE) for m in mods) or any(m is s for m in removed for s in skip):
            continue
        if any(isinstance(m, nn.modules.conv._ConvNd) and 1 < m.groups != m.in_channels for m in mods):
            continue
        blocks = {_head_block(model, m) for m in mods if isinstance(m, nn.Linear)} - {None}
        block = max(blocks) if blocks else 1
        if structure == "heads" and block == 1:
            continue
        grp = Group(names[root], root, g, block)
        if grp.size % block == 0:
            out.append(grp)
    return out


def _plain(idxs) -> tuple[list[int], list[int]]:
    """(indices in the layer, indices in the group's root) of torch-pruning index entries."""
    return [int(getattr(i, "idx", i)) for i in idxs], [int(getattr(i, "root_idx", i)) for i in idxs]


def _root_channels(roots: list[int], size: int) -> torch.Tensor:
    """Root indices as channels of the group: after a flatten, torch-pruning numbers a Linear's inputs
    in the flattened space (channel c feeds features c*k .. c*k+k-1, NCHW order), so divide by k."""
    t = torch.tensor(roots)
    if len(roots) > size and len(roots) % size == 0 and int(t.max()) >= size:
        t = t // (len(roots) // size)
    return t


@torch.no_grad()
def channel_scores(group: Group) -> tuple[torch.Tensor, torch.Tensor]:
    """(squared L2 norm, weights counted) per root channel, summed over the group's producing layers."""
    sq = torch.zeros(group.size, dtype=torch.float64)
    count = torch.zeros(group.size, dtype=torch.float64)
    for m, idxs in group.producers():
        plain, roots = _plain(idxs)
        w = m.weight.detach().double().flatten(1)
        sq.index_add_(0, _root_channels(roots, group.size), w[plain].pow(2).sum(1))
        count.index_add_(
            0, _root_channels(roots, group.size), torch.full((len(roots),), float(w.shape[1]), dtype=torch.float64)
        )
    return sq, count


def _units(group: Group, plan: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per unit (channel, or head of `block` channels): RMS weight norm, squared norm, and whether it is alive."""
    sq, count = channel_scores(group)
    dead = torch.zeros(group.size, dtype=torch.bool)
    dead[list(plan.get(group.name, []))] = True
    b = group.block
    sq, count, dead = sq.view(-1, b).sum(1), count.view(-1, b).sum(1), dead.view(-1, b).all(1)
    return (sq / count.clamp(min=1)).sqrt(), sq, ~dead


def prune_structures(
    model: nn.Module, example, plan: dict, rate: float, strategy: str = "layerwise", structure: str = "channels"
) -> dict:
    """The plan with `rate` of the live units removed by weight norm; every group keeps at least one unit.

    layerwise: each group loses round(rate * its live units), smallest L2 norm first. global: one
    threshold over all groups' RMS norms (norm / sqrt(weights per unit), comparable across layers).
    """
    from frugalml.tickets.config import check_rate

    check_rate(rate)
    gs = groups(model, example, structure)
    if not gs:
        raise FrugalError(f"{type(model).__name__} has no {structure} that can be pruned structurally")
    new = {k: sorted(v) for k, v in plan.items()}
    if strategy == "layerwise":
        for g in gs:
            rms, sq, alive = _units(g, plan)
            n = min(round(rate * int(alive.sum())), int(alive.sum()) - 1)
            _drop(new, g, torch.where(alive, sq, torch.inf), n)
        return new
    if strategy != "global":
        raise FrugalError(f"unknown pruning strategy '{strategy}' (layerwise, global)")
    units = [(g, *_units(g, plan)) for g in gs]
    scores = torch.cat([torch.where(alive, rms, torch.inf) for _, rms, _, alive in units])
    n = round(rate * sum(int(a.sum()) for *_, a in units))
    threshold = torch.sort(scores).values[n - 1] if n > 0 else -torch.inf
    for g, rms, _, alive in units:
        below = int(((rms <= threshold) & alive).sum())
        _drop(new, g, torch.where(alive, rms, torch.inf), min(below, int(alive.sum()) - 1))
    return new


def random_plan(model: nn.Module, example, plan: dict, seed: int, structure: str = "channels") -> dict:
    """A plan removing as many units from each group as `plan` does, chosen at random (the random control)."""
    g_ = torch.Generator().manual_seed(seed)
    out = {}
    for g in groups(model, example, structure):
        n = len(plan.get(g.name, [])) // g.block
        if n:
            units = torch.randperm(g.size // g.block, generator=g_)[:n]
            out[g.name] = sorted(int(u) * g.block + j for u in units for j in range(g.block))
    return out


def _drop(plan: dict, group: Group, scores: torch.Tensor, n: int) -> None:
    """Add the channels of the `n` lowest-scoring units of `group` to `plan` (stable ties)."""
    if n <= 0:
        return
    units = torch.argsort(scores, stable=True)[:n]
    b = group.block
    chans = [int(u) * b + j for u in units for j in range(b)]
    plan[group.name] = sorted(set(plan.get(group.name, [])) | set(chans))


def _heads_before(model: nn.Module) -> list[tuple[nn.Module, nn.Linear, int, int]]:
    """(attention module, child Linear, its width, head size) of every module with heads."""
    out = []
    for parent in model.modules():
        nh, hd = getattr(parent, "num_heads", None), getattr(parent, "head_dim", None)
        if not isinstance(nh, int) or nh < 1 or isinstance(parent, nn.MultiheadAttention):
            continue
        for child in parent.children():
            if isinstance(child, nn.Linear):
                size = hd if isinstance(hd, int) and hd > 0 else child.out_features // nh
                if child.out_features == nh * size:
                    out.append((parent, child, child.out_features, size))
    return out


def _update_heads(before: list) -> None:
    for parent, child, width, size in before:
        if child.out_features != width:
            parent.num_heads = child.out_features // size


def apply_plan(model: nn.Module, example, plan: dict, dg=None):
    """Remove the plan's channels from `model` in place; returns the dependency graph (its history replays it)."""
    dg = dg or graph(model, example)
    heads = _heads_before(model)
    order = [n for n, _ in model.named_modules() if plan.get(n)]
    for name in order:
        module = model.get_submodule(name)
        pruner = dg.get_pruner_of_module(module)
        dg.get_pruning_group(module, pruner.prune_out_channels, sorted(plan[name])).prune()
    _update_heads(heads)
    return dg


def _double(example):
    conv = lambda t: t.double() if isinstance(t, torch.Tensor) and t.is_floating_point() else t  # noqa: E731
    return tuple(conv(t) for t in example) if isinstance(example, (tuple, list)) else conv(example)


def param_mask(model: nn.Module, example, plan: dict) -> dict[str, torch.Tensor]:
    """The plan as a keep-mask over every parameter of `model` (the entries `apply_plan` would remove are False)."""
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in model.named_parameters()}
    if not any(plan.values()):
        return masks
    twin = copy.deepcopy(model).double().eval()
    dg = graph(twin, _double(example))
    ids, start = {}, 0
    with torch.no_grad():
        for n, p in twin.named_parameters():
            ids[n] = torch.arange(start, start + p.numel(), dtype=torch.float64).view_as(p)
            p.copy_(ids[n])
            start += p.numel()
    apply_plan(twin, _double(example), plan, dg)
    after = dict(twin.named_parameters())
    return {n: torch.isin(ids[n], after[n].detach().flatten()) for n in masks}


@torch.no_grad()
def apply_mask(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    params = dict(model.named_parameters())
    for n, m in masks.items():
        params[n].mul_(m.to(params[n].dtype))
    return model


def enforcer(model: nn.Module, masks: dict[str, torch.Tensor]):
    """A `MaskEnforcer` over every masked parameter (biases and norm affines included)."""
    from frugalml.tickets.masks import MaskEnforcer

    hook = MaskEnforcer.__new__(MaskEnforcer)
    params = dict(model.named_parameters())
    hook.pairs = [(params[n], m.to(params[n].dtype)) for n, m in masks.items() if not bool(m.all())]
    hook._cache = None
    return hook


def weight_mask(model: nn.Module, masks: dict[str, torch.Tensor]):
    """The `Mask` (Linear and Conv weights only) of a full parameter mask, as unstructured tickets store it."""
    from frugalml.tickets.masks import Mask, prunable

    return Mask({k: masks[k] for k in prunable(model)})


@torch.no_grad()
def unused_channels(model: nn.Module, example, dg=None) -> dict:
    """A plan of the channels no layer reads (every weight that reads them is zero); each group keeps one unit."""
    plan = {}
    for g in groups(model, example, "channels", dg=dg):
        readers = g.consumers()
        if not readers:
            continue
        reads = torch.zeros(g.size)
        for m, idxs in readers:
            plain, roots = _plain(idxs)
            nonzero = (m.weight.detach().transpose(0, 1).flatten(1) != 0).any(1)
            reads.index_add_(0, _root_channels(roots, g.size), nonzero[plain].to(reads.dtype))
        used = reads > 0
        units = ~used.view(-1, g.block).any(1)
        if bool(units.all()):
            units[0] = False
        if bool(units.any()):
            plan[g.name] = [int(u) * g.block + j for u in torch.nonzero(units).flatten() for j in range(g.block)]
    return plan


def _run(model: nn.Module, example):
    """`model(example)` without gradients; an error in the user's forward is one FrugalError line."""
    try:
        with torch.no_grad():
            return model(*_as_tuple(example))
    except Exception as e:
        what = f"{type(e).__name__}: {e}".splitlines()[0]
        raise FrugalError(f"cannot trace {type(model).__name__} for structured pruning: {what}") from None


def _outputs(model: nn.Module, example) -> list[torch.Tensor]:
    out = _run(model, example)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def same_outputs(a: list[torch.Tensor], b: list[torch.Tensor]) -> float | None:
    """None when `a` and `b` agree at float32 tolerances, else the largest difference."""
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return math.inf
        scale = float(x.abs().max()) if x.numel() else 0.0
        if not torch.allclose(x, y, rtol=1e-4, atol=1e-5 * max(1.0, scale)):
            return float((x - y).abs().max())
    return None


def compact(model: nn.Module, example=None, base: dict | None = None) -> tuple[nn.Module, dict]:
    """`model` with the channels no layer reads removed, computing the same outputs, and how to rebuild it.

    The frugalml MLP keeps its own exact compaction (dead units folded into the next bias).
    Any other model needs `example` (to trace its graph) and `base` ({"model", "kwargs"}: how
    `models.get` builds the unpruned network, so an export can replay the removals).
    """
    from frugalml.models.small import MLP

    if isinstance(model, MLP):
        return compact_mlp(model)
    if example is None:
        raise FrugalError(f"compacting {type(model).__name__} needs an example input to trace its graph")
    shrunk = copy.deepcopy(model).eval()
    ref = _outputs(shrunk, example)
    dg = graph(shrunk, example)
    before = {n: p.numel() for n, p in shrunk.named_parameters()}
    plan = unused_channels(shrunk, example, dg)
    apply_plan(shrunk, example, plan, dg)
    diff = same_outputs(ref, _outputs(shrunk, example))
    if diff is not None:
        raise FrugalError(
            f"cannot shrink {type(model).__name__}: removing its unused channels changed the outputs "
            f"(max difference {diff:.3g}); its graph has an op the dependency tracer does not follow"
        )
    ex = _as_tuple(example)[0]
    arch = dict(base or {"model": None, "kwargs": {}})
    arch |= {
        "pruning": [[str(n), bool(o), [int(i) for i in idx]] for n, o, idx in dg.pruning_history()],
        "example_shape": list(ex.shape),
        "example_dtype": str(ex.dtype).removeprefix("torch."),
        "channels_removed": {k: len(v) for k, v in plan.items()},
        "params_before": sum(before.values()),
        "params_after": sum(p.numel() for p in shrunk.parameters()),
    }
    return shrunk, arch


def rebuild(model: nn.Module, arch: dict) -> nn.Module:
    """Replay an export's recorded removals (`compact`'s arch) on a freshly built unpruned `model`."""
    if not arch.get("pruning"):
        return model
    example = torch.zeros(arch["example_shape"], dtype=getattr(torch, arch.get("example_dtype", "float32")))
    dg = graph(model, example)
    heads = _heads_before(model)
    try:
        dg.load_pruning_history([tuple(h) for h in arch["pruning"]])
    except Exception as e:
        raise FrugalError(f"cannot replay the export's channel removals on {type(model).__name__}: {e}") from None
    _update_heads(heads)
    return model.eval()


@torch.no_grad()
def compact_mlp(model: nn.Module) -> tuple[nn.Module, dict]:
    """The frugalml MLP with empty hidden units removed, computing the same function.

    A unit whose outgoing weights are all zero is dropped; one whose incoming weights are all
    zero outputs the constant relu(bias), folded into the next layer's bias before it is dropped.
    Repeated until nothing changes."""
    from frugalml.models.small import MLP

    layers = [m for m in model.features if isinstance(m, nn.Linear)] + [model.fc]
    ws = [lin.weight.detach().clone() for lin in layers]
    bs = [lin.bias.detach().clone() for lin in layers]
    before = [w.shape[0] for w in ws[:-1]]
    changed = True
    while changed:
        changed = False
        for i in range(len(ws) - 1):  # hidden layer i: rows of ws[i], columns of ws[i + 1]
            no_out = (ws[i + 1] == 0).all(0)
            no_in = (ws[i] == 0).all(1)
            drop = no_out | no_in
            if not bool(drop.any()):
                continue
            const = torch.relu(bs[i]) * (no_in & ~no_out)  # constant activations to fold forward
            bs[i + 1] = bs[i + 1] + ws[i + 1] @ const
            keep = ~drop
            ws[i], bs[i] = ws[i][keep], bs[i][keep]
            ws[i + 1] = ws[i + 1][:, keep]
            changed = True
    for i in range(len(ws) - 1):
        if ws[i].shape[0] == 0:  # every path is cut: the output is constant; one zero unit keeps shapes valid
            ws[i], bs[i] = torch.zeros(1, ws[i].shape[1]), torch.zeros(1)
            ws[i + 1] = torch.zeros(ws[i + 1].shape[0], 1)
    hidden = [w.shape[0] for w in ws[:-1]]
    out = MLP(ws[0].shape[1], tuple(hidden), ws[-1].shape[0])
    for lin, w, b in zip([m for m in out.features if isinstance(m, nn.Linear)] + [out.fc], ws, bs):
        lin.weight.copy_(w)
        lin.bias.copy_(b)
    arch = {"model": "mlp", "kwargs": {"in_features": ws[0].shape[1], "hidden": hidden, "num_classes": ws[-1].shape[0]}}
    return out, arch | {"hidden_before": before}
