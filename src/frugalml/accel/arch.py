"""Accelerator specs as data: YAML files in `accel/archs/` or the user's own file.

    pe_array: [12, 14]          # rows (Y) x columns (X)
    rf_bytes: 512               # register file per PE
    rf_partition_words: {weights: 224, inputs: 12, outputs: 24}   # optional, per tensor
    glb_bytes: 110592           # global buffer
    word_bytes: 2
    clock_hz: 200.0e6
    dram_bytes_per_cycle: 8     # optional: adds a bandwidth bound to latency
    sparse: false               # true: skip zero weights/activations (Eyeriss v2 style)
    rlc: false                  # true: activations to/from DRAM run-length compressed (Eyeriss v1)
    zero_gating: false          # true: a zero input gates the MAC and its RF accesses (energy, not time)
    glb_bypass: [weights]       # optional: tensors that go DRAM -> PEs without the global buffer
    area: {rf_per_byte: 2.0, glb_per_byte: 1.0, pe: 0, source: ...}   # optional, relative units (accel.area)
    energy: {unit: normalized, dram: 200, glb: 6, array: 2, rf: 1, mac: 1}   # or unit: pJ
    energy_sources: {dram: "...", ...}   # where each level's energy comes from (required for pJ specs)

Energy is per word access (per MAC for `mac`). `normalized` energies are in units of one
MAC's energy; only `pJ` specs give joules.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from frugalml.errors import FrugalError

LEVELS = ("dram", "glb", "array", "rf", "mac")
TENSORS = ("weights", "inputs", "outputs")
UNITS = ("normalized", "pJ")


@dataclass(frozen=True)
class Arch:
    name: str
    pe_array: tuple[int, int]
    rf_bytes: int
    glb_bytes: int
    word_bytes: int
    clock_hz: float
    energy: dict[str, float]
    energy_unit: str = "normalized"
    rf_partition_words: dict[str, int] | None = None
    dram_bytes_per_cycle: float | None = None
    sparse: bool = False
    rlc: bool = False
    zero_gating: bool = False
    glb_bypass: tuple[str, ...] = ()
    area: dict | None = None
    energy_sources: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def pes(self) -> int:
        return self.pe_array[0] * self.pe_array[1]

    @property
    def rf_words(self) -> int:
        if self.rf_partition_words:
            return sum(self.rf_partition_words.values())
        return self.rf_bytes // self.word_bytes

    @property
    def glb_words(self) -> int:
        return self.glb_bytes // self.word_bytes

    @property
    def absolute(self) -> bool:
        return self.energy_unit == "pJ"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["pe_array"] = list(self.pe_array)
        d["pes"] = self.pes
        return d


def _positive(spec: dict, key: str, where: str, kind=float, required=True):
    if key not in spec or spec[key] is None:
        if required:
            raise FrugalError(f"{where}: missing '{key}'")
        return None
    value = spec[key]
    try:
        if isinstance(value, bool):
            raise TypeError
        number = kind(value)
        if kind is int and number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise FrugalError(f"{where}: '{key}' must be a positive number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise FrugalError(f"{where}: '{key}' must be positive, got {value!r}")
    return number


def from_dict(spec: dict, where: str = "arch spec") -> Arch:
    if not isinstance(spec, dict):
        raise FrugalError(f"{where}: expected a mapping of keys, got {type(spec).__name__}")
    arr = spec.get("pe_array")
    if not isinstance(arr, list | tuple) or len(arr) != 2:
        raise FrugalError(f"{where}: 'pe_array' must be [rows, columns], got {arr!r}")
    rows = _positive({"pe_array rows": arr[0]}, "pe_array rows", where, int)
    cols = _positive({"pe_array columns": arr[1]}, "pe_array columns", where, int)
    energy = spec.get("energy")
    if not isinstance(energy, dict):
        raise FrugalError(f"{where}: missing 'energy' (per access at {', '.join(LEVELS)}, and 'unit')")
    unit = energy.get("unit", "normalized")
    if unit not in UNITS:
        raise FrugalError(f"{where}: energy unit must be one of {', '.join(UNITS)}, got {unit!r}")
    costs = {lv: _positive(energy, lv, f"{where} energy", float) for lv in LEVELS}
    part = spec.get("rf_partition_words")
    if part is not None:
        if not isinstance(part, dict) or set(part) - set(TENSORS):
            raise FrugalError(f"{where}: 'rf_partition_words' must map {', '.join(TENSORS)} to word counts")
        part = {t: _positive(part, t, f"{where} rf_partition_words", int) for t in TENSORS}
    sources = spec.get("energy_sources") or {}
    if not isinstance(sources, dict) or set(sources) - set(LEVELS):
        raise FrugalError(f"{where}: 'energy_sources' must map levels among {', '.join(LEVELS)} to text")
    if unit == "pJ" and spec.get("energy_sources") is not None and set(sources) != set(LEVELS):
        missing = ", ".join(lv for lv in LEVELS if lv not in sources)
        raise FrugalError(f"{where}: 'energy_sources' gives no source for {missing}")
    bypass = spec.get("glb_bypass") or []
    if not isinstance(bypass, list | tuple) or set(bypass) - {"weights", "inputs"}:
        raise FrugalError(f"{where}: 'glb_bypass' must list tensors among weights, inputs; got {bypass!r}")
    area = spec.get("area")
    if area is not None:
        if not isinstance(area, dict):
            raise FrugalError(f"{where}: 'area' must map rf_per_byte, glb_per_byte (and optionally pe) to numbers")
        area = {
            "rf_per_byte": _positive(area, "rf_per_byte", f"{where} area", float),
            "glb_per_byte": _positive(area, "glb_per_byte", f"{where} area", float),
            "pe": float(area.get("pe", 0) or 0),
            "source": str(area.get("source", "")),
        }
    word = _positive(spec, "word_bytes", where, int)
    rf = _positive(spec, "rf_bytes", where, int)
    glb = _positive(spec, "glb_bytes", where, int)
    if glb < word:
        raise FrugalError(f"{where}: glb_bytes={glb} holds less than one {word}-byte word")
    return Arch(
        name=str(spec.get("name", where)),
        pe_array=(rows, cols),
        rf_bytes=rf,
        glb_bytes=glb,
        word_bytes=word,
        clock_hz=_positive(spec, "clock_hz", where, float),
        energy=costs,
        energy_unit=unit,
        rf_partition_words=part,
        dram_bytes_per_cycle=_positive(spec, "dram_bytes_per_cycle", where, float, required=False),
        sparse=bool(spec.get("sparse", False)),
        rlc=bool(spec.get("rlc", False)),
        zero_gating=bool(spec.get("zero_gating", False)),
        glb_bypass=tuple(bypass),
        area=area,
        energy_sources={str(k): str(v) for k, v in sources.items()},
        description=str(spec.get("description", "")),
        source=str(spec.get("source", "")),
        notes=[str(n) for n in spec.get("notes", []) or []],
    )


def names() -> list[str]:
    folder = resources.files("frugalml.accel") / "archs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load(name_or_path: str | Path) -> Arch:
    """A shipped spec by name (`frugal accel archs`) or a YAML file path."""
    import yaml

    text = None
    if str(name_or_path) in names():
        text = (resources.files("frugalml.accel") / "archs" / f"{name_or_path}.yaml").read_text()
        where = str(name_or_path)
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise FrugalError(f"unknown arch '{name_or_path}': not a shipped spec ({', '.join(names())}) nor a file")
        text, where = path.read_text(), str(path)
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise FrugalError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
    arch = from_dict(spec, where)
    return arch
