"""Small networks of the lottery-ticket paper (Frankle & Carbin 2019)."""

from __future__ import annotations

from torch import nn

from frugalml.models import register


class MLP(nn.Module):
    """Fully connected ReLU network; LeNet-300-100 with the default sizes."""

    def __init__(self, in_features: int = 784, hidden=(300, 100), num_classes: int = 10):
        super().__init__()
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(sizes[-1], num_classes)

    def forward(self, x):
        return self.fc(self.features(x.flatten(1)))


class ConvNet(nn.Module):
    """Conv-2/4/6: pairs of 3x3 convs each followed by 2x2 max-pool, then FC 256-256 (`dims=1`:
    the same over a 1-D signal, width-3 convs and 2x pools)."""

    def __init__(self, widths, in_channels=3, input_size=32, num_classes=10, fc=(256, 256), dims: int = 2):
        super().__init__()
        conv, pool = (nn.Conv1d, nn.MaxPool1d) if dims == 1 else (nn.Conv2d, nn.MaxPool2d)
        layers: list[nn.Module] = []
        c, size = in_channels, input_size
        for w in widths:
            layers += [conv(c, w, 3, padding=1), nn.ReLU()]
            layers += [conv(w, w, 3, padding=1), nn.ReLU(), pool(2)]
            c, size = w, size // 2
        if size < 1:
            from frugalml.errors import FrugalError

            what = "input length {} is too short" if dims == 1 else "input size {} is too small"
            raise FrugalError(f"{what.format(input_size)} for {len(widths)} pools")
        self.features = nn.Sequential(*layers)
        sizes = [c * size**dims, *fc]
        head: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            head += [nn.Linear(a, b), nn.ReLU()]
        self.classifier = nn.Sequential(*head)
        self.fc = nn.Linear(sizes[-1], num_classes)

    def forward(self, x):
        return self.fc(self.classifier(self.features(x).flatten(1)))


@register("mlp", (1, 784), "LeNet-300-100 style MLP (sizes configurable)")
def mlp(in_features: int = 784, hidden=(300, 100), num_classes: int = 10):
    return MLP(in_features, tuple(hidden), num_classes)


@register("conv2", (1, 3, 32, 32), "Conv-2 of the lottery-ticket paper")
def conv2(in_channels=3, input_size=32, num_classes=10):
    return ConvNet([64], in_channels, input_size, num_classes)


@register("conv4", (1, 3, 32, 32), "Conv-4 of the lottery-ticket paper")
def conv4(in_channels=3, input_size=32, num_classes=10):
    return ConvNet([64, 128], in_channels, input_size, num_classes)


@register("conv6", (1, 3, 32, 32), "Conv-6 of the lottery-ticket paper")
def conv6(in_channels=3, input_size=32, num_classes=10):
    return ConvNet([64, 128, 256], in_channels, input_size, num_classes)


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a shortcut (1x1 conv + BN when the shape changes), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
        return (y + self.shortcut(x)).relu()


class SmallResNet(nn.Module):
    """A 3x3 stem, one basic block per width (stride 2 after the first), global average pool, Linear."""

    def __init__(self, widths=(64, 128), in_channels=3, input_size=32, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(c, w, 1 if i == 0 else 2))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


@register("resnet-small", (1, 3, 32, 32), "Small ResNet: stem + basic blocks of widths 64, 128, with BatchNorm")
def resnet_small(in_channels=3, input_size=32, num_classes=10, widths=(64, 128)):
    return SmallResNet(tuple(widths), in_channels, input_size, num_classes)


class ConvNet1d(ConvNet):
    """Conv-n for 1-D signals (MNIST-1D): pairs of width-3 convs, each pair followed by a
    2x max-pool, then FC 256-256. A (N, L) input is read as one channel."""

    def __init__(self, widths, in_channels=1, input_length=40, num_classes=10, fc=(256, 256)):
        super().__init__(widths, in_channels, input_length, num_classes, fc, dims=1)

    def forward(self, x):
        return super().forward(x.unsqueeze(1) if x.dim() == 2 else x)


@register("conv6_1d", (1, 40), "Conv-6 for 1-D signals such as MNIST-1D (widths 32-64-128)")
def conv6_1d(in_channels=1, input_length=40, num_classes=10, widths=(32, 64, 128)):
    return ConvNet1d(list(widths), in_channels, input_length, num_classes)
