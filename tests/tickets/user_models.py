"""A user's own networks, as `--model user_models:NAME` finds them (tests put this folder on the path).

`my_resnet` takes no arguments at all: frugalml must call it without num_classes, in_channels
or input_size. It expects 1x8x8 inputs and gives 4 logits.
"""

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class TinyResNet(nn.Module):
    def __init__(self, classes: int = 4, ch: int = 6):
        super().__init__()
        self.stem = nn.Conv2d(1, ch, 3, padding=1)
        self.block = Block(ch)
        self.head = nn.Linear(ch * 4 * 4, classes)

    def forward(self, x):
        x = self.block(torch.relu(self.stem(x)))
        return self.head(torch.flatten(nn.functional.max_pool2d(x, 2), 1))


def my_resnet():
    return TinyResNet()


def my_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 4))


class Eigen(nn.Module):
    """A network the ONNX exporter cannot translate (no ONNX operator for eigenvalues)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 4)

    def forward(self, x):
        x = x.reshape(x.shape[0], 8, 8)
        return self.fc(x.reshape(x.shape[0], 64)) + torch.linalg.eigvals(x.detach()).real.sum(-1, keepdim=True)


def eigen_net():
    return Eigen()
