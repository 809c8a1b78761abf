"""Elastic layers shared by the supernets: built at their largest size, run on a leading slice.

A sub-network with c channels uses channels 0..c-1 of the full layer, so every sub-network
is a slice of one set of weights. `export(...)` copies that slice into an ordinary
`nn.Linear` / `nn.BatchNorm1d`, which runs without slicing and saves on its own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ElasticLinear(nn.Module):
    """Linear layer that runs on the first `x.shape[-1]` inputs and the first `out_features` outputs.

    Initialised as `nn.Linear` (same random draws, in the same order); `zero_bias=True` starts
    the bias at zero instead of drawing it.
    """

    def __init__(self, in_max: int, out_max: int, bias: bool = True, zero_bias: bool = False):
        super().__init__()
        self.in_max, self.out_max = in_max, out_max
        self.weight = nn.Parameter(torch.empty(out_max, in_max))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if not bias:
            self.register_parameter("bias", None)
            return
        self.bias = nn.Parameter(torch.zeros(out_max))
        if not zero_bias:
            bound = 1 / math.sqrt(in_max) if in_max > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, out_features: int | None = None) -> torch.Tensor:
        out = out_features or self.out_max
        b = None if self.bias is None else self.bias[:out]
        return F.linear(x, self.weight[:out, : x.shape[-1]], b)

    def export(self, in_features: int, out_features: int) -> nn.Linear:
        lin = nn.Linear(in_features, out_features, bias=self.bias is not None)
        with torch.no_grad():
            lin.weight.copy_(self.weight[:out_features, :in_features])
            if self.bias is not None:
                lin.bias.copy_(self.bias[:out_features])
        return lin


class ElasticBatchNorm(nn.BatchNorm1d):
    """BatchNorm over (N, C) or (N, C, L) whose statistics and affine parameters are sliced to the input's C.

    In training it normalises with the batch statistics, except when there is one value per
    channel (nothing to average), where it uses the running ones. `momentum=None` counts as 0.1.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if self.training:
            self.num_batches_tracked += 1
        return F.batch_norm(
            x,
            self.running_mean[:c],
            self.running_var[:c],
            self.weight[:c],
            self.bias[:c],
            self.training and x.numel() > c,
            self.momentum if self.momentum is not None else 0.1,
            self.eps,
        )

    def export(self, c: int) -> nn.BatchNorm1d:
        bn = nn.BatchNorm1d(c, eps=self.eps, momentum=self.momentum)
        with torch.no_grad():
            bn.weight.copy_(self.weight[:c])
            bn.bias.copy_(self.bias[:c])
            bn.running_mean.copy_(self.running_mean[:c])
            bn.running_var.copy_(self.running_var[:c])
        return bn
