"""Dataflow accelerator energy model (Eyeriss-style) for any PyTorch model.

    from frugalml import accel
    layers = accel.model_layers("alexnet-grouped", batch=4)      # or accel.extract(net, x)
    res = accel.analyze(layers, accel.load_arch("eyeriss-v1"), "rs")
    res.to_dict()["total"]["dram_per_mac"]; res.cost()

Access counts come from an analytical reuse model (`accel.model`), mappings from a
pruned search over tilings and loop orders (`accel.mapper`); see those modules.
"""

from frugalml.accel.arch import Arch, from_dict
from frugalml.accel.arch import load as load_arch
from frugalml.accel.arch import names as arch_names
from frugalml.accel.dataflows import DATAFLOWS
from frugalml.accel.energy import LayerResult, ModelResult, analyze, analyze_layer, compare, model_layers
from frugalml.accel.workload import Layer, conv_layer, extract, rlc_ratio_at_zeros, with_zero_fractions

__all__ = [
    "DATAFLOWS",
    "Arch",
    "Layer",
    "LayerResult",
    "ModelResult",
    "analyze",
    "analyze_layer",
    "arch_names",
    "compare",
    "conv_layer",
    "extract",
    "from_dict",
    "load_arch",
    "model_layers",
    "rlc_ratio_at_zeros",
    "with_zero_fractions",
]
