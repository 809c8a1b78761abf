"""Energy and time of an analog training run, from the events the tiles counted, and of the
same training done digitally, from counted MACs. Both come back as `frugalml.cost.Cost`.

Every default below is a parameter; the `SOURCES` entry says where it comes from and how
firm it is. The analog figure covers the arrays and their converters only (no digital
activation functions, no data movement); the digital figure covers fp32 arithmetic only
(no memory traffic, which on real hardware costs more than the arithmetic). Both are
modelled, so compare them as orders of magnitude, not to the percent.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from frugalml.cost.currency import COUNTED, MODELLED, Cost


@dataclass(frozen=True)
class EnergyModel:
    dac_j: float = 0.1e-12  # per input conversion
    adc_j: float = 1.0e-12  # per output conversion
    cell_read_j: float = 0.4e-15  # per device per vector read: (0.2 V)^2 x 1 uS x 10 ns
    line_pulse_j: float = 10e-15  # per pulse on a row/column line (driver + line charging)
    mvm_time_s: float = 80e-9  # one vector through one array (integration + conversion)
    pulse_time_s: float = 1e-9  # one slot of an update pulse train
    digital_mac_j: float = 4.6e-12  # fp32 multiply (3.7 pJ) + add (0.9 pJ)
    digital_mac_per_s: float | None = None  # None: no digital time is modelled

    def to_dict(self) -> dict:
        return asdict(self)


SOURCES = {
    "adc_j": "~1 pJ per 8-9-bit conversion: Walden figure of merit of a few fJ/conversion-step "
    "(Murmann, ADC Performance Survey 1997-2024) x 2^9 steps; order of magnitude",
    "dac_j": "assumed 10x below the ADC (a 7-bit input driver / pulse-width modulator); order of magnitude",
    "cell_read_j": "V^2 G t with 0.2 V read, 1 uS device, 10 ns integration; order of magnitude",
    "line_pulse_j": "assumed ~10 fJ to drive one pulse on a crossbar line; order of magnitude",
    "device_pulse_j": "per device programming event; per preset (see `frugal analog devices`)",
    "mvm_time_s": "80 ns per vector read, Gokmen & Vlasov 2016 system design estimate",
    "pulse_time_s": "1 ns pulse slots, Gokmen & Vlasov 2016 device specification",
    "digital_mac_j": "Horowitz, ISSCC 2014, 45 nm: fp32 multiply 3.7 pJ + add 0.9 pJ (arithmetic only)",
}


def analog_time_s(counts: dict[str, float], bl: int, model: EnergyModel = EnergyModel()) -> float:
    """Sequential time: every vector read and every rank-one update (its train's slots, counted
    as `slots`; BL each where they were not counted) one after the other; the devices of one
    array work in parallel, layers are not pipelined."""
    vectors = counts["fwd_vectors"] + counts["bwd_vectors"]
    slots = counts.get("slots", counts["updates"] * bl)
    return vectors * model.mvm_time_s + slots * model.pulse_time_s


def analog_cost(counts: dict[str, float], device_pulse_j: float, bl: int, model: EnergyModel = EnergyModel()):
    """`Cost` of the counted analog events, and the energy per part."""
    parts = {
        "dac": counts["dac"] * model.dac_j,
        "adc": counts["adc"] * model.adc_j,
        "cell_reads": counts["cell_reads"] * model.cell_read_j,
        "line_pulses": counts["line_pulses"] * model.line_pulse_j,
        "device_pulses": counts["device_pulses"] * device_pulse_j,
    }
    cost = Cost(
        energy_j=sum(parts.values()),
        latency_s=analog_time_s(counts, bl, model),
        notes={
            "energy_j": f"{MODELLED}: counted DAC/ADC conversions, device reads, line pulses and device "
            "programming events x per-event energies (frugalml.analog.energy.SOURCES)",
            "latency_s": f"{MODELLED}: whole training run, vectors and updates one after the other "
            "(80 ns per vector read, 1 ns per pulse slot)",
        },
    )
    return cost, parts


def digital_cost(train_macs: float, model: EnergyModel = EnergyModel()) -> Cost:
    """`Cost` of `train_macs` fp32 multiply-accumulates (forward + backward + weight update)."""
    return Cost(
        energy_j=train_macs * model.digital_mac_j,
        notes={
            "energy_j": f"{COUNTED}/{MODELLED}: training MACs counted by frugalml.cost.profile x 4.6 pJ "
            "per fp32 MAC (Horowitz 2014, arithmetic only, no memory traffic)"
        },
    )


def inference_costs(shapes: list[tuple[int, int]], array_size: int, params: int, model: EnergyModel = EnergyModel()):
    """Per-inference `Cost`s (one example's forward pass) of a net with Linear layers `shapes`
    ((in, out) each): (digital fp32 MACs, analog reads through the tiles).

    The analog read counts what `AnalogTile.mvm` counts for one vector: a layer wider than
    one array drives its DACs per output block and digitises per input block; re-reads by
    bound management are not counted (they depend on the input).
    """
    macs = sum(k * m for k, m in shapes)
    digital = Cost(
        params=params,
        macs=macs,
        energy_j=macs * model.digital_mac_j,
        notes={"energy_j": f"{COUNTED}/{MODELLED}: forward MACs x 4.6 pJ per fp32 MAC (Horowitz 2014, arithmetic)"},
    )
    dac = sum(k * math.ceil(m / array_size) for k, m in shapes)
    adc = sum(m * math.ceil(k / array_size) for k, m in shapes)
    analog = Cost(
        params=params,
        macs=macs,
        energy_j=dac * model.dac_j + adc * model.adc_j + macs * model.cell_read_j,
        latency_s=len(shapes) * model.mvm_time_s,
        notes={
            "energy_j": f"{MODELLED}: one vector read per layer: DAC and ADC conversions and device reads x "
            "per-event energies (frugalml.analog.energy.SOURCES); digital activations not counted",
            "latency_s": f"{MODELLED}: 80 ns per layer's vector read, layers one after the other",
            "macs": "performed in the arrays (analog), counted as the digital net's MACs",
        },
    )
    return digital, analog
