"""`Cost`: the one currency every technique reports in.

Each figure carries a note saying how it was obtained, because a measured joule and a
modelled joule are not the same claim. Fields that were not determined stay `None`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

MEASURED = "measured"
MODELLED = "modelled"
ESTIMATED = "estimated"
COUNTED = "counted"


@dataclass
class Cost:
    params: int | None = None
    nonzero_params: int | None = None
    macs: int | None = None  # dense multiply-accumulates, forward pass
    macs_effective: int | None = None  # MACs whose weight operand is nonzero
    latency_s: float | None = None
    energy_j: float | None = None
    co2e_g: float | None = None
    usd: float | None = None
    wall_s: float | None = None  # of a run (training, search), not of one inference: see latency_s
    cpu_s: float | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def flops(self) -> int | None:
        """FLOPs = 2 x MACs (one multiply and one add each)."""
        return None if self.macs is None else 2 * self.macs

    @property
    def flops_effective(self) -> int | None:
        return None if self.macs_effective is None else 2 * self.macs_effective

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flops"] = self.flops
        d["flops_effective"] = self.flops_effective
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cost:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def merged(self, other: Cost) -> Cost:
        """Fields of `other` fill in what this one lacks (notes included)."""
        out = Cost(**{f.name: getattr(self, f.name) for f in fields(self)})
        out.notes = dict(other.notes) | dict(self.notes)
        for f in fields(self):
            if f.name != "notes" and getattr(out, f.name) is None:
                setattr(out, f.name, getattr(other, f.name))
        return out


# Rows of a before/after table: (field, label, formatter)
def si(x: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}".rstrip()


def _seconds(x: float) -> str:
    if x < 1e-3:
        return f"{x * 1e6:.3g} us"
    if x < 1:
        return f"{x * 1e3:.3g} ms"
    return f"{x:.3g} s"


ROWS = [
    ("params", "parameters", lambda v: si(v, "")),
    ("nonzero_params", "nonzero parameters", lambda v: si(v, "")),
    ("macs", "MACs (dense, fwd)", lambda v: si(v, "")),
    ("macs_effective", "MACs (nonzero weights)", lambda v: si(v, "")),
    ("latency_s", "latency", _seconds),
    ("energy_j", "energy", lambda v: si(v, "J")),
    ("co2e_g", "CO2e", lambda v: si(v, "g")),
    ("usd", "cost", lambda v: f"${v:,.4g}"),
    ("wall_s", "wall-clock", _seconds),
    ("cpu_s", "CPU time", _seconds),
]


def comparison_rows(before: Cost, after: Cost) -> list[tuple[str, str, str, str]]:
    """(label, before, after, after/before) for every field either side has."""
    rows = []
    for name, label, fmt in ROWS:
        b, a = getattr(before, name), getattr(after, name)
        if b is None and a is None:
            continue
        ratio = f"{a / b:.3g}x" if (a is not None and b) else "-"
        rows.append((label, "-" if b is None else fmt(b), "-" if a is None else fmt(a), ratio))
    return rows
