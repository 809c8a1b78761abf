"""Small user models for the CLI tests (imported as tests.accel.nets:factory)."""

from torch import nn


def tiny_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.Flatten(), nn.Linear(8 * 7 * 7, 10)
    )


def conv3d():
    return nn.Sequential(nn.Conv3d(1, 2, 3))
