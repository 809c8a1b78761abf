"""ImageNet-size reference networks, layer for layer as their standard definitions.

Parameter counts match the common library definitions exactly (AlexNet 61,100,840;
VGG-16 138,357,544; ResNet-18 11,689,512; ResNet-50 25,557,032; MobileNetV2 3,504,872),
so the costs frugalml reports for them can be compared with published figures.
"""

from __future__ import annotations

from torch import nn

from frugalml.models import register

IMAGENET = (1, 3, 224, 224)


class AlexNet(nn.Module):
    """Single-tower AlexNet (the variant of common libraries, 64-192-384-256-256)."""

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 36, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class AlexNetGrouped(nn.Module):
    """The original two-group AlexNet (Krizhevsky 2012) with Eyeriss's layer shapes.

    Input 227x227. CONV2, CONV4 and CONV5 are grouped (two towers), CONV3 is not, so the
    per-group channel counts are those Eyeriss uses: C = 3, 48, 256, 192, 192.
    """

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.5):
        super().__init__()
        lrn = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, 11, stride=4),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(**lrn),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2, groups=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(**lrn),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 36, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    def __init__(self, cfg=VGG16_CFG, num_classes=1000, in_channels=3, dropout=0.5):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 49, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def _conv_bn(cin, cout, k, stride=1, groups=1, act=True, act_layer=nn.ReLU):
    layers = [
        nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(act_layer(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, width, stride=1):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, width, 3, stride), _conv_bn(width, width, 3, act=False))
        self.shortcut = _shortcut(cin, width, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride=1):
        super().__init__()
        cout = width * 4
        self.body = nn.Sequential(
            _conv_bn(cin, width, 1), _conv_bn(width, width, 3, stride), _conv_bn(width, cout, 1, act=False)
        )
        self.shortcut = _shortcut(cin, cout, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


def _shortcut(cin, cout, stride):
    if stride == 1 and cin == cout:
        return nn.Identity()
    return _conv_bn(cin, cout, 1, stride, act=False)


class ResNet(nn.Module):
    """ResNet v1.5 (stride in the 3x3 conv of bottlenecks), as in common libraries.

    `small_input=True` swaps the 7x7/2 stem and max-pool for one 3x3/1 conv, for
    images of a few dozen pixels (digits, CIFAR-size).
    """

    def __init__(self, block, layers, num_classes=1000, in_channels=3, small_input=False, width=64):
        super().__init__()
        if small_input:
            self.stem = _conv_bn(in_channels, width, 3)
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, padding=1),
            )
        stages, cin = [], width
        for i, n in enumerate(layers):
            w = width * 2**i
            blocks = []
            for j in range(n):
                blocks.append(block(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.fc(self.pool(self.stages(self.stem(x))).flatten(1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = round(cin * expand)
        layers = [] if expand == 1 else [_conv_bn(cin, hidden, 1, act_layer=nn.ReLU6)]
        layers += [
            _conv_bn(hidden, hidden, 3, stride, groups=hidden, act_layer=nn.ReLU6),
            _conv_bn(hidden, cout, 1, act=False),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def _divisible(v, divisor=8):
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class MobileNetV2(nn.Module):
    SETTINGS = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]

    def __init__(self, num_classes=1000, in_channels=3, width_mult=1.0, dropout=0.2):
        super().__init__()
        cin = _divisible(32 * width_mult)
        last = _divisible(1280 * max(1.0, width_mult))
        layers = [_conv_bn(in_channels, cin, 3, 2, act_layer=nn.ReLU6)]
        for t, c, n, s in self.SETTINGS:
            cout = _divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(_conv_bn(cin, last, 1, act_layer=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(x.flatten(1))


# input_size is accepted (and unused: adaptive pooling) so `models.for_data` works for all.
@register("alexnet", IMAGENET, "AlexNet, single tower (61.1M params)")
def alexnet(num_classes=1000, in_channels=3, input_size=None):
    return AlexNet(num_classes, in_channels)


@register("alexnet-grouped", (1, 3, 227, 227), "original two-group AlexNet, Eyeriss shapes")
def alexnet_grouped(num_classes=1000, in_channels=3, input_size=None):
    return AlexNetGrouped(num_classes, in_channels)


@register("vgg16", IMAGENET, "VGG-16, configuration D (138.4M params)")
def vgg16(num_classes=1000, in_channels=3, input_size=None):
    return VGG(VGG16_CFG, num_classes, in_channels)


@register("resnet18", IMAGENET, "ResNet-18 (11.7M params); small_input=True for tiny images")
def resnet18(num_classes=1000, in_channels=3, input_size=None, small_input=None):
    small = small_input if small_input is not None else (input_size is not None and input_size < 64)
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, small)


@register("resnet50", IMAGENET, "ResNet-50 v1.5 (25.6M params)")
def resnet50(num_classes=1000, in_channels=3, input_size=None, small_input=None):
    small = small_input if small_input is not None else (input_size is not None and input_size < 64)
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, small)


@register("mobilenet_v2", IMAGENET, "MobileNetV2 1.0 (3.5M params)")
def mobilenet_v2(num_classes=1000, in_channels=3, input_size=None, width_mult=1.0):
    return MobileNetV2(num_classes, in_channels, width_mult)
