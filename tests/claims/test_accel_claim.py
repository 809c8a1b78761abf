"""Claim: row stationary (RS) spends less energy than weight stationary, output stationary and
no local reuse on a CNN's conv layers (Chen et al., ISCA 2016), here on a small CNN, with the
dataflows compared as the paper does: under the same chip area, each on its best RF/buffer split."""

from torch import nn

from frugalml.accel import load_arch
from frugalml.accel.energy import compare, model_layers


def test_row_stationary_is_the_cheapest_dataflow_on_a_small_cnn():
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1),
    )
    layers = [layer for layer in model_layers(net, (4, 3, 16, 16)) if layer.kind == "conv"]
    assert len(layers) == 3
    table, _ = compare(layers, load_arch("isca16"), equal_area=True)
    per_mac = {name: row["conv_energy_per_mac"] for name, row in table.items()}
    print("conv energy per MAC (1 = one MAC):", {k: round(v, 3) for k, v in per_mac.items()})
    for other in ("ws", "os", "nlr"):
        assert per_mac[other] > 1.1 * per_mac["rs"], (other, per_mac)
