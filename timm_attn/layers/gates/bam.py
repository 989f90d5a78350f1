"""BAM: bottleneck attention module (parallel channel and dilated spatial branches, placed between stages).

Paper: "BAM: Bottleneck Attention Module", Jongchan Park, Sanghyun Woo, Joon-Young Lee, In So Kweon,
BMVC 2018, https://arxiv.org/abs/1807.06514.
Official code: https://github.com/Jongchan/attention-module (``MODELS/bam.py``).

    M_c(F) = BN(MLP(AvgPool(F)))                       MLP C -> C/r -> C (one hidden layer, BN + ReLU), eq. 3
    M_s(F) = BN(f1x1(f3x3_d4(f3x3_d4(f1x1(F)))))      C -> C/r -> C/r -> C/r -> 1, dilation 4, eq. 4
    M(F)   = sigmoid(M_c(F) + M_s(F))                  broadcast to C x H x W, eq. 2 (``combine='sum'``)
    F'     = F + F * M(F) = (1 + M(F)) * F             eq. 1

As the official code (and the paper's text): the hidden layers of both branches have BN + ReLU, the final
layers of both branches have a bias and no BN (the paper writes BN(...) around both branches; the code has
a BN only after hidden layers), r = 16, d = 4. Deviation of the official code from the paper: it multiplies
the two branches (``sigmoid(M_c * M_s)``); ``combine='product'`` selects that. Default: the paper's sum.
The official channel branch pools with ``avg_pool2d(x, H)`` (wrong for non-square maps); here the
global mean. Any input size from 1x1 (the dilated convs pad by 4: same-size output on every map).
BatchNorm1d in the channel branch needs a batch of 2 or more in training.

Depth options, as the official constructors: ``num_layers`` (official ``ChannelGate(num_layers=1)``) is the
number of hidden layers (Linear + BN + ReLU, all C/r wide) of the channel MLP; ``num_dilated`` (official
``SpatialGate(dilation_conv_num=2)``) the number of dilated 3x3 convs (+ BN + ReLU) of the spatial branch.
Official BAM builds both at their defaults (1 and 2), the paper's module. Keys: the first hidden layer is
``channel_fc1`` / ``channel_norm`` (official ``gate_c_fc_0`` / ``gate_c_bn_1``), the further ones
``channel_hidden.{3i}`` / ``.{3i + 1}`` (``gate_c_fc_{i + 1}`` / ``gate_c_bn_{i + 2}``; empty at the default).
"""
from typing import Optional

import torch
from torch import nn

from .._ops import conv_bn

__all__ = ['BAM']


class BAM(nn.Module):
    """Bottleneck attention module.

    Args:
        channels: input (= output) channels.
        rd_ratio: reduction r of both branches (paper: 1/16); rd_channels overrides.
        dilation: dilation of the spatial branch's 3x3 convs (paper: 4).
        num_dilated: number of dilated 3x3 convs in the spatial branch (paper: 2; official
            ``dilation_conv_num``), 0 or more.
        num_layers: number of hidden layers of the channel MLP (paper: 1; official ``num_layers``), 1 or more.
        combine: 'sum' (paper, eq. 2) or 'product' (official code) of the two branches before the sigmoid.
    """

    def __init__(
            self,
            channels: int,
            rd_ratio: float = 1. / 16,
            rd_channels: Optional[int] = None,
            dilation: int = 4,
            num_dilated: int = 2,
            combine: str = 'sum',
            num_layers: int = 1,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if combine not in ('sum', 'product'):
            raise ValueError(f"BAM combine must be 'sum' (paper) or 'product' (official code), got {combine!r}")
        if num_layers < 1 or num_dilated < 0:
            raise ValueError(f'BAM needs num_layers >= 1 and num_dilated >= 0, got {num_layers}, {num_dilated}')
        self.combine = combine
        rd = rd_channels or int(channels * rd_ratio)
        # channel branch: (N, C) -> (N, C)
        self.channel_fc1 = nn.Linear(channels, rd, **dd)
        self.channel_norm = nn.BatchNorm1d(rd, **dd)
        self.channel_act = nn.ReLU(inplace=True)
        hidden = []
        for _ in range(num_layers - 1):
            hidden += [nn.Linear(rd, rd, **dd), nn.BatchNorm1d(rd, **dd), nn.ReLU(inplace=True)]
        self.channel_hidden = nn.Sequential(*hidden)  # the hidden layers after the first (none by default)
        self.channel_fc2 = nn.Linear(rd, channels, **dd)
        # spatial branch: (N, C, H, W) -> (N, 1, H, W)
        layers = [*conv_bn(channels, rd, bias=True, relu=True, dd=dd)]
        for _ in range(num_dilated):
            layers += conv_bn(rd, rd, 3, dilation=dilation, bias=True, relu=True, dd=dd)
        layers.append(nn.Conv2d(rd, 1, 1, **dd))
        self.spatial = nn.Sequential(*layers)  # keys 0, 1, ... as the official code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mc = self.channel_act(self.channel_norm(self.channel_fc1(x.mean((2, 3)))))
        mc = self.channel_fc2(self.channel_hidden(mc))
        mc = mc[:, :, None, None]  # (N, C, 1, 1)
        ms = self.spatial(x)  # (N, 1, H, W)
        logits = mc + ms if self.combine == 'sum' else mc * ms
        return x * (1. + torch.sigmoid(logits))
