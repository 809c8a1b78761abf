"""Masks over the prunable weights (Linear and Conv kernels) of a model.

A `Mask` maps parameter names (as in `model.named_parameters()`) to boolean tensors of
the same shape. Biases and normalisation parameters are never pruned, as in Frankle &
Carbin 2019. `MaskEnforcer` is the `train.fit` hook that keeps pruned weights exactly
zero: after every optimizer step it multiplies the weights *and* the optimizer's state
(SGD momentum, Adam moments) by the mask, so neither momentum nor weight decay can move
a pruned weight away from zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from frugalml.errors import FrugalError
from frugalml.tickets.config import check_rate

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_OPT_STATE = ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights IMP prunes, keyed by parameter name, in module order."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, PRUNABLE):
            out[f"{name}.weight" if name else "weight"] = m.weight
    return out


def output_layer(model: nn.Module) -> str:
    """Name of the last prunable weight: the output layer of the networks we prune."""
    names = list(prunable(model))
    if not names:
        raise FrugalError(f"{type(model).__name__} has no Linear or Conv weights to prune")
    return names[-1]


class Mask:
    def __init__(self, masks: dict[str, torch.Tensor]):
        self.masks = {k: v.detach().to(torch.bool).contiguous() for k, v in masks.items()}

    @classmethod
    def ones(cls, model: nn.Module) -> Mask:
        return cls({k: torch.ones_like(p, dtype=torch.bool) for k, p in prunable(model).items()})

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.masks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.masks)

    def items(self):
        return self.masks.items()

    def kept(self) -> int:
        return sum(int(m.sum()) for m in self.masks.values())

    def total(self) -> int:
        return sum(m.numel() for m in self.masks.values())

    def remaining(self) -> float:
        """Fraction of prunable weights kept."""
        return self.kept() / max(self.total(), 1)

    def density(self) -> dict[str, float]:
        return {k: float(m.float().mean()) for k, m in self.masks.items()}

    def check(self, model: nn.Module, where: str = "mask") -> None:
        """Raise a one-line FrugalError unless this mask fits `model` exactly."""
        params = prunable(model)
        missing = [k for k in params if k not in self.masks]
        extra = [k for k in self.masks if k not in params]
        if missing or extra:
            raise FrugalError(
                f"{where} does not fit {type(model).__name__}: "
                + (f"no mask for {missing[:3]}" if missing else f"unknown layers {extra[:3]}")
            )
        for k, p in params.items():
            if tuple(self.masks[k].shape) != tuple(p.shape):
                raise FrugalError(
                    f"{where}: layer '{k}' has mask shape {list(self.masks[k].shape)}, model weight is {list(p.shape)}"
                )

    @torch.no_grad()
    def apply(self, model: nn.Module) -> nn.Module:
        self.check(model)
        for k, p in prunable(model).items():
            p.mul_(self.masks[k].to(p.dtype))
        return model

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save

        from frugalml.files import atomic_save

        tensors = {k: v.to(torch.uint8) for k, v in self.masks.items()}
        return atomic_save(path, lambda f: f.write(save(tensors, metadata={"kind": "frugalml.tickets.mask"})))

    @classmethod
    def load(cls, path: str | Path, model: nn.Module | None = None) -> Mask:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FrugalError(f"mask file not found: {path}")
        try:
            with safe_open(str(path), framework="pt") as f:
                masks = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # safetensors raises its own error types for corrupt files
            raise FrugalError(f"cannot read mask {path}: {e}") from None
        bad = [k for k, v in masks.items() if v.dtype not in (torch.uint8, torch.bool) or bool((v > 1).any())]
        if bad:
            raise FrugalError(f"{path}: tensor '{bad[0]}' is not a 0/1 mask")
        mask = cls(masks)
        if model is not None:
            mask.check(model, where=str(path))
        return mask

    def equal(self, other: Mask) -> bool:
        return self.masks.keys() == other.masks.keys() and all(torch.equal(v, other.masks[k]) for k, v in self.items())


class MaskEnforcer:
    """`train.fit` hook: re-zero pruned weights and their optimizer state after each step."""

    def __init__(self, model: nn.Module, mask: Mask):
        mask.check(model)
        params = prunable(model)
        # Fully dense layers need no work; a dense network costs nothing extra.
        self.pairs = [(params[k], mask[k].to(params[k].dtype)) for k in mask if not bool(mask[k].all())]
        self._cache: tuple[int, list, list] | None = None

    @torch.no_grad()
    def __call__(self, model: nn.Module, optimizer: torch.optim.Optimizer, iteration: int) -> None:
        if not self.pairs:
            return
        if self._cache is None or self._cache[0] != id(optimizer) or iteration <= 1:
            tensors, masks = [], []
            for p, m in self.pairs:
                tensors.append(p)
                masks.append(m)
                state = optimizer.state.get(p, {})
                for key in _OPT_STATE:
                    v = state.get(key)
                    if isinstance(v, torch.Tensor) and v.shape == p.shape:
                        tensors.append(v)
                        masks.append(m)
            self._cache = (id(optimizer), tensors, masks)
        torch._foreach_mul_(self._cache[1], self._cache[2])


def _prune_counts(mask: Mask, rates: dict[str, float]) -> dict[str, int]:
    return {k: round(rates[k] * int(mask[k].sum())) for k in mask}


def _drop_smallest(scores: torch.Tensor, keep: torch.Tensor, n: int) -> torch.Tensor:
    """New keep-mask with the `n` smallest-scoring kept entries removed (stable ties)."""
    if n <= 0:
        return keep.clone()
    flat = torch.where(keep.flatten(), scores.flatten(), torch.tensor(-1.0, dtype=scores.dtype))
    order = torch.argsort(flat, stable=True)
    already = int((~keep).sum())
    out = keep.flatten().clone()
    out[order[: already + n]] = False
    return out.view_as(keep)


@torch.no_grad()
def prune_magnitude(
    model: nn.Module, mask: Mask, rate: float, strategy: str = "layerwise", output_rate: float | None = None
) -> Mask:
    """Remove the lowest-magnitude fraction `rate` of the weights each layer still has.

    layerwise: every layer loses `rate` of its remaining weights, the output layer
    `output_rate` (Frankle & Carbin use half the rate). global: one magnitude threshold
    across all layers removes `rate` of all remaining weights.
    """
    check_rate(rate)
    mask.check(model)
    params = prunable(model)
    if strategy == "layerwise":
        out_name = output_layer(model)
        orate = rate / 2 if output_rate is None else output_rate
        check_rate(orate, "output rate")
        rates = {k: (orate if k == out_name else rate) for k in mask}
        counts = _prune_counts(mask, rates)
        return Mask({k: _drop_smallest(params[k].abs().float(), mask[k], counts[k]) for k in mask})
    if strategy == "global":
        names = list(mask)
        scores = torch.cat([params[k].abs().float().flatten() for k in names])
        keep = torch.cat([mask[k].flatten() for k in names])
        n = round(rate * int(keep.sum()))
        new = _drop_smallest(scores, keep, n)
        out, i = {}, 0
        for k in names:
            size = mask[k].numel()
            out[k] = new[i : i + size].view_as(mask[k])
            i += size
        return Mask(out)
    raise FrugalError(f"unknown pruning strategy '{strategy}' (layerwise, global)")


def random_like(mask: Mask, seed: int) -> Mask:
    """A random mask with exactly the same number of kept weights in every layer."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, m in mask.items():
        flat = torch.zeros(m.numel(), dtype=torch.bool)
        flat[torch.randperm(m.numel(), generator=g)[: int(m.sum())]] = True
        out[k] = flat.view_as(m)
    return Mask(out)
