"""Per-layer parameters, nonzeros, MACs and FLOPs of a model on an example input.

MACs come from `frugalml.cost.tracing` (`torch.utils.flop_counter.FlopCounterMode`, which
counts 2 FLOPs per multiply-accumulate for matmul/conv/attention), so any op PyTorch knows
the formula for is covered, including functional matmuls inside a module's own `forward`;
each FLOP is attributed to the one module that was running when it was done.

Beside the per-module layers, `Profile.by_op` sums the MACs over the run per aten op
(`aten.addmm`, `aten.convolution`, the attention kernel...), so a count can be checked
against a hand formula op by op.

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
from frugalml.cost.tracing import Trace, as_inputs, counters, op_flops, trace
from frugalml.errors import FrugalError


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
    by_op: dict[str, int] = field(default_factory=dict)  # aten op -> MACs of the forward pass, largest first
    train_by_op: dict[str, int] | None = None  # aten op -> MACs of the training step (forward + backward)
    inputs: list[dict] = field(default_factory=list)  # {"name" (None: positional), "shape", "dtype"}

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
            "inputs": self.inputs,
            "uncounted_ops": self.uncounted_ops,
            "layers": [layer.to_dict() for layer in self.layers],
            "by_op": _op_dicts(self.by_op),
            "train_by_op": None if self.train_by_op is None else _op_dicts(self.train_by_op),
        }

    def cost(self) -> Cost:
        shapes = [i["shape"] if i["name"] is None else f"{i['name']}={i['shape']}" for i in self.inputs]
        note = f"{COUNTED} by FlopCounterMode on input {shapes[0] if len(shapes) == 1 else shapes}"
        return Cost(
            params=self.params,
            nonzero_params=self.nonzero_params,
            macs=self.macs,
            macs_effective=self.macs_effective,
            notes={"macs": note, "params": COUNTED},
        )


def _op_dicts(by_op: dict[str, int]) -> dict[str, dict]:
    return {op: {"macs": macs, "flops": 2 * macs} for op, macs in by_op.items()}


def _op_macs(flops: dict[str, int]) -> dict[str, int]:
    return {op: n // 2 for op, n in flops.items()}


def _describe(inputs: tuple, kwargs: dict) -> list[dict]:
    named = [(None, t) for t in inputs] + list(kwargs.items())
    return [
        {"name": k, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
        for k, t in named
        if isinstance(t, torch.Tensor)
    ]


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


def _train_flops(model: nn.Module, inputs: tuple, kwargs: dict, formulas) -> tuple[int, set[str], dict[str, int]]:
    """FLOPs of forward + backward in train mode (gradients cleared afterwards), the uncounted ops, FLOPs per op."""
    was_training = model.training
    model.train()
    counter, watch = counters(formulas)
    with counter, watch:
        out = model(*inputs, **kwargs)
        (out if isinstance(out, torch.Tensor) else out[0]).float().sum().backward()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return int(counter.get_total_flops()), watch.ops, op_flops(counter)


def profile(
    model: nn.Module,
    example_input=None,
    *,
    args: tuple = (),
    kwargs: dict | None = None,
    training: bool = False,
    formulas: dict | None = None,
) -> Profile:
    """Count params/nonzeros/MACs per layer, and per aten op, for one call `model(*args, **kwargs)`.

    `example_input` is a tensor or a tuple of positional inputs (the same as `args=`; give
    one of the two). `kwargs` are passed by name (`input_ids=..., attention_mask=...`).
    `formulas={op: fn}` adds or replaces the FLOP formula of an aten op (`torch.ops.aten.mm`
    or 'aten.mm') for this count: `fn(*args, out_shape=..., **kwargs)` gets the op's arguments
    with tensors replaced by their shapes and returns FLOPs (2 per multiply-accumulate).
    With `training=True` forward + backward is run as well and `train_flops` holds what a
    training step on that batch costs (counted, not assumed to be 3x forward).
    """
    positional = tuple(args) if isinstance(args, (tuple, list)) else (args,)  # a lone tensor is one input
    if example_input is not None and positional:
        raise FrugalError("give the positional inputs once: example_input or args=, not both")
    inputs = as_inputs(example_input) if example_input is not None else positional
    kwargs = dict(kwargs or {})
    traced = trace(model, inputs, kwargs=kwargs, formulas=formulas)
    layers = _layers(model, traced)
    params = list(model.parameters())
    train_flops, uncounted, train_ops = (
        _train_flops(model, inputs, kwargs, formulas) if training else (None, set(), None)
    )
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
        input_shape=list(inputs[0].shape) if len(inputs) == 1 and not kwargs and hasattr(inputs[0], "shape") else None,
        uncounted_ops=uncounted,
        by_op=_op_macs(traced.op_flops),
        train_by_op=None if train_ops is None else _op_macs(train_ops),
        inputs=_describe(inputs, kwargs),
    )


def uncounted_warning(ops: list[str]) -> str:
    return f"not counted (no FLOP formula; the count is too low): {', '.join(ops)}"
