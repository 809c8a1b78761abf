"""Analog tiles: matrix-vector products through a crossbar, and the pulsed in-place update.

Forward  y = W x   : inputs through a DAC, read noise on every output line, an ADC.
Backward g = W^T d : the same array read the other way, with the same peripherals.
Update   W -= lr d x^T : done by the array itself (Gokmen & Vlasov 2016). Each row line
    fires a stochastic pulse train of BL slots with probability p_i = c_x |x_i| per slot,
    each column line one with q_j = c_d |d_j|; where two pulses coincide the device moves
    by one step, so E[moves] = BL p_i q_j. With c_x c_d = lr / (BL dw) the expected change
    is lr |x_i d_j|, the SGD update; "update management" (Gokmen et al. 2017) balances c_x
    and c_d per sample so that neither probability saturates needlessly.

A train of BL slots moves a device by at most BL x step, so a sample whose SGD step
lr max|x| max|d| exceeds BL dw would be clipped: both probabilities saturate at 1 and the
update falls short of SGD, more so the finer the step (with 3,000 states and BL = 31 a third
of MNIST-1D's samples were clipped). Gokmen & Vlasov 2016 size the train for that bound
(BL dw >= lr |x|max |d|max); we do it per sample: a sample that needs it gets a train of
ceil(lr max|x| max|d| / dw) slots (at most `bl_max`), so the update stays unbiased at any
step size and the extra slots are counted as update time (`slots`). IBM aihwkit's
`update_bl_management` computes the same length but caps it at the desired BL, which
shortens trains instead of lengthening them.

The trains of a sample are drawn explicitly (coincidences of one sample share its row and
column trains, as in hardware), the moves of all samples of a mini-batch are summed and
then applied to the devices at once (`DeviceArray.pulse`; exact for constant steps away
from the bounds, first order in the step otherwise).

Algorithms: "sgd" (the update goes straight into the weight array) and "tiki-taka"
(Gokmen & Haensch 2020): the update goes into a fast array A, and every `transfer_every`
updates a few columns of A are read (forward read, with noise and ADC) and written into
the slow array C with the same pulsed update; the network sees C (+ gamma (A - A_ref)).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from frugalml.analog.devices import DeviceArray, DeviceSpec
from frugalml.errors import FrugalError

ALGORITHMS = ("sgd", "tiki-taka")

# counters kept per tile (float64 buffer), in this order
COUNTS = (
    "fwd_vectors",  # input vectors through the array (forward, during training)
    "bwd_vectors",  # error vectors through the array (backward)
    "dac",  # DAC conversions
    "adc",  # ADC conversions
    "cell_reads",  # device reads (one per device per vector)
    "line_pulses",  # pulses fired on row and column lines during updates
    "device_pulses",  # coincidences = device programming events
    "updates",  # rank-one updates (samples, or transfer columns)
    "saturated",  # pulse probabilities clipped at 1
    "slots",  # pulse-train slots of all updates (sum of every update's train length)
)
IDX = {k: i for i, k in enumerate(COUNTS)}


@dataclass(frozen=True)
class IOConfig:
    """Peripheral circuits. Defaults: 7-bit DAC, 9-bit ADC, read noise 0.06 and output bound
    12 (relative to a full-scale input of 1), the values IBM aihwkit uses by default after
    Gokmen & Vlasov 2016 / Gokmen et al. 2017."""

    dac_bits: int | None = 7  # None: no quantisation
    adc_bits: int | None = 9
    read_noise: float = 0.06  # std of additive output noise, in output units
    out_bound: float = 12.0  # ADC full scale (outputs clip there)
    noise_management: bool = True  # scale each input vector by its abs-max before the DAC
    bound_management: int = 10  # re-reads with halved input when an output clips (0: off)
    array_size: int = 512  # physical crossbar size; bigger layers span several arrays (energy count only)

    def validate(self) -> IOConfig:
        for k in ("dac_bits", "adc_bits"):
            v = getattr(self, k)
            if v is not None and not (isinstance(v, int) and 2 <= v <= 24):
                raise FrugalError(f"{k} must be an integer in 2..24 (or none), got {v}")
        if self.array_size < 1:
            raise FrugalError(f"array_size must be >= 1, got {self.array_size}")
        if self.bound_management < 0:
            raise FrugalError(f"bound_management must be >= 0, got {self.bound_management}")
        if self.read_noise < 0 or not self.out_bound > 0:
            raise FrugalError(f"read noise must be >= 0 and output bound > 0 (got {self.read_noise}, {self.out_bound})")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


IO_PRESETS = {
    "realistic": IOConfig(),
    "ideal": IOConfig(dac_bits=None, adc_bits=None, read_noise=0.0, out_bound=math.inf),
}


def quantize(v: torch.Tensor, bits: int | None, bound: float) -> torch.Tensor:
    """Clip to [-bound, bound] and round to a mid-tread grid of 2**bits - 1 levels (zero exact).

    Step = 2 bound / (2**bits - 2); e.g. 2 bits, bound 1: levels -1, 0, 1.
    """
    if math.isfinite(bound):
        v = v.clamp(-bound, bound)
    if bits is None:
        return v
    step = 2 * bound / (2**bits - 2)
    return torch.round(v / step) * step


class Pulses(NamedTuple):
    n_up: torch.Tensor  # potentiation coincidences per device (rows, cols)
    n_down: torch.Tensor  # depression coincidences per device
    line_pulses: float  # pulses fired on row and column lines
    saturated: int  # probabilities clipped at 1 (only where `bl_max` cut a train short)
    slots: float  # train slots used, summed over the samples


def train_lengths(x: torch.Tensor, d: torch.Tensor, lr: float, bl: int, dw: float, bl_max: int | None = None):
    """Slots of each sample's pulse train: BL, or ceil(lr max|x| max|d| / dw) where BL slots
    could not carry the SGD step (a train moves a device by at most its length x dw; Gokmen &
    Vlasov 2016), capped at `bl_max` (None: no cap). Returns an (N,) float tensor."""
    need = lr * x.abs().amax(1) * d.abs().amax(1) / dw
    # the 1e-9 slack keeps an exact fit (need == BL) from rounding up to BL + 1
    lengths = torch.ceil(need * (1 - 1e-9)).clamp_min(bl)
    return lengths if bl_max is None else lengths.clamp_max(bl_max)


def pulse_counts(x: torch.Tensor, d: torch.Tensor, lr: float, bl: int, dw: float, bl_max: int | None = None) -> Pulses:
    """Coincidence counts of the stochastic update for the SGD step W -= lr * d^T x.

    `x` (N, cols), `d` (N, rows): N rank-one updates, each with its own train of
    `train_lengths` slots; `bl_max=bl` gives every sample BL slots (the fixed-length rule,
    which clips updates larger than BL dw).
    """
    if bl < 1:
        raise FrugalError(f"pulse train length BL must be >= 1, got {bl}")
    if bl_max is not None and bl_max < bl:
        raise FrugalError(f"the longest pulse train bl_max ({bl_max}) must be >= BL ({bl})")
    n = x.shape[0]
    lengths = train_lengths(x, d, lr, bl, dw, bl_max)[:, None]  # (N, 1)
    slots = int(lengths.max()) if n else bl
    ax, ad = x.abs(), d.abs()
    xm = ax.amax(1, keepdim=True).clamp_min(1e-30)
    dm = ad.amax(1, keepdim=True).clamp_min(1e-30)
    c = (lr / (lengths * dw)).sqrt()  # E[moves] = length p q = lr |x d| / dw
    px = c * (dm / xm).sqrt() * ax  # update management: equal max probability on both sides
    qd = c * (xm / dm).sqrt() * ad
    # clipped: above 1 by more than float32 rounding (an exact fit, length = need, gives p = 1)
    saturated = int((px > 1 + 1e-5).sum()) + int((qd > 1 + 1e-5).sum())
    px, qd = px.clamp(max=1), qd.clamp(max=1)
    live = (torch.arange(slots)[None, :] < lengths).to(x.dtype)[:, :, None]  # (N, slots, 1)
    xb = (torch.rand(n, slots, x.shape[1]) < px[:, None, :]).to(x.dtype) * live
    db = (torch.rand(n, slots, d.shape[1]) < qd[:, None, :]).to(d.dtype) * live
    line_pulses = float(xb.sum() + db.sum())
    xs = (xb * torch.sign(x)[:, None, :]).reshape(n * slots, -1)
    ds = (db * torch.sign(d)[:, None, :]).reshape(n * slots, -1)
    total = db.reshape(n * slots, -1).T @ xb.reshape(n * slots, -1)
    signed = ds.T @ xs  # +1 where sign(d) sign(x) > 0: those coincidences lower the weight
    n_down = (total + signed) / 2
    n_up = (total - signed) / 2
    return Pulses(n_up, n_down, line_pulses, saturated, float(lengths.sum()))


class _ThroughArray(torch.autograd.Function):
    """y = tile(x); backward reads the array transposed and stashes (x, d) for the update."""

    @staticmethod
    def forward(ctx, x, token, tile):
        ctx.tile = tile
        ctx.save_for_backward(x)
        return tile.mvm(x, transpose=False)

    @staticmethod
    def backward(ctx, d):
        tile = ctx.tile
        (x,) = ctx.saved_tensors
        tile.pending.append((x.detach(), d.detach()))
        gx = tile.mvm(d, transpose=True) if ctx.needs_input_grad[0] else None
        return gx, None, None


class AnalogTile(nn.Module):
    """One weight matrix (out x in) stored on devices, with its peripherals and update rule."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        device_spec: DeviceSpec,
        io: IOConfig = IOConfig(),
        algorithm: str = "sgd",
        bl: int = 10,
        bl_max: int | None = None,
        transfer_every: int = 1,
        transfer_columns: int = 8,
        transfer_lr: float = 0.1,
        gamma: float = 0.0,
        refresh: float | None = None,
    ):
        super().__init__()
        if algorithm not in ALGORITHMS:
            raise FrugalError(f"unknown algorithm '{algorithm}' (known: {', '.join(ALGORITHMS)})")
        if not isinstance(bl, int) or bl < 1:
            raise FrugalError(f"pulse train length BL must be an integer >= 1, got {bl}")
        if bl_max is not None and (not isinstance(bl_max, int) or bl_max < bl):
            raise FrugalError(f"the longest pulse train bl_max must be an integer >= BL ({bl}), got {bl_max}")
        if transfer_every < 1 or transfer_columns < 1 or not transfer_lr > 0:
            raise FrugalError("tiki-taka transfer_every and transfer_columns must be >= 1, transfer_lr > 0")
        if algorithm == "tiki-taka" and device_spec.unidirectional:
            raise FrugalError(f"tiki-taka needs a bidirectional device; '{device_spec.name}' only potentiates")
        self.in_features, self.out_features = in_features, out_features
        self.io = io.validate()
        self.algorithm, self.bl, self.bl_max = algorithm, bl, bl_max
        self.transfer_every, self.transfer_columns = transfer_every, min(transfer_columns, in_features)
        self.transfer_lr, self.gamma = transfer_lr, gamma
        if refresh is not None and not 0 < refresh <= 1:
            raise FrugalError(f"refresh threshold must lie in (0, 1] (fraction of the range), got {refresh}")
        self.refresh = refresh  # unidirectional pairs: reset and rewrite when a side passes this
        self.array = DeviceArray(out_features, in_features, device_spec)  # C for tiki-taka
        if algorithm == "tiki-taka":
            self.fast = DeviceArray(out_features, in_features, device_spec)
            ref = self.fast.symmetry_point()
            self.register_buffer("fast_ref", ref)  # A is read against its symmetry point
            self.fast.state[0] = ref
            self.register_buffer("next_column", torch.zeros((), dtype=torch.long))
            self.register_buffer("fast_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("counts", torch.zeros(len(COUNTS), dtype=torch.float64))
        # digital gain on the outputs: network weight = scale x device weight (set by `program`)
        self.register_buffer("scale", torch.ones(()))
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def spec(self) -> DeviceSpec:
        return self.array.spec

    def program(self, w: torch.Tensor, omega: float | None = None) -> None:
        """Write network weights `w` (out x in). With `omega`, a digital gain maps max|w| onto
        omega x the device's upper bound (weight scaling, so that training has headroom)."""
        w = w.detach()
        if omega is not None:
            self.scale.fill_(max(float(w.abs().max()), 1e-12) / (omega * self.spec.w_max))
        self.array.program(w / self.scale)

    def weight(self) -> torch.Tensor:
        """The device weight (network weight / scale)."""
        w = self.array.weight()
        if self.algorithm == "tiki-taka" and self.gamma:
            w = w + self.gamma * (self.fast.weight() - self.fast_ref)
        return w

    def _count(self, name: str, v: float) -> None:
        self.counts[IDX[name]] += v

    def mvm(self, v: torch.Tensor, transpose: bool, w: torch.Tensor | None = None, count: bool = True):
        """One analog read of `v` (N, k) through the array (or its transpose)."""
        io = self.io
        w = self.weight() if w is None else w
        if io.noise_management:
            v_max = v.abs().amax(1, keepdim=True).clamp_min(1e-30)
        else:
            v_max = torch.ones(v.shape[0], 1)
        n_reads = v.shape[0]
        y = self._read(v / v_max, w, transpose)
        if io.bound_management and math.isfinite(io.out_bound):
            # Gokmen et al. 2017: a vector whose output hit the ADC bound is read again with its
            # input halved (and the output doubled digitally), up to `bound_management` times
            for _ in range(io.bound_management):
                hit = (y.abs() >= io.out_bound).any(1)
                if not bool(hit.any()):
                    break
                v_max = torch.where(hit[:, None], v_max * 2, v_max)
                y[hit] = self._read(v[hit] / v_max[hit], w, transpose)
                n_reads += int(hit.sum())
        y = y * v_max * self.scale
        if count and self.training:
            k, m = v.shape[1], y.shape[1]
            # a layer wider than one array is split: every array block drives its own DACs and
            # digitises its own partial sums, which are added digitally
            blocks_in, blocks_out = math.ceil(k / io.array_size), math.ceil(m / io.array_size)
            self._count("bwd_vectors" if transpose else "fwd_vectors", n_reads)
            self._count("dac", n_reads * k * blocks_out)
            self._count("adc", n_reads * m * blocks_in)
            self._count("cell_reads", n_reads * k * m)
        return y

    def _read(self, v: torch.Tensor, w: torch.Tensor, transpose: bool) -> torch.Tensor:
        io = self.io
        vq = quantize(v, io.dac_bits, 1.0)
        y = vq @ w if transpose else vq @ w.T
        if io.read_noise > 0:
            y = y + io.read_noise * torch.randn_like(y)
        return quantize(y, io.adc_bits, io.out_bound)

    def forward(self, x: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            return _ThroughArray.apply(x, token, self)
        return self.mvm(x, transpose=False)

    def _pulse_update(self, target: DeviceArray, x, d, lr: float) -> None:
        p = pulse_counts(x, d, lr, self.bl, target.spec.dw, self.bl_max)
        target.pulse(p.n_up, p.n_down)
        self._count("line_pulses", p.line_pulses)
        self._count("device_pulses", float(p.n_up.sum() + p.n_down.sum()))
        self._count("updates", x.shape[0])
        self._count("saturated", p.saturated)
        self._count("slots", p.slots)

    @torch.no_grad()
    def update(self, lr: float) -> None:
        """Apply the pulsed updates for the (x, d) pairs stashed by backward passes."""
        pending, self.pending = self.pending, []
        for x, d in pending:
            lr_dev = lr / float(self.scale)  # the devices hold weight / scale
            if self.algorithm == "sgd":
                self._pulse_update(self.array, x, d, lr_dev)
                if self.refresh is not None:
                    self._count("device_pulses", float(self.array.refresh(self.refresh)))
            else:
                self._pulse_update(self.fast, x, d, lr_dev)
                self._maybe_transfer()

    def _maybe_transfer(self) -> None:
        self.fast_updates += 1
        if int(self.fast_updates) % self.transfer_every:
            return
        cols = (int(self.next_column) + torch.arange(self.transfer_columns)) % self.in_features
        self.next_column.fill_((int(self.next_column) + self.transfer_columns) % self.in_features)
        onehot = torch.zeros(len(cols), self.in_features)
        onehot[torch.arange(len(cols)), cols] = 1.0
        a = self.fast.weight() - self.fast_ref
        read = self.mvm(onehot, transpose=False, w=a) / self.scale  # column reads of A, through the ADC
        # C += transfer_lr * A[:, col]  ==  SGD step with x = e_col, d = -A[:, col]
        self._pulse_update(self.array, onehot, -read, self.transfer_lr)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_features}, out={self.out_features}, device={self.spec.name}, "
            f"algorithm={self.algorithm}, BL={self.bl}, BL max={self.bl_max}"
        )


class AnalogLinear(nn.Module):
    """`nn.Linear` whose weight lives on an analog tile; the bias stays digital."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, **tile_kw):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.tile = AnalogTile(in_features, out_features, **tile_kw)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        # a zero-size parameter so that autograd always runs the tile's backward (which
        # stashes the error for the update) even when neither input nor bias needs a gradient
        self.token = nn.Parameter(torch.zeros(0))

    def forward(self, x):
        shape = x.shape
        y = self.tile(x.reshape(-1, shape[-1]), self.token).reshape(*shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias


class AnalogConv2d(nn.Module):
    """`nn.Conv2d` mapped onto one tile (out x in*kh*kw) through unfolding (Gokmen et al. 2017):
    every output position is one vector read, and one rank-one update."""

    def __init__(self, conv: nn.Conv2d, omega: float | None = None, **tile_kw):
        super().__init__()
        if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise FrugalError("analog conversion supports Conv2d with groups=1 and numeric zero padding only")
        self.out_channels, self.kernel_size = conv.out_channels, conv.kernel_size
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        k = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        self.tile = AnalogTile(k, conv.out_channels, **tile_kw)
        self.bias = nn.Parameter(conv.bias.detach().clone()) if conv.bias is not None else None
        self.token = nn.Parameter(torch.zeros(0))
        self.tile.program(conv.weight.detach().reshape(conv.out_channels, -1), omega)

    def forward(self, x):
        n, _, h, w = x.shape
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)  # (N, k, L)
        oh = (h + 2 * self.padding[0] - self.dilation[0] * (self.kernel_size[0] - 1) - 1) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - self.dilation[1] * (self.kernel_size[1] - 1) - 1) // self.stride[1] + 1
        y = self.tile(cols.transpose(1, 2).reshape(-1, cols.shape[1]), self.token)
        y = y.reshape(n, oh * ow, self.out_channels).transpose(1, 2).reshape(n, self.out_channels, oh, ow)
        return y if self.bias is None else y + self.bias[None, :, None, None]


def convert(model: nn.Module, device_spec: DeviceSpec, omega: float | None = None, **tile_kw) -> nn.Module:
    """A copy of `model` with every nn.Linear / nn.Conv2d on analog tiles, weights programmed
    from the digital ones (idealised write; `omega`: see `AnalogTile.program`)."""
    model = copy.deepcopy(model)
    n = 0

    def swap(parent: nn.Module) -> None:
        nonlocal n
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                new = AnalogLinear(
                    child.in_features, child.out_features, child.bias is not None, device_spec=device_spec, **tile_kw
                )
                new.tile.program(child.weight.detach(), omega)
                if child.bias is not None:
                    new.bias.data.copy_(child.bias.detach())
                setattr(parent, name, new)
                n += 1
            elif isinstance(child, nn.Conv2d):
                setattr(parent, name, AnalogConv2d(child, omega, device_spec=device_spec, **tile_kw))
                n += 1
            else:
                swap(child)

    swap(model)
    if n == 0:
        raise FrugalError(f"{type(model).__name__} has no Linear or Conv2d layer to put on analog tiles")
    return model


def tiles(model: nn.Module) -> list[AnalogTile]:
    return [m for m in model.modules() if isinstance(m, AnalogTile)]


def analog_step(model: nn.Module, lr: float) -> None:
    """The in-place update of every tile for the backward passes since the last call."""
    for t in tiles(model):
        t.update(lr)


def counts(model: nn.Module) -> dict[str, float]:
    total = torch.zeros(len(COUNTS), dtype=torch.float64)
    for t in tiles(model):
        total += t.counts
    return {k: float(v) for k, v in zip(COUNTS, total)}
