"""Pulsed analog devices: how one programming pulse moves a conductance.

A weight is stored as a normalised conductance difference `w = (G - G_ref) / G_scale`
(one device against a fixed reference at its symmetry point), or, for unidirectional
devices such as PCM, as a differential pair `w = G+ - G-` where each side can only be
potentiated. Every pulse moves one device by one step, in weight units:

    constant  step = dw_up (dw_down), hard bounds                      (Gokmen & Vlasov 2016)
    linear    step_up = dw_up * (1 - gamma_up * w / w_max),
              step_down = dw_down * (1 - gamma_down * w / w_min)        (gamma = 1: soft bounds)
    power     step_up = dw_up * ((w_max - w) / w_max) ** gamma_up, step_down likewise
    exp       step_up = dw_up * exp(-gamma_up * w / w_max), step_down likewise, hard bounds

with up/down asymmetry `dw_up = dw (1 + a/2)`, `dw_down = dw (1 - a/2)`, cycle-to-cycle noise
(each pulse's step gets a Gaussian error of `c2c` x step), and device-to-device spread of
the step (`dw_dtod`), of the asymmetry (`asym_dtod`, absolute) and of the bounds
(`bound_dtod`), drawn once per device when the array is built. States = range / dw.

Presets are data with their sources (`PRESETS`); `spec("ecram", states=500)` overrides.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import nn

from frugalml.errors import FrugalError

MODELS = ("constant", "linear", "power", "exp")


@dataclass(frozen=True)
class DeviceSpec:
    name: str = "custom"
    model: str = "constant"
    dw: float = 0.001  # mean step at w = 0, in weight units
    w_max: float = 1.0
    w_min: float = -1.0
    asymmetry: float = 0.0  # (dw_up - dw_down) / dw
    gamma_up: float = 1.0  # state dependence (linear / power / exp models)
    gamma_down: float = 1.0
    c2c: float = 0.0  # cycle-to-cycle std of one step, relative to the step
    dw_dtod: float = 0.0  # device-to-device relative std of the step
    asym_dtod: float = 0.0  # device-to-device std of the asymmetry (absolute)
    bound_dtod: float = 0.0  # device-to-device relative std of w_max and w_min
    unidirectional: bool = False  # True: only potentiation; a differential pair G+ - G- holds w
    energy_per_pulse_j: float = 1e-15
    source: str = ""

    @property
    def states(self) -> float:
        """Number of steps across the range (per device)."""
        return (self.w_max - self.w_min) / self.dw

    def validate(self) -> DeviceSpec:
        if self.model not in MODELS:
            raise FrugalError(f"unknown device model '{self.model}' (known: {', '.join(MODELS)})")
        if not self.w_max > self.w_min:
            raise FrugalError(f"device '{self.name}': w_max ({self.w_max}) must exceed w_min ({self.w_min})")
        if self.unidirectional and self.w_min != 0:
            raise FrugalError(f"device '{self.name}': a unidirectional device spans [0, w_max], not w_min={self.w_min}")
        if not self.unidirectional and not (self.w_min < 0 < self.w_max):
            raise FrugalError(f"device '{self.name}': range [{self.w_min}, {self.w_max}] must contain 0")
        if not self.dw > 0:
            raise FrugalError(f"device '{self.name}': step must be positive, got {self.dw}")
        if self.dw > self.w_max - self.w_min:
            raise FrugalError(
                f"device '{self.name}': step {self.dw:g} is larger than its range "
                f"{self.w_max - self.w_min:g} (fewer than one state)"
            )
        if not -2 < self.asymmetry < 2:
            raise FrugalError(f"device '{self.name}': asymmetry must lie in (-2, 2), got {self.asymmetry}")
        for k in ("c2c", "dw_dtod", "asym_dtod", "bound_dtod", "energy_per_pulse_j"):
            if getattr(self, k) < 0 or not math.isfinite(getattr(self, k)):
                raise FrugalError(f"device '{self.name}': {k} must be >= 0, got {getattr(self, k)}")
        return self

    def to_dict(self) -> dict:
        return asdict(self) | {"states": self.states}


_GV = "Gokmen & Vlasov, Front. Neurosci. 10:333 (2016), doi:10.3389/fnins.2016.00333"
PRESETS: dict[str, DeviceSpec] = {
    "ideal": DeviceSpec(
        "ideal",
        "constant",
        dw=1e-3,
        w_max=1.0,
        w_min=-1.0,
        energy_per_pulse_j=1e-15,
        source="Idealised: 2,000 states (above the ~1,000 needed), symmetric, no noise, no spread - a "
        "reference point, not hardware. Finer steps need longer pulse trains (a train moves a device by "
        "at most its length x step); updates too large for BL slots get them (`tile.train_lengths`).",
    ),
    "gokmen-vlasov": DeviceSpec(
        "gokmen-vlasov",
        "constant",
        dw=0.001,
        w_max=0.6,
        w_min=-0.6,
        c2c=0.3,
        dw_dtod=0.3,
        asym_dtod=0.02,
        bound_dtod=0.3,
        energy_per_pulse_j=1e-15,
        source=f"{_GV}: RPU requirements - dw_min 0.001 with bounds |w| <= 0.6 (1,200 states), 30% "
        "cycle-to-cycle and device-to-device spread of the step, 2% up/down imbalance, 30% spread of "
        "the bounds, 1 ns pulses. Pulse energy: 1 V x 1 uA x 1 ns = 1 fJ (our order-of-magnitude "
        "assumption).",
    ),
    "ecram": DeviceSpec(
        "ecram",
        "linear",
        dw=0.002,
        w_max=1.0,
        w_min=-1.0,
        gamma_up=0.1153,
        gamma_down=0.5085,
        c2c=0.3,
        dw_dtod=0.1,
        asym_dtod=0.01,
        bound_dtod=0.05,
        energy_per_pulse_j=1e-15,
        source="Electrochemical RAM: linear-step fit of IBM aihwkit's EcRamPresetDevice to the "
        "Li-ECRAM of Tang et al., IEDM 2018 (doi:10.1109/IEDM.2018.8614551): dw_min 0.002 "
        "(~1,000 states on [-1, 1]), slopes 0.115 up / 0.509 down, 10% step spread, 30% "
        "cycle-to-cycle. Protonic WO3 synapses (Yao et al., Nat. Commun. 11:3134, 2020; Onen "
        "et al., Science 377:539, 2022, symmetric and linear modulation with 5 ns pulses) are "
        "of this class. Pulse energy 1 fJ: our order-of-magnitude assumption, not a measured figure.",
    ),
    "reram": DeviceSpec(
        "reram",
        "exp",
        dw=0.00135,
        w_max=1.0,
        w_min=-1.0,
        asymmetry=0.26,
        gamma_up=1.2,
        gamma_down=0.5,
        c2c=1.0,
        dw_dtod=0.2,
        asym_dtod=0.05,
        bound_dtod=0.3,
        energy_per_pulse_j=1e-13,
        source="Filamentary ReRAM: step 0.00135 and up/down asymmetry 0.26 from IBM aihwkit's "
        "ReRamESPresetDevice fit to Gong et al., Nat. Commun. 9:2102 (2018); our exp-step form "
        "(gammas 1.2 / 0.5) and 100% cycle-to-cycle noise simplify that fit (aihwkit uses 500% "
        "plus write noise). Pulse energy 0.1 pJ: order-of-magnitude assumption.",
    ),
    "pcm": DeviceSpec(
        "pcm",
        "power",
        dw=0.01,
        w_max=1.0,
        w_min=0.0,
        gamma_up=1.5,
        c2c=0.5,
        dw_dtod=0.3,
        bound_dtod=0.2,
        unidirectional=True,
        energy_per_pulse_j=1e-12,
        source="Phase-change memory: gradual SET only (RESET is abrupt), so weights are differential "
        "pairs G+ - G- that can only be potentiated and saturate (Burr et al., IEEE TED 62:3498, "
        "2015; Ambrogio et al., Nature 558:60, 2018). ~100 states per device, power-step "
        "saturation and 50% cycle-to-cycle noise are our round numbers of that class. Pulse "
        "energy 1 pJ: order of magnitude of reported SET energies (tens of fJ to tens of pJ).",
    ),
}


def names() -> list[str]:
    return list(PRESETS)


def spec(name: str | DeviceSpec, **overrides) -> DeviceSpec:
    """A preset by name, with overrides; `states=` sets the step from the range."""
    if isinstance(name, DeviceSpec):
        base = name
    else:
        if name not in PRESETS:
            raise FrugalError(f"unknown device preset '{name}' (known: {', '.join(PRESETS)})")
        base = PRESETS[name]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    states = overrides.pop("states", None)
    known = {f.name for f in fields(DeviceSpec)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise FrugalError(f"unknown device setting(s) {bad} (known: states, {', '.join(sorted(known))})")
    out = replace(base, **overrides)
    if states is not None:
        if not states > 0:
            raise FrugalError(f"number of states must be positive, got {states}")
        out = replace(out, dw=(out.w_max - out.w_min) / states)
    return out.validate()


class DeviceArray(nn.Module):
    """A (rows x cols) array of devices of one spec; `weight()` reads it, `pulse()` writes it.

    All state lives in buffers, so checkpoints hold the device-to-device draws as well.
    Random numbers come from torch's global generator (seeded by the training loop), which
    makes a resumed run see the same draws as an uninterrupted one.
    """

    def __init__(self, rows: int, cols: int, device_spec: DeviceSpec):
        super().__init__()
        s = self.spec = device_spec.validate()
        shape = (rows, cols)

        def spread(rel: float) -> torch.Tensor:
            # truncated at 0.1x so a device never gets a negative or vanishing step/bound
            return (1 + rel * torch.randn(shape)).clamp_min(0.1) if rel > 0 else torch.ones(shape)

        dw = s.dw * spread(s.dw_dtod)
        asym = s.asymmetry + (s.asym_dtod * torch.randn(shape) if s.asym_dtod > 0 else torch.zeros(shape))
        asym = asym.clamp(-1.9, 1.9)
        self.register_buffer("dw_up", dw * (1 + asym / 2))
        self.register_buffer("dw_down", dw * (1 - asym / 2))
        self.register_buffer("w_max", s.w_max * spread(s.bound_dtod))
        self.register_buffer("w_min", s.w_min * spread(s.bound_dtod))
        n_sides = 2 if s.unidirectional else 1
        self.register_buffer("state", torch.zeros((n_sides, *shape)))

    # --- reading -----------------------------------------------------------------------
    def weight(self) -> torch.Tensor:
        if self.spec.unidirectional:
            return self.state[0] - self.state[1]
        return self.state[0]

    def program(self, w: torch.Tensor) -> None:
        """Set the weights directly (idealised write-verify, e.g. to copy a digital init)."""
        w = w.detach().to(self.state.dtype)
        if self.spec.unidirectional:
            self.state[0] = w.clamp_min(0).minimum(self.w_max)
            self.state[1] = (-w).clamp_min(0).minimum(self.w_max)
        else:
            self.state[0] = torch.maximum(torch.minimum(w, self.w_max), self.w_min)

    # --- writing -----------------------------------------------------------------------
    def steps(self, w: torch.Tensor, up: bool) -> torch.Tensor:
        """Step size of one up (or down) pulse at state `w`, per device (>= 0)."""
        s = self.spec
        if up:
            dw, g, bound = self.dw_up, s.gamma_up, self.w_max
        else:
            dw, g, bound = self.dw_down, s.gamma_down, self.w_min
        if s.model == "constant":
            return dw
        # 1 at w = 0, 0 at the bound being approached (2 at the opposite one)
        frac = (1 - w / bound).clamp_min(0)
        if s.model == "linear":
            return dw * (1 - g * (1 - frac)).clamp_min(0)
        if s.model == "power":
            return dw * frac.pow(g)
        return dw * torch.exp(-g * (1 - frac))  # exp

    def pulse(self, n_up: torch.Tensor, n_down: torch.Tensor) -> None:
        """Apply `n_up` potentiation and `n_down` depression pulses to every device.

        The step is evaluated at the current state for all pulses of one call (first order in
        the step, exact for the constant model away from the bounds); cycle-to-cycle noise of
        n independent pulses adds up to sqrt(n) x c2c x step. Pulses past a bound are lost.
        """
        s = self.spec
        if s.unidirectional:
            for side, n in ((0, n_up), (1, n_down)):
                g = self.state[side]
                st = self.steps(g, up=True)
                delta = n * st
                if s.c2c > 0:
                    delta = delta + s.c2c * st * n.sqrt() * torch.randn_like(g)
                self.state[side] = torch.minimum((g + delta).clamp_min(0), self.w_max)
            return
        w = self.state[0]
        su, sd = self.steps(w, up=True), self.steps(w, up=False)
        delta = n_up * su - n_down * sd
        if s.c2c > 0:
            var = n_up * su.square() + n_down * sd.square()
            delta = delta + s.c2c * var.sqrt() * torch.randn_like(w)
        self.state[0] = torch.maximum(torch.minimum(w + delta, self.w_max), self.w_min)

    def refresh(self, threshold: float) -> int:
        """Differential pairs whose larger side passed `threshold` x w_max are reset and their
        weight G+ - G- rewritten onto one side (Burr et al. 2015 "occasional RESET"; an
        idealised write-verify). Returns the number of programming pulses that rewrite takes
        (|w| / dw per refreshed pair)."""
        if not self.spec.unidirectional:
            return 0
        full = self.state.amax(0) > threshold * self.w_max
        if not bool(full.any()):
            return 0
        w = self.weight()
        pulses = int(torch.ceil(w[full].abs() / self.spec.dw).sum())
        self.state[0] = torch.where(full, w.clamp_min(0), self.state[0])
        self.state[1] = torch.where(full, (-w).clamp_min(0), self.state[1])
        return pulses

    def symmetry_point(self) -> torch.Tensor:
        """The state where an up and a down pulse cancel on average (bidirectional devices)."""
        s = self.spec
        if s.unidirectional or s.model == "constant":
            return torch.zeros_like(self.dw_up)
        # bisection on step_up(w) - step_down(w), which falls monotonically in w
        lo, hi = self.w_min.clone(), self.w_max.clone()
        for _ in range(40):
            mid = (lo + hi) / 2
            f = self.steps(mid, True) - self.steps(mid, False)
            lo = torch.where(f > 0, mid, lo)
            hi = torch.where(f > 0, hi, mid)
        return (lo + hi) / 2
