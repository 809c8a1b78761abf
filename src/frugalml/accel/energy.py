"""Per-layer and whole-model results: accesses, energy, utilisation, cycles, latency.

`analyze(layers, arch, dataflow)` maps each layer (mapper.search) and reports, per layer
and in total: MACs, accesses at each level per tensor, energy per level, energy per MAC,
DRAM accesses per MAC, PE utilisation, cycles and latency at the arch's clock.

Energies are in the arch's unit: `normalized` (one MAC = 1; no joules) or `pJ`.
The sparsity-aware variant (arch `sparse: true` or `sparse=True`) rescales the dense
mapping's counts by the measured densities: MACs, RF operand reads and cycles by
weight x input density (ideal zero skipping), weight and input transfers by their own
density (compressed, no index overhead); partial sums stay dense. It is an optimistic
estimate and is marked as such in every result.

Eyeriss v1's own savings, when the arch spec turns them on: `rlc` shrinks activations read
from and written to DRAM to their run-length-compressed size measured on the forward pass
(`workload.rlc_words`); `zero_gating` lets a zero input skip its MAC, weight read and
partial-sum update (energy only: the cycle is still spent). With pJ energies the totals
also give joules and watts over the modelled time, with and without DRAM (a chip's measured
power is its own, DRAM excluded).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from frugalml.accel import dataflows, mapper
from frugalml.accel.arch import Arch
from frugalml.accel.workload import Layer

LEVELS = ("dram", "glb", "array", "rf")
TENSORS = ("weights", "inputs", "outputs")
SPARSE_NOTE = (
    "sparsity-aware (Eyeriss v2 style): ideal skipping of zero weights and activations, "
    "compressed transfers without index overhead"
)


@dataclass
class LayerResult:
    name: str
    kind: str
    shape: dict
    macs: int
    macs_effective: float
    accesses: dict  # level -> tensor -> words
    energy: dict  # level (incl. mac) -> energy
    cycles: float
    utilization: float
    latency_s: float
    mapping: dict
    mapped_in_s: float
    evaluated: int

    @property
    def total_energy(self) -> float:
        return sum(self.energy.values())

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": self.shape,
            "macs": self.macs,
            "macs_effective": self.macs_effective,
            "accesses": {lv: dict(t, total=sum(t.values())) for lv, t in self.accesses.items()},
            "energy": dict(self.energy, total=self.total_energy),
            "energy_per_mac": self.total_energy / self.macs,
            "dram_per_mac": sum(self.accesses["dram"].values()) / self.macs,
            "utilization": self.utilization,
            "cycles": self.cycles,
            "latency_s": self.latency_s,
            "mapping": self.mapping,
            "mapped_in_s": self.mapped_in_s,
            "mappings_evaluated": self.evaluated,
        }


@dataclass
class ModelResult:
    arch: Arch
    dataflow: str
    layers: list[LayerResult]
    sparse: bool
    objective: str = "energy"
    notes: list[str] = field(default_factory=list)

    def select(self, kinds) -> list[LayerResult]:
        return [r for r in self.layers if r.kind in kinds]

    def total(self, kinds=("conv", "fc", "matmul")) -> dict:
        rs = self.select(kinds)
        macs = sum(r.macs for r in rs)
        acc = {lv: {t: sum(r.accesses[lv][t] for r in rs) for t in TENSORS} for lv in LEVELS}
        energy = {lv: sum(r.energy[lv] for r in rs) for lv in (*LEVELS, "mac")}
        cycles = sum(r.cycles for r in rs)
        e_tot = sum(energy.values())
        return {
            "macs": macs,
            "macs_effective": sum(r.macs_effective for r in rs),
            "accesses": {lv: dict(t, total=sum(t.values())) for lv, t in acc.items()},
            "energy": dict(energy, total=e_tot),
            "energy_per_mac": e_tot / macs if macs else None,
            "dram_per_mac": sum(acc["dram"].values()) / macs if macs else None,
            # MACs actually done (nonzero ones when sparse) per PE-cycle
            "utilization": sum(r.macs_effective for r in rs) / (cycles * self.arch.pes) if cycles else None,
            "cycles": cycles,
            "latency_s": sum(r.latency_s for r in rs),
            "mapped_in_s": sum(r.mapped_in_s for r in rs),
        } | self._absolute(energy, e_tot, sum(r.latency_s for r in rs))

    def _absolute(self, energy: dict, e_tot: float, latency_s: float) -> dict:
        """Joules and watts for a pJ spec: all, and on chip (without DRAM, as a chip's measured power is)."""
        if not self.arch.absolute:
            return {}
        onchip = e_tot - energy["dram"]
        return {
            "energy_j": e_tot * 1e-12,
            "onchip_energy_j": onchip * 1e-12,
            "power_w": e_tot * 1e-12 / latency_s if latency_s else None,
            "onchip_power_w": onchip * 1e-12 / latency_s if latency_s else None,
        }

    @property
    def energy_unit(self) -> str:
        return "pJ" if self.arch.absolute else "normalized (1 = one MAC)"

    def to_dict(self) -> dict:
        kinds = {r.kind for r in self.layers}
        out = {
            "arch": self.arch.name,
            "dataflow": self.dataflow,
            "objective": self.objective,
            "energy_unit": self.energy_unit,
            "sparse": self.sparse,
            "sparse_model": SPARSE_NOTE if self.sparse else self._dense_note(),
            "layers": [r.to_dict() for r in self.layers],
            "total": self.total(),
            "notes": self.notes + self.arch.notes,
        }
        for kind in sorted(kinds):
            out[f"total_{kind}"] = self.total((kind,))
        return out

    def _dense_note(self) -> str:
        chip = [
            "zero inputs gate their MAC and RF accesses (energy, not time)" if self.arch.zero_gating else "",
            "activations run-length compressed in DRAM" if self.arch.rlc else "",
        ]
        chip = [c for c in chip if c]
        if not chip:
            return "dense: every MAC and every word counted"
        return "every MAC takes its cycle; " + "; ".join(chip) + " (Eyeriss v1, JSSC 2017)"

    def cost(self):
        """This model on this accelerator as a `frugalml.cost.Cost` (joules only for absolute specs)."""
        from frugalml.cost.currency import MODELLED, Cost

        tot = self.total()
        how = f"{MODELLED}: frugalml.accel {self.dataflow} on {self.arch.name}" + (" (sparse)" if self.sparse else "")
        notes = {"macs": "counted from layer shapes", "latency_s": f"{how}, compute-bound at {self.arch.clock_hz:g} Hz"}
        energy_j = None
        if self.arch.absolute:
            energy_j = tot["energy"]["total"] * 1e-12
            notes["energy_j"] = f"{how}, absolute energies from the arch spec (pJ)"
        else:
            notes["energy_j"] = (
                f"not given: {self.arch.name} energies are normalised; total "
                f"{tot['energy']['total']:.4g} MAC-energy units"
            )
        return Cost(
            macs=tot["macs"],
            macs_effective=round(tot["macs_effective"]),
            latency_s=tot["latency_s"],
            energy_j=energy_j,
            notes=notes,
        )


def analyze_layer(layer: Layer, arch: Arch, dataflow: str, objective="energy", sparse=None, **search_kw):
    df = dataflows.get(dataflow)
    sparse = arch.sparse if sparse is None else sparse
    t0 = time.perf_counter()
    mapping, ev, evaluated = mapper.search(layer, arch, df, objective=objective, **search_kw)
    seconds = time.perf_counter() - t0
    dw, da = (layer.weight_density, layer.input_density) if sparse else (1.0, 1.0)
    both = dw * da
    macs_pad = ev["macs_padded"]
    acc = {lv: {t: ev[f"acc_{lv}_{t}"] for t in TENSORS} for lv in LEVELS}
    if sparse:
        # split the RF counts into per-MAC operand accesses (skipped with zeros) and fills
        per_mac = {"weights": macs_pad, "inputs": macs_pad, "outputs": 2 * macs_pad}
        for t in TENSORS:
            if acc["rf"][t]:
                fills = acc["rf"][t] - per_mac[t]
                scale = {"weights": dw, "inputs": da, "outputs": 1.0}[t]
                acc["rf"][t] = per_mac[t] * both + fills * scale
        for lv in ("dram", "glb", "array"):
            acc[lv]["weights"] *= dw
            acc[lv]["inputs"] *= da
    if arch.rlc:
        _compress_activations(acc, layer)
    gated = layer.input_density if (arch.zero_gating and not sparse) else 1.0
    if gated < 1.0:
        _gate_zeros(acc, df, macs_pad, gated)
    en = arch.energy
    energy = {lv: en[lv] * sum(acc[lv].values()) for lv in LEVELS}
    energy["mac"] = en["mac"] * macs_pad * both * gated
    cycles = ev["cycles"] * both
    if arch.dram_bytes_per_cycle:
        cycles = max(cycles, sum(acc["dram"].values()) * arch.word_bytes / arch.dram_bytes_per_cycle)
    shape = {d: getattr(layer, d) for d in "NMCPQRSG"} | {"stride": list(layer.stride)}
    return LayerResult(
        name=layer.name,
        kind=layer.kind,
        shape=shape,
        macs=layer.macs,
        macs_effective=layer.macs * both,
        accesses=acc,
        energy=energy,
        cycles=cycles,
        utilization=layer.macs * both / (cycles * arch.pes),
        latency_s=cycles / arch.clock_hz,
        mapping=mapping.to_dict(),
        mapped_in_s=seconds,
        evaluated=evaluated,
    )


def _compress_activations(acc: dict, layer: Layer) -> None:
    """Eyeriss v1's run-length code on activations crossing DRAM (JSSC 2017): inputs read and the
    final outputs written shrink to their measured compressed size (never grow: an incompressible
    tensor is sent raw); partial sums spilled to DRAM and read back stay raw."""
    dram = acc["dram"]
    dram["inputs"] *= min(1.0, layer.input_rlc)
    final = layer.sizes["outputs"]
    spilled = max(dram["outputs"] - final, 0.0)
    dram["outputs"] = min(dram["outputs"], final) * min(1.0, layer.output_rlc) + spilled


def _gate_zeros(acc: dict, df, macs: float, density: float) -> None:
    """Eyeriss v1's data gating (JSSC 2017): a zero input skips the MAC, the weight read and the partial
    sum read and write in the PE's RF (saves energy, not cycles)."""
    skipped = macs * (1.0 - density)
    if df.keeps(0):
        acc["rf"]["weights"] -= skipped
    if df.keeps(2):
        acc["rf"]["outputs"] -= 2 * skipped


def analyze(layers, arch: Arch, dataflow: str = "rs", objective="energy", sparse=None, progress=False, **kw):
    """Map every layer; returns a ModelResult."""
    from frugalml.report.progress import progress as bar

    sparse = arch.sparse if sparse is None else sparse
    results = []
    with bar(len(layers), f"mapping ({dataflow} on {arch.name})", enabled=None if progress else False) as advance:
        for layer in layers:
            results.append(analyze_layer(layer, arch, dataflow, objective, sparse, **kw))
            advance(layer=layer.name)
    return ModelResult(arch, dataflow, results, sparse, objective)


def model_layers(model, input_shape=None, batch=None) -> list[Layer]:
    """Workloads of a registry model name (or an nn.Module) at `batch`."""
    import torch

    from frugalml import models
    from frugalml.accel.workload import extract

    if isinstance(model, str):
        shape = tuple(input_shape) if input_shape else models.default_input(model)
        torch.manual_seed(0)  # the same random weights every run: densities and compressed sizes repeat
        net = models.get(model)
    else:
        if input_shape is None:
            from frugalml.errors import FrugalError

            raise FrugalError("a user model needs an input shape")
        shape, net = tuple(input_shape), model
    torch.manual_seed(0)
    layers = extract(net, torch.randn(*shape))
    if batch is not None and batch != shape[0]:
        layers = [layer.scaled(batch / shape[0]) for layer in layers]
    return layers


def compare(
    layers,
    arch: Arch,
    names=("rs", "ws", "os", "nlr"),
    objective="energy",
    sparse=None,
    progress=False,
    equal_area=False,
    **search_kw,
):
    """All dataflows side by side; energies per MAC in the arch's unit.

    `equal_area`: each dataflow on the RF/buffer split of the spec's storage area where it spends
    least energy (`accel.area`, as ISCA 2016 compares them); else all on the spec's own sizes."""
    from frugalml.accel import area

    out = {}
    results = {}
    for name in names:
        tried = None
        if equal_area:
            res, tried = area.best_allocation(
                layers, arch, name, analyze, objective=objective, sparse=sparse, progress=progress, **search_kw
            )
        else:
            res = analyze(layers, arch, name, objective, sparse, progress, **search_kw)
        results[name] = res
        conv, fc = res.total(("conv",)), res.total(("fc", "matmul"))
        tot = res.total()
        out[name] = {
            "conv_energy_per_mac": conv["energy_per_mac"],
            "fc_energy_per_mac": fc["energy_per_mac"],
            "total_energy": tot["energy"]["total"],
            "energy_per_mac": tot["energy_per_mac"],
            "dram_per_mac": tot["dram_per_mac"],
            "utilization": tot["utilization"],
            "conv_energy_by_level": conv["energy"],
            "fc_energy_by_level": fc["energy"],
            "mapped_in_s": tot["mapped_in_s"],
            "rf_bytes": res.arch.rf_bytes,
            "glb_bytes": res.arch.glb_bytes,
        }
        if tried is not None:
            out[name]["allocations_tried"] = tried
    return out, results
