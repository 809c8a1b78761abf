"""Analog training: networks whose weights are conductances in crossbar arrays of devices,
updated in place by coincident voltage pulses (Gokmen & Vlasov 2016).

    from frugalml.analog import devices, tile
    spec = devices.spec("ecram")                      # a preset, with its source
    net = tile.convert(digital_net, spec, algorithm="tiki-taka")
    ...  loss.backward(); tile.analog_step(net, lr)   # the pulsed update

`frugalml.analog.run.train` does a whole run next to its digital twin, with energy.
"""

from frugalml.analog.devices import PRESETS, DeviceArray, DeviceSpec, spec
from frugalml.analog.tile import AnalogConv2d, AnalogLinear, AnalogTile, IOConfig, analog_step, convert, quantize

__all__ = [
    "PRESETS",
    "AnalogConv2d",
    "AnalogLinear",
    "AnalogTile",
    "DeviceArray",
    "DeviceSpec",
    "IOConfig",
    "analog_step",
    "convert",
    "quantize",
    "spec",
]
