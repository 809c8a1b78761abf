"""Workloads: every MAC-carrying layer of a PyTorch model as a loop nest.

One loop-nest shape covers convolutions, fully connected layers and the batched matmuls
of attention (Eyeriss notation, ISCA 2016 Table I, plus a group dimension G):

    O[g][n][m][p][q] += W[g][m][c][r][s] * I[g][n][c][p*Uh + r][q*Uw + s]

N batch, M output channels and C input channels per group, P x Q output (E x F in the
paper), R x S filter, G groups (or independent matmuls: batch x heads in attention).
A Linear layer is M=out, C=in, N=tokens, P=Q=R=S=1. In A @ B the second operand plays the
weight: G=batch*heads, N=rows of A, C=inner, M=columns of B.

Densities (fraction of nonzero values) come from the actual weight tensor and the
actual input seen in the forward pass, for the sparsity-aware estimate. So do the
run-length-compressed sizes of the input and of the output after ReLU (`rlc_words`), which
an arch with `rlc: true` uses for activation traffic to and from DRAM, as the Eyeriss chip
does (Chen et al., JSSC 2017). The output's size assumes a ReLU follows the layer, as after
every AlexNet conv (the chip applies ReLU before writing ofmaps back). The input's ratio is
taken over the zero-padded input the model counts (`Layer.input_hw`): under the run-length
code the padding's zeros cost next to nothing, so a padded layer's compressed traffic is
that of its real input.

`with_zero_fractions` replaces the measured figures by given fractions of zeros (a trained
network's published activation sparsity, say), with zeros assumed scattered at random
(`rlc_ratio_at_zeros`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from frugalml.errors import FrugalError

DIMS = "NMCPQRSG"


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # conv | fc | matmul
    N: int
    M: int
    C: int
    P: int = 1
    Q: int = 1
    R: int = 1
    S: int = 1
    G: int = 1
    stride: tuple[int, int] = (1, 1)
    # zero padding of the input (rows, columns per side), included in input_hw
    padding: tuple[int, int] = (0, 0)
    weight_density: float = 1.0
    input_density: float = 1.0
    # run-length-compressed size / dense size of the input and of the output after ReLU (`rlc_words`)
    input_rlc: float = 1.0
    output_rlc: float = 1.0

    def __post_init__(self):
        for d in DIMS:
            if int(getattr(self, d)) < 1:
                raise FrugalError(f"layer {self.name}: {d} must be a positive integer, got {getattr(self, d)}")
        if min(self.stride) < 1:
            raise FrugalError(f"layer {self.name}: stride must be positive, got {self.stride}")
        if min(self.padding) < 0:
            raise FrugalError(f"layer {self.name}: padding must be >= 0, got {self.padding}")

    @property
    def bounds(self) -> tuple[int, ...]:
        return tuple(int(getattr(self, d)) for d in DIMS)

    @property
    def macs(self) -> int:
        out = 1
        for b in self.bounds:
            out *= b
        return out

    @property
    def input_hw(self) -> tuple[int, int]:
        """Input rows/columns the layer reads (padding included)."""
        (uh, uw) = self.stride
        return (min((self.P - 1) * uh + self.R, self.P * self.R), min((self.Q - 1) * uw + self.S, self.Q * self.S))

    @property
    def input_hw_unpadded(self) -> tuple[int, int]:
        """Rows/columns of the real input among those the layer reads (input_hw less the padding)."""
        h, w = self.input_hw
        return (max(h - 2 * self.padding[0], 1), max(w - 2 * self.padding[1], 1))

    @property
    def sizes(self) -> dict[str, int]:
        """Words in the weight, input and output tensors."""
        h, w = self.input_hw
        return {
            "weights": self.G * self.M * self.C * self.R * self.S,
            "inputs": self.G * self.N * self.C * h * w,
            "outputs": self.G * self.N * self.M * self.P * self.Q,
        }

    def scaled(self, factor: float) -> Layer:
        """The same layer for a batch `factor` times larger (scales N, or G for matmuls)."""
        dim = "G" if self.kind == "matmul" else "N"
        value = getattr(self, dim) * factor
        if abs(value - round(value)) > 1e-9 or round(value) < 1:
            raise FrugalError(f"layer {self.name}: batch scaling by {factor} gives a non-integer {dim}")
        return replace(self, **{dim: int(round(value))})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stride"] = list(self.stride)
        d["padding"] = list(self.padding)
        d["macs"] = self.macs
        return d


def conv_layer(name, n, cin, cout, h, w, kh, kw, stride=(1, 1), padding=(0, 0), groups=1, **dens) -> Layer:
    """A Conv2d as a loop nest (input h x w before padding)."""
    p = (h + 2 * padding[0] - kh) // stride[0] + 1
    q = (w + 2 * padding[1] - kw) // stride[1] + 1
    if cin % groups or cout % groups:
        raise FrugalError(f"layer {name}: channels {cin}->{cout} not divisible by groups={groups}")
    return Layer(
        name, "conv", n, cout // groups, cin // groups, p, q, kh, kw, groups, tuple(stride), tuple(padding), **dens
    )


# Eyeriss v1's run-length code (Chen et al., JSSC 2017): a 64-bit word holds three (run, level)
# pairs - a 5-bit count of zeros (0-31) and the 16-bit value after them - and a 1-bit flag
RLC_MAX_RUN = 31
RLC_PAIRS_PER_WORD = 3
RLC_WORD_BITS = 64


def rlc_words(values, word_bits: int = 16) -> int:
    """Words of `word_bits` that Eyeriss's run-length code takes for `values` (flattened in order).

    Each nonzero value costs one pair; a run of z zeros before it adds z // 32 pairs (a pair
    (31, 0) covers 31 zeros and a zero level); trailing zeros take ceil(z / 32) pairs. Pairs
    are packed three to a 64-bit word.
    """
    import numpy as np

    flat = np.asarray(values).reshape(-1)
    nz = np.flatnonzero(flat)
    span = RLC_MAX_RUN + 1
    if len(nz):
        gaps = np.diff(np.concatenate([[-1], nz])) - 1
        pairs = len(nz) + int((gaps // span).sum())
        tail = len(flat) - 1 - int(nz[-1])
    else:
        pairs, tail = 0, len(flat)
    pairs += -(-tail // span)
    words64 = -(-pairs // RLC_PAIRS_PER_WORD)
    return words64 * (RLC_WORD_BITS // word_bits)


def rlc_ratio_at_zeros(zeros: float) -> float:
    """Expected compressed / dense size under Eyeriss's run-length code of values of which a
    fraction `zeros` is zero, the zeros scattered independently (long tensors; 16-bit words).

    Each nonzero value takes one pair; a run of z zeros before it adds z // 32 pairs, and with
    independent zeros P(run >= 32k) = zeros**(32k), so a nonzero value costs 1 / (1 - zeros**32)
    pairs. Three pairs fill a 64-bit word (four 16-bit words): ratio = 4/3 (1 - zeros) / (1 - zeros**32).
    """
    if not 0.0 <= zeros <= 1.0:
        raise FrugalError(f"a fraction of zeros must be in [0, 1], got {zeros}")
    if zeros == 1.0:
        return 0.0
    per_word = RLC_WORD_BITS // 16
    return per_word / RLC_PAIRS_PER_WORD * (1.0 - zeros) / (1.0 - zeros ** (RLC_MAX_RUN + 1))


def with_zero_fractions(layers, input_zeros, output_zeros=None) -> list[Layer]:
    """`layers` with given fractions of zeros in their inputs and (after ReLU) outputs instead of the
    ones measured on the forward pass: input density, and both run-length ratios at random zeros.

    `input_zeros` has one fraction per layer, of its real (unpadded) input; the padding's zeros are
    added to the input's ratio as free, as the run-length code nearly makes them. `output_zeros`
    defaults to the next layer's input zeros (exact when nothing sits between them; a lower bound
    when a max-pool does, as pooling keeps a zero only where its whole window is zero) and, for
    the last layer, to its own input's.
    """
    layers = list(layers)
    input_zeros = [float(z) for z in input_zeros]
    if len(input_zeros) != len(layers):
        raise FrugalError(f"{len(input_zeros)} fractions of zeros for {len(layers)} layers")
    if output_zeros is None:
        output_zeros = input_zeros[1:] + input_zeros[-1:]
    output_zeros = [float(z) for z in output_zeros]
    if len(output_zeros) != len(layers):
        raise FrugalError(f"{len(output_zeros)} output fractions of zeros for {len(layers)} layers")
    out = []
    for layer, zi, zo in zip(layers, input_zeros, output_zeros, strict=True):
        (h, w), (hu, wu) = layer.input_hw, layer.input_hw_unpadded
        rin = rlc_ratio_at_zeros(zi) * (hu * wu) / (h * w)
        out.append(replace(layer, input_density=1.0 - zi, input_rlc=rin, output_rlc=rlc_ratio_at_zeros(zo)))
    return out


def _rlc_ratio(t, relu: bool = False, pad: tuple[int, ...] = ()) -> float:
    """Compressed / dense size of a tensor under the Eyeriss run-length code (after ReLU if asked;
    zero-padded first by `pad`, as torch.nn.functional.pad takes it)."""
    import torch.nn.functional as F

    t = t.detach()
    if relu:
        t = t.clamp(min=0)
    if any(pad):
        t = F.pad(t, pad)
    return rlc_words(t.cpu().numpy()) / max(t.numel(), 1)


SUPPORTED = ("Conv1d", "Conv2d", "Linear", "MultiheadAttention")


def _density(t) -> float:
    import torch

    return float(torch.count_nonzero(t.detach())) / max(t.numel(), 1)


def _layer_hook(add):
    """An `on_call` for `cost.trace` that turns each supported module call into loop-nest layers."""
    from torch import nn

    def fn(name, mod, args, kwargs, out):
        name = name or "(root)"
        x = args[0] if args else kwargs.get("query", kwargs.get("input"))
        if isinstance(mod, nn.Conv2d | nn.Conv1d):
            _conv_hook(name, mod, x, out, add)
        elif isinstance(mod, nn.Linear):
            tokens = x.numel() // x.shape[-1]
            add(
                Layer(
                    name,
                    "fc",
                    tokens,
                    mod.out_features,
                    mod.in_features,
                    weight_density=_density(mod.weight),
                    input_density=_density(x),
                    input_rlc=_rlc_ratio(x),
                    output_rlc=_rlc_ratio(out, relu=True),
                )
            )
        elif isinstance(mod, nn.MultiheadAttention):
            _mha_hook(name, mod, args, kwargs, out, add)

    return fn


def _unsupported(model, own: dict[str, int]) -> list[str]:
    """Modules outside SUPPORTED that did FLOPs of their own (attention's inner modules belong to it)."""
    from torch import nn

    mods = dict(model.named_modules())
    covered = set()
    for name, mod in mods.items():
        if isinstance(mod, nn.MultiheadAttention):
            covered |= {n for n in mods if n.startswith(name + ".")}
    return [
        f"{name or '(root)'} ({type(mods[name]).__name__})"
        for name, flops in own.items()
        if flops > 0 and type(mods[name]).__name__ not in SUPPORTED and name not in covered
    ]


def extract(model, example_input) -> list[Layer]:
    """Run `model` once on `example_input` and return its MAC-carrying layers in call order.

    Supported: Conv1d/Conv2d (grouped and depthwise included), Linear, MultiheadAttention
    (projections and both batched matmuls). Any other module that does multiply-accumulates
    is an error that lists it, so nothing is skipped silently.
    """
    from frugalml.cost.tracing import trace

    layers: list[Layer] = []
    traced = trace(model, example_input, grad=False, on_call=_layer_hook(layers.append))
    unsupported = _unsupported(model, traced.own_flops())
    if unsupported:
        raise FrugalError(
            "unsupported module types carry MACs (supported: " + ", ".join(SUPPORTED) + "): " + ", ".join(unsupported)
        )
    if not layers:
        raise FrugalError("model has no Conv/Linear/attention layers to map")
    return layers


def _conv_hook(name, mod, x, out, add):
    from torch import nn

    if isinstance(mod, nn.Conv1d):
        n, h, w = x.shape[0] if x.dim() == 3 else 1, 1, x.shape[-1]
        pad = mod.padding if isinstance(mod.padding, str) else (0, mod.padding[0])
        k, stride, dil = (1, mod.kernel_size[0]), (1, mod.stride[0]), mod.dilation
    else:
        n, h, w = x.shape[0] if x.dim() == 4 else 1, x.shape[-2], x.shape[-1]
        k, stride, pad, dil = mod.kernel_size, mod.stride, mod.padding, mod.dilation
    if isinstance(pad, str):
        raise FrugalError(f"layer {name}: string padding '{pad}' is not supported; use integer padding")
    pad = tuple(pad) if len(pad) == 2 else (0, pad[0])
    if any(d != 1 for d in dil):
        raise FrugalError(f"layer {name}: dilated convolution (dilation={tuple(dil)}) is not supported")
    add(
        conv_layer(
            name,
            n,
            mod.in_channels,
            mod.out_channels,
            h,
            w,
            k[0],
            k[1],
            stride,
            pad,
            mod.groups,
            weight_density=_density(mod.weight),
            input_density=_density(x),
            # over the padded input the model counts (torch pads the last dim first)
            input_rlc=_rlc_ratio(x, pad=(pad[1], pad[1], pad[0], pad[0])),
            output_rlc=_rlc_ratio(out, relu=True),
        )
    )


def _mha_hook(name, mod, args, kwargs, out, add):
    q = args[0] if args else kwargs["query"]
    k = args[1] if len(args) > 1 else kwargs.get("key", q)
    if mod.batch_first:
        b, lq, e = q.shape if q.dim() == 3 else (1, *q.shape)
        lk = k.shape[-2]
    else:
        lq, b, e = q.shape if q.dim() == 3 else (q.shape[0], 1, q.shape[1])
        lk = k.shape[0]
    h = mod.num_heads
    hd = e // h
    kd = mod.kdim
    wd = 1.0 if mod.in_proj_weight is None else _density(mod.in_proj_weight)
    add(Layer(f"{name}.q_proj", "fc", b * lq, e, e, weight_density=wd, input_density=_density(q)))
    add(Layer(f"{name}.k_proj", "fc", b * lk, e, kd, weight_density=wd, input_density=_density(k)))
    add(Layer(f"{name}.v_proj", "fc", b * lk, e, mod.vdim, weight_density=wd))
    add(Layer(f"{name}.qk", "matmul", lq, lk, hd, G=b * h))
    add(Layer(f"{name}.av", "matmul", lq, hd, lk, G=b * h))
    add(Layer(f"{name}.out_proj", "fc", b * lq, e, e, weight_density=_density(mod.out_proj.weight)))
