"""Per-layer parameters, nonzeros, MACs and FLOPs of a model on an example input.

MACs come from `frugalml.cost.tracing` (`torch.utils.flop_counter.FlopCounterMode`, which
counts 2 FLOPs per multiply-accumulate for matmul/conv/attention), so any op PyTorch knows
the formula for is covered, including functional matmuls inside a module's own `forward`;
each FLOP is attributed to the one module that was running when it was done.

Sparsity: a layer's *effective* MACs are its dense MACs scaled by the fraction of its
weight tensor that is nonzero, i.e. the MACs a sparse kernel would have to do. Layers
without weights (attention score products, pooling) keep effective = dense.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from frugalml.cost.currency import COUNTED, Cost
from frugalml.cost.tracing import Trace, as_inputs, counters, trace


@dataclass
class LayerProfile:
    name: str
    type: str
    params: int
    nonzero_params: int
    macs: int
    macs_effective: int
    output_shape: list[int] | None = None

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict:
        return asdict(self) | {"flops": self.flops, "flops_effective": 2 * self.macs_effective}


@dataclass
class Profile:
    params: int
    nonzero_params: int
    macs: int
    macs_effective: int
    param_bytes: int
    activation_bytes: int
    train_flops: int | None
    layers: list[LayerProfile] = field(default_factory=list)
    input_shape: list[int] | None = None
    uncounted_ops: list[str] = field(default_factory=list)  # ran, usually carry MACs, had no formula

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict:
        return {
            "params": self.params,
            "nonzero_params": self.nonzero_params,
            "macs": self.macs,
            "macs_effective": self.macs_effective,
            "flops": self.flops,
            "flops_effective": 2 * self.macs_effective,
            "train_flops": self.train_flops,
            "param_bytes": self.param_bytes,
            "activation_bytes": self.activation_bytes,
            "input_shape": self.input_shape,
            "uncounted_ops": self.uncounted_ops,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def cost(self) -> Cost:
        note = f"{COUNTED} by FlopCounterMode on input {self.input_shape}"
        return Cost(
            params=self.params,
            nonzero_params=self.nonzero_params,
            macs=self.macs,
            macs_effective=self.macs_effective,
            notes={"macs": note, "params": COUNTED},
        )


def _nonzero_fraction(module: nn.Module) -> float:
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor) or w.numel() == 0:
        return 1.0
    return float(torch.count_nonzero(w.detach())) / w.numel()


def _nonzeros(params) -> int:
    return sum(int(torch.count_nonzero(p.detach())) for p in params)


def _layers(model: nn.Module, traced: Trace) -> list[LayerProfile]:
    """Every module with parameters of its own or FLOPs of its own, in `named_modules` order."""
    flops, shapes = traced.own_flops(), traced.output_shapes()
    layers = []
    for name, mod in model.named_modules():
        own_flops = flops.get(name, 0)
        own_params = list(mod.parameters(recurse=False))
        if not own_params and own_flops <= 0:
            continue
        macs = own_flops // 2
        layers.append(
            LayerProfile(
                name=name or "(root)",
                type=type(mod).__name__,
                params=sum(p.numel() for p in own_params),
                nonzero_params=_nonzeros(own_params),
                macs=macs,
                macs_effective=round(macs * _nonzero_fraction(mod)),
                output_shape=shapes.get(name),
            )
        )
    return layers


def _train_flops(model: nn.Module, inputs: tuple) -> tuple[int, set[str]]:
    """FLOPs of forward + backward on `inputs` in train mode (gradients cleared afterwards), and the uncounted ops."""
    was_training = model.training
    model.train()
    counter, watch = counters()
    with counter, watch:
        out = model(*inputs)
        (out if isinstance(out, torch.Tensor) else out[0]).float().sum().backward()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return int(counter.get_total_flops()), watch.ops


def profile(model: nn.Module, example_input, training: bool = False) -> Profile:
    """Count params/nonzeros/MACs per layer for one forward pass on `example_input`.

    `example_input` is a tensor or a tuple of positional inputs. With `training=True`
    forward + backward is run as well and `train_flops` holds what a training step on
    that batch costs (counted, not assumed to be 3x forward).
    """
    inputs = as_inputs(example_input)
    traced = trace(model, inputs)
    layers = _layers(model, traced)
    params = list(model.parameters())
    train_flops, uncounted = _train_flops(model, inputs) if training else (None, set())
    uncounted = sorted(uncounted | set(traced.uncounted_ops))
    if uncounted:
        warnings.warn(uncounted_warning(uncounted), RuntimeWarning, stacklevel=2)
    return Profile(
        params=sum(p.numel() for p in params),
        nonzero_params=_nonzeros(params),
        macs=sum(layer.macs for layer in layers),
        macs_effective=sum(layer.macs_effective for layer in layers),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        # the root's output is already counted as its last layer's
        activation_bytes=sum(c.output_bytes for c in traced.calls if c.name),
        train_flops=train_flops,
        layers=layers,
        input_shape=[list(t.shape) for t in inputs][0] if len(inputs) == 1 else None,
        uncounted_ops=uncounted,
    )


def uncounted_warning(ops: list[str]) -> str:
    return f"not counted (no FLOP formula; the count is too low): {', '.join(ops)}"
