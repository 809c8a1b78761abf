"""Per-layer parameters, nonzeros, MACs and FLOPs of a model on an example input.

MACs come from `torch.utils.flop_counter.FlopCounterMode` (which counts 2 FLOPs per
multiply-accumulate for matmul/conv/attention), so any op PyTorch knows the formula for
is covered, including functional matmuls inside a module's own `forward`.

Sparsity: a layer's *effective* MACs are its dense MACs scaled by the fraction of its
weight tensor that is nonzero, i.e. the MACs a sparse kernel would have to do. Layers
without weights (attention score products, pooling) keep effective = dense.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from frugalml.cost.currency import COUNTED, Cost
from frugalml.errors import FrugalError


def _register_cpu_attention_formulas() -> None:
    """PyTorch's counter knows the CUDA attention kernels but not the CPU flash kernel that
    `scaled_dot_product_attention` (and so `nn.MultiheadAttention`) uses here; without this
    the attention products would silently count as zero."""
    from torch.utils import flop_counter as fc

    aten = torch.ops.aten
    fwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    bwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
    if fwd is not None and fwd not in fc.flop_registry:

        @fc.register_flop_formula(fwd)
        def _cpu_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return fc.sdpa_flop_count(query_shape, key_shape, value_shape)

    if bwd is not None and bwd not in fc.flop_registry:

        @fc.register_flop_formula(bwd)
        def _cpu_sdpa_bwd(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kw) -> int:
            return fc.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


_register_cpu_attention_formulas()


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


def _module_flops(counter: FlopCounterMode, root: nn.Module) -> dict[str, int]:
    """FLOPs per module FQN ('' = root), inclusive of children."""
    prefix = type(root).__name__
    out: dict[str, int] = {}
    for key, per_op in counter.get_flop_counts().items():
        if key == "Global":
            continue
        if key == prefix:
            name = ""
        elif key.startswith(prefix + "."):
            name = key[len(prefix) + 1 :]
        else:
            continue
        out[name] = int(sum(per_op.values()))
    return out


def _nonzero_fraction(module: nn.Module) -> float:
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor) or w.numel() == 0:
        return 1.0
    return float(torch.count_nonzero(w.detach())) / w.numel()


def profile(model: nn.Module, example_input, training: bool = False) -> Profile:
    """Count params/nonzeros/MACs per layer for one forward pass on `example_input`.

    `example_input` is a tensor or a tuple of positional inputs. With `training=True`
    forward + backward is run as well and `train_flops` holds what a training step on
    that batch costs (counted, not assumed to be 3x forward).
    """
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    was_training = model.training
    model.eval()
    shapes: dict[str, list[int]] = {}
    act_bytes = 0

    def hook(name):
        def fn(_mod, _inp, out):
            nonlocal act_bytes
            if isinstance(out, torch.Tensor):
                shapes[name] = list(out.shape)
                if name:  # the root's output is already counted as its last layer's
                    act_bytes += out.numel() * out.element_size()

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()]
    try:
        # Autograd stays on: under no_grad, eval-mode MultiheadAttention switches to a fused
        # kernel that FlopCounterMode has no formula for and would silently count as zero.
        with FlopCounterMode(display=False) as counter:
            model(*inputs)
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        shape = [list(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
        raise FrugalError(f"model does not accept input of shape {shape}: {first}") from None
    finally:
        for h in handles:
            h.remove()
    flops = _module_flops(counter, model)

    train_flops = None
    if training:
        model.train()
        with FlopCounterMode(display=False) as tc:
            out = model(*inputs)
            (out if isinstance(out, torch.Tensor) else out[0]).float().sum().backward()
        model.zero_grad(set_to_none=True)
        train_flops = int(tc.get_total_flops())
    model.train(was_training)

    def counted_below(name: str, mod: nn.Module) -> list[str]:
        """Nearest descendants with a FLOP entry. Containers such as ModuleList are never
        called, so they have none: look through them, or their children's FLOPs would be
        counted again in the parent."""
        out = []
        for child_name, child in mod.named_children():
            full = f"{name}.{child_name}" if name else child_name
            out += [full] if full in flops else counted_below(full, child)
        return out

    layers: list[LayerProfile] = []
    for name, mod in model.named_modules():
        own_flops = flops.get(name, 0) - sum(flops[c] for c in counted_below(name, mod))
        own_params = list(mod.parameters(recurse=False))
        if not own_params and own_flops <= 0:
            continue
        n_params = sum(p.numel() for p in own_params)
        nz = sum(int(torch.count_nonzero(p.detach())) for p in own_params)
        macs = max(own_flops, 0) // 2
        layers.append(
            LayerProfile(
                name=name or "(root)",
                type=type(mod).__name__,
                params=n_params,
                nonzero_params=nz,
                macs=macs,
                macs_effective=round(macs * _nonzero_fraction(mod)),
                output_shape=shapes.get(name),
            )
        )
    params = sum(p.numel() for p in model.parameters())
    return Profile(
        params=params,
        nonzero_params=sum(int(torch.count_nonzero(p.detach())) for p in model.parameters()),
        macs=sum(layer.macs for layer in layers),
        macs_effective=sum(layer.macs_effective for layer in layers),
        param_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
        activation_bytes=act_bytes,
        train_flops=train_flops,
        layers=layers,
        input_shape=[list(t.shape) for t in inputs][0] if len(inputs) == 1 else None,
    )
