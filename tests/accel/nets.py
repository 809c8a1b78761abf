"""Small user models for the CLI tests (imported as tests.accel.nets:factory) and the tiny
accelerator spec the hand-counted tests share."""

from torch import nn


def tiny_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.Flatten(), nn.Linear(8 * 7 * 7, 10)
    )


def conv3d():
    return nn.Sequential(nn.Conv3d(1, 2, 3))


# 2x2 PEs, 64 B register files, 4 kB buffer, ISCA 2016's normalised energies (1 = one MAC)
TINY_SPEC = {
    "name": "tiny",
    "pe_array": [2, 2],
    "rf_bytes": 64,
    "glb_bytes": 4096,
    "word_bytes": 2,
    "clock_hz": 1e8,
    "energy": {"dram": 200, "glb": 6, "array": 2, "rf": 1, "mac": 1},
}
