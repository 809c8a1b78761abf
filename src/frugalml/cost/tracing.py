"""Per-module counted FLOPs of one forward pass: the measurement `profile`, `accel` and `pointcloud` share.

`torch.utils.flop_counter.FlopCounterMode` counts every op it knows a formula for (2 FLOPs
per multiply-accumulate for matmul/conv/attention). Its own per-module table is inclusive
and keyed by the modules that were *on the stack*, so subtracting children from parents
goes wrong whenever the call tree is not the naming tree: a layer in a never-called
`nn.ModuleList` (the parent calls it directly) or a module another module calls would be
counted in both. Here forward hooks keep the stack of running modules instead, and each
call's FLOPs are its inclusive count minus what the calls made inside it counted: every
FLOP lands on exactly one module, the innermost one running when it was done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from frugalml.cost.formulas import Uncounted, custom
from frugalml.errors import FrugalError


def counters(formulas: dict | None = None) -> tuple[FlopCounterMode, Uncounted]:
    """A FlopCounterMode (with `formulas`' additions, then the caller's `formulas`: {aten op: fn}) and the
    watch for what it cannot count; enter both, in order. See `frugalml.cost.formulas.custom` for `fn`."""
    counter = FlopCounterMode(display=False, custom_mapping=custom(formulas))
    return counter, Uncounted(counter.flop_registry)


@dataclass
class ModuleCall:
    """One call of one module: its own FLOPs (calls made inside it excluded) and its output."""

    name: str  # qualified name, '' = the root
    type: str
    flops: int = 0
    output_shape: list[int] | None = None
    output_bytes: int = 0


@dataclass
class Trace:
    """Module calls in the order they started; `total_flops` is everything counted, in a module or not."""

    calls: list[ModuleCall] = field(default_factory=list)
    total_flops: int = 0
    uncounted_ops: list[str] = field(default_factory=list)  # ran, usually carry MACs, no formula
    op_flops: dict[str, int] = field(default_factory=dict)  # aten op name -> FLOPs, summed over the run

    def own_flops(self) -> dict[str, int]:
        """FLOPs per module name, summed over its calls."""
        out: dict[str, int] = {}
        for c in self.calls:
            out[c.name] = out.get(c.name, 0) + c.flops
        return out

    def output_shapes(self) -> dict[str, list[int]]:
        """Each module's tensor output shape (its last call's)."""
        return {c.name: c.output_shape for c in self.calls if c.output_shape is not None}

    @property
    def total_macs(self) -> int:
        return self.total_flops // 2


def as_inputs(example_input) -> tuple:
    """A tensor or a tuple of positional inputs, as a tuple."""
    return example_input if isinstance(example_input, tuple) else (example_input,)


def input_error(e: Exception, inputs: tuple, kwargs: dict | None = None) -> FrugalError:
    """The error for a model that rejected `inputs` (and `kwargs`): their shapes and the first line of what it said."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    shape = [list(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
    named = {k: list(t.shape) for k, t in (kwargs or {}).items() if isinstance(t, torch.Tensor)}
    return FrugalError(f"model does not accept input of shape {shape}{f' {named}' if named else ''}: {first}")


def op_flops(counter: FlopCounterMode) -> dict[str, int]:
    """FLOPs per aten op (e.g. 'aten.addmm') that `counter` counted, largest first."""
    counts = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items() if n}
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


class _CallStack:
    """Forward hooks on every module of a model that turn inclusive counter totals into own FLOPs per call."""

    def __init__(self, model: nn.Module, counter: FlopCounterMode, trace: Trace, on_call: Callable | None):
        self.counter, self.trace, self.on_call = counter, trace, on_call
        self.stack: list[tuple[ModuleCall, int, list[int]]] = []  # (call, total at entry, FLOPs of calls inside)
        self.handles = []
        for name, mod in model.named_modules():
            self.handles.append(mod.register_forward_pre_hook(self._enter(name)))
            self.handles.append(mod.register_forward_hook(self._exit(name), with_kwargs=True))

    def _enter(self, name: str):
        def fn(mod, _args):
            call = ModuleCall(name, type(mod).__name__)
            self.trace.calls.append(call)
            self.stack.append((call, self.counter.get_total_flops(), [0]))

        return fn

    def _exit(self, name: str):
        def fn(mod, args, kwargs, out):
            call, start, inner = self.stack.pop()
            inclusive = self.counter.get_total_flops() - start
            call.flops = inclusive - inner[0]
            if self.stack:
                self.stack[-1][2][0] += inclusive
            if isinstance(out, torch.Tensor):
                call.output_shape = list(out.shape)
                call.output_bytes = out.numel() * out.element_size()
            if self.on_call is not None:
                self.on_call(name, mod, args, kwargs, out)

        return fn

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def trace(
    model: nn.Module,
    example_input,
    grad: bool = True,
    on_call: Callable | None = None,
    kwargs: dict | None = None,
    formulas: dict | None = None,
) -> Trace:
    """Run `model(*example_input, **kwargs)` once in eval mode and count FLOPs per module call and per aten op.

    `example_input` is a tensor or a tuple of positional inputs; `formulas` ({aten op: fn})
    adds or replaces FLOP formulas for this run only.

    `grad=False` runs under `torch.no_grad()`. Autograd on is the default: under no_grad,
    eval-mode MultiheadAttention switches to a fused kernel FlopCounterMode has no formula
    for. `on_call(name, module, args, kwargs, output)` is called as each module returns.
    The model's train/eval mode is restored afterwards.
    """
    inputs = as_inputs(example_input)
    was_training = model.training
    model.eval()
    out = Trace()
    counter, watch = counters(formulas)
    stack = _CallStack(model, counter, out, on_call)
    try:
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()), counter, watch:
            model(*inputs, **(kwargs or {}))
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        raise input_error(e, inputs, kwargs) from None
    finally:
        stack.remove()
        model.train(was_training)
    out.total_flops = int(counter.get_total_flops())
    out.uncounted_ops = sorted(watch.ops)
    out.op_flops = op_flops(counter)
    return out
