"""NAS elastic convolutions: the active size is chosen at call time; the weights used are the leading slice.

A sub-network with c channels uses channels 0..c-1 of the full layer, a kernel of size k uses
the centre k taps of the largest kernel (Once-for-All). With `kernel_transform`, as in OFA,
the centre taps pass through a small learned k x k matrix per smaller kernel size (shared by
all channels of the layer, identity at initialisation): kernel 5 = centre(7) @ M5, kernel 3 =
centre(kernel 5) @ M3, so a small kernel need not be exactly the middle of the large one.
`export(...)` copies that slice into an ordinary `nn.Conv1d`, so an extracted sub-network runs
without any slicing overhead and can be saved and loaded on its own. The elastic linear and
BatchNorm layers are shared with other supernets and live in `frugalml.models.elastic`.

`sort_channels` reorders hidden channels by importance (L1 norm of the weights that read
them), so that the leading slice keeps the most important ones (OFA's channel sorting).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# the NAS name of the shared elastic BatchNorm, kept for the CNN supernet and its tests
from frugalml.models.elastic import ElasticBatchNorm


class ElasticConv1d(nn.Module):
    def __init__(
        self, in_max: int, out_max: int, k_max: int, stride: int = 1, bias: bool = False, kernel_transform: bool = False
    ):
        super().__init__()
        self.in_max, self.out_max, self.k_max, self.stride = in_max, out_max, k_max, stride
        conv = nn.Conv1d(in_max, out_max, k_max, stride=stride, padding=k_max // 2, bias=bias)
        self.weight = conv.weight
        self.bias = conv.bias
        self.transforms = nn.ParameterDict(
            {f"k{k}": nn.Parameter(torch.eye(k)) for k in range(k_max - 2, 0, -2)} if kernel_transform else {}
        )

    def active_weight(self, in_ch: int, out_ch: int, k: int) -> torch.Tensor:
        if k > self.k_max or k % 2 == 0:
            raise ValueError(f"kernel {k} not an odd size <= {self.k_max}")
        if not self.transforms:
            start = (self.k_max - k) // 2
            return self.weight[:out_ch, :in_ch, start : start + k]
        w = self.weight[:out_ch, :in_ch]
        for size in range(self.k_max - 2, k - 1, -2):  # shrink 2 taps at a time, as OFA does
            w = w[..., 1:-1] @ self.transforms[f"k{size}"]
        return w

    def forward(self, x: torch.Tensor, out_ch: int | None = None, k: int | None = None) -> torch.Tensor:
        out_ch = out_ch or self.out_max
        k = k or self.k_max
        w = self.active_weight(x.shape[1], out_ch, k)
        b = None if self.bias is None else self.bias[:out_ch]
        return F.conv1d(x, w, b, stride=self.stride, padding=k // 2)

    def export(self, in_ch: int, out_ch: int, k: int) -> nn.Conv1d:
        conv = nn.Conv1d(in_ch, out_ch, k, stride=self.stride, padding=k // 2, bias=self.bias is not None)
        with torch.no_grad():
            conv.weight.copy_(self.active_weight(in_ch, out_ch, k))
            if self.bias is not None:
                conv.bias.copy_(self.bias[:out_ch])
        return conv


@torch.no_grad()
def sort_channels(producer: ElasticConv1d, bn: ElasticBatchNorm, consumer: ElasticConv1d) -> torch.Tensor:
    """Permute the hidden channels between `producer` and `consumer` by importance, most important first.

    Importance = L1 norm of the consumer's weights reading the channel. The permutation is
    applied to the producer's output channels, the BatchNorm and the consumer's input
    channels together, so the full network computes exactly the same function.
    """
    importance = consumer.weight.abs().sum(dim=(0, 2))
    order = torch.argsort(importance, descending=True)
    producer.weight.copy_(producer.weight[order])
    if producer.bias is not None:
        producer.bias.copy_(producer.bias[order])
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        t.copy_(t[order])
    consumer.weight.copy_(consumer.weight[:, order])
    return order
