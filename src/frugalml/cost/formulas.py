"""FLOP formulas PyTorch's counter lacks or gets wrong, and a watch for ops it cannot count.

Registered once, on import, in `torch.utils.flop_counter`'s registry (so every
`FlopCounterMode` made afterwards uses them):

- the CPU flash-attention kernel that `scaled_dot_product_attention` (and so
  `nn.MultiheadAttention`) runs here, forward and backward;
- the fused oneDNN recurrent layer (`aten.mkldnn_rnn_layer`, what `nn.LSTM` runs on CPU):
  per step and sequence, gates x hidden x (input + hidden) MACs; its backward computes the
  input and weight gradients, 2x forward. GRU and plain RNN decompose into counted matmuls;
- matrix-vector and dot products (`mv`, `addmv`, `dot`, `vdot`), which it has no formula for;
- the convolution backward: PyTorch's formula ignores `groups` for the weight gradient and
  counts a depthwise conv's backward ~groups times too high; here each gradient a
  convolution backward computes costs what its forward did (grad input a transposed conv,
  grad weight a conv, each with the same multiply-accumulates).

`custom` turns a caller's own formulas ({op: fn}) into a `FlopCounterMode(custom_mapping=...)`
for one count, leaving this registry alone.

`Uncounted` records ops that ran, usually carry multiply-accumulates and had no formula, so a
count is never a silent zero.
"""

from __future__ import annotations

import math
import re

import torch
from torch.utils import flop_counter as fc
from torch.utils._python_dispatch import TorchDispatchMode

from frugalml.errors import FrugalError

aten = torch.ops.aten

# parts of an op's name (split at "_") that say it usually does multiply-accumulates
_MAC_PARTS = {"mm", "addmm", "bmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "vdot", "matmul", "einsum", "linear"}
_MAC_PARTS |= {"tensordot", "rnn", "lstm", "gru", "conv", "convolution", "attention"}


def carries_macs(op_name: str) -> bool:
    """Whether an aten op of this name usually does multiply-accumulates (mm, conv, rnn, attention...)."""
    return any(part in _MAC_PARTS or re.fullmatch(r"conv\d+d|conv_tbc", part) for part in op_name.split("_"))


def _register(op, fn, replace: bool = False) -> None:
    if op is None:
        return
    if replace:
        fc.flop_registry.pop(op, None)
    if op not in fc.flop_registry:
        fc.register_flop_formula(op)(fn)


def _cpu_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return fc.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_bwd(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kw) -> int:
    return fc.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _rnn_layer_macs(input_shape, w_ih_shape, w_hh_shape) -> int:
    """One layer, one direction: every (step, sequence) does w_ih @ x and w_hh @ h."""
    positions = math.prod(input_shape[:-1])  # (T, B) or (B, T), or packed (sum of lengths,)
    return positions * (math.prod(w_ih_shape) + math.prod(w_hh_shape))


def _mkldnn_rnn_layer(input_shape, w0, w1, *args, out_shape=None, **kwargs) -> int:
    return 2 * _rnn_layer_macs(input_shape, w0, w1)


def _mkldnn_rnn_layer_bwd(input_shape, w1, w2, *args, out_shape=None, **kwargs) -> int:
    return 2 * 2 * _rnn_layer_macs(input_shape, w1, w2)


def _conv_backward(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed, *rest, **kw):
    output_mask = rest[2]
    # a conv's MACs: each output position x each weight (w is [out, in/groups, k...], or
    # [in, out/groups, k...] transposed, where each *input* position meets each weight)
    spatial = x_shape[2:] if transposed else grad_out_shape[2:]
    forward_macs = grad_out_shape[0] * math.prod(spatial) * math.prod(w_shape)
    return 2 * forward_macs * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def _mv(matrix_shape, vector_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * math.prod(matrix_shape)  # each matrix entry meets one vector entry


def _addmv(_self_shape, matrix_shape, vector_shape, *args, out_shape=None, **kwargs) -> int:
    return _mv(matrix_shape, vector_shape)


def _dot(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * math.prod(a_shape)


def register_all() -> None:
    _register(getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None), _cpu_sdpa)
    _register(getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None), _cpu_sdpa_bwd)
    _register(getattr(aten, "mkldnn_rnn_layer", None), _mkldnn_rnn_layer)
    _register(getattr(aten, "mkldnn_rnn_layer_backward", None), _mkldnn_rnn_layer_bwd)
    _register(aten.convolution_backward, _conv_backward, replace=True)
    for op, fn in [(aten.mv, _mv), (aten.addmv, _addmv), (aten.dot, _dot), (aten.vdot, _dot)]:
        _register(op, fn)


def _op_packet(op):
    """An aten op given as `aten.mm`, `aten.mm.default` or the name 'aten.mm' / 'mm', as its overload packet."""
    if isinstance(op, str):
        name = op.removeprefix("aten.").split(".")[0]
        packet = getattr(aten, name, None) if name.isidentifier() else None
        if not isinstance(packet, torch._ops.OpOverloadPacket):
            raise FrugalError(f"unknown aten op '{op}' in formulas (e.g. 'aten.mm')")
        return packet
    if isinstance(op, torch._ops.OpOverload):
        return op.overloadpacket
    if isinstance(op, torch._ops.OpOverloadPacket):
        return op
    raise FrugalError(f"formulas keys are aten ops (torch.ops.aten.mm or 'aten.mm'), not {op!r}")


def custom(formulas: dict | None) -> dict:
    """`{op: fn}` as FlopCounterMode's `custom_mapping`, keyed by overload packet.

    `fn(*args, out_shape=..., **kwargs) -> FLOPs` gets the op's arguments with every tensor
    replaced by its shape (torch.utils.flop_counter's convention: 2 FLOPs per multiply-accumulate).
    """
    out = {}
    for op, fn in (formulas or {}).items():
        if not callable(fn):
            raise FrugalError(f"the formula for '{op}' is not callable")
        out[_op_packet(op)] = fn
    return out


class Uncounted(TorchDispatchMode):
    """Entered inside a `FlopCounterMode`: the names of MAC-carrying ops it had no formula for."""

    def __init__(self, registry: dict):
        super().__init__()
        self.registry = registry
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        packet = func.overloadpacket
        if packet not in self.registry and carries_macs(packet.__name__):
            self.ops.add(str(packet))
        return func(*args, **(kwargs or {}))


register_all()
