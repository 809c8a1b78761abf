"""Analog training: networks whose weights are conductances in crossbar arrays of devices,
updated in place by coincident voltage pulses (Gokmen & Vlasov 2016).

    from frugalml.analog import devices, tile
    spec = devices.spec("ecram")                      # a preset, with its source
    net = tile.convert(digital_net, spec, algorithm="tiki-taka")
    ...  loss.backward(); tile.analog_step(net, lr)   # the pulsed update

`frugalml.analog.run.train` does a whole run next to its digital twin, with energy.
"""

# Loaded on first use, so `frugal --help` (which imports frugalml.analog.cli) needs no torch.
_LAZY = {
    **{n: "frugalml.analog.devices" for n in ("PRESETS", "DeviceArray", "DeviceSpec", "spec")},
    **{
        n: "frugalml.analog.tile"
        for n in ("AnalogConv2d", "AnalogLinear", "AnalogTile", "IOConfig", "analog_step", "convert", "quantize")
    },
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'frugalml.analog' has no attribute '{name}'")


__all__ = sorted(_LAZY)
