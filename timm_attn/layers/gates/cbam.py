"""CBAM: convolutional block attention module (channel attention, then spatial attention).

Paper: "CBAM: Convolutional Block Attention Module", Sanghyun Woo, Jongchan Park, Joon-Young Lee,
In So Kweon, ECCV 2018, https://arxiv.org/abs/1807.06521.
Official code: https://github.com/Jongchan/attention-module (``MODELS/cbam.py``).

    M_c(F) = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F)))          (shared MLP C -> C/16 -> C, eq. 2)
    F'  = M_c(F) * F
    M_s(F') = sigmoid(f7x7([MaxPool_c(F'); AvgPool_c(F')]))       (eq. 3; pools over channels)
    F'' = M_s(F') * F'

As the official code: the MLP (``nn.Linear``) has biases, the 7x7 conv has none and is followed by a BatchNorm
(not in the paper's eq. 3; momentum 0.01) whose weight starts at 0 (the official ResNet init), and the channel
pool stacks max then mean. timm's ``CbamModule`` (``timm.layers.cbam``) also has the conv + BatchNorm (a
``ConvNormAct``) but differs: the channel pool stacks mean then max, the MLP is 1x1 convs without bias
(``mlp_bias=False``) whose reduced width is rounded (not truncated), and the key layout is another
(``spatial.conv.conv`` / ``spatial.conv.bn``, 4-d MLP weights; its BN weight starts at 1, momentum 0.1), so
this is a separate layer. Any input size from 1x1 (padding 3 keeps the map size).
"""
from typing import Optional, Type, Union

import torch
from torch import nn

from timm.layers import create_act_layer

__all__ = ['CBAM', 'CbamChannelGate', 'CbamSpatialGate']


class CbamChannelGate(nn.Module):
    """M_c: shared MLP over the average- and max-pooled descriptors, summed, sigmoid."""

    def __init__(self, channels: int, rd_ratio: float = 1. / 16, rd_channels: Optional[int] = None,
                 act_layer: Type[nn.Module] = nn.ReLU, gate_layer: Union[str, Type[nn.Module]] = 'sigmoid',
                 device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        rd_channels = rd_channels or int(channels * rd_ratio)
        self.fc1 = nn.Linear(channels, rd_channels, **dd)
        self.act = create_act_layer(act_layer, inplace=True)
        self.fc2 = nn.Linear(rd_channels, channels, **dd)
        self.gate = create_act_layer(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.fc2(self.act(self.fc1(x.mean((2, 3)))))
        mx = self.fc2(self.act(self.fc1(x.amax((2, 3)))))
        return x * self.gate(avg + mx)[:, :, None, None]


class CbamSpatialGate(nn.Module):
    """M_s: k x k conv (no bias) + BN over [max over channels; mean over channels], gate (sigmoid)."""

    def __init__(self, kernel_size: int = 7, gate_layer: Union[str, Type[nn.Module]] = 'sigmoid',
                 device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'CBAM spatial kernel_size must be odd (same-size output), got {kernel_size}')
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False, **dd)
        self.norm = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01, **dd)  # official BasicConv: momentum 0.01
        nn.init.zeros_(self.norm.weight)  # official ResidualNet init: SpatialGate BN weight = 0
        self.gate = create_act_layer(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], dim=1)  # (N, 2, H, W)
        return x * self.gate(self.norm(self.conv(pooled)))


class CBAM(nn.Module):
    """CBAM, channel gate then spatial gate (paper's sequential order, its best arrangement).

    Args:
        channels: input (= output) channels.
        rd_ratio: MLP reduction (paper: 1/16); rd_channels overrides.
        spatial_kernel: spatial conv size (paper: 7).
        no_spatial: channel gate only (the official code's ``no_spatial`` flag).
    """

    def __init__(
            self,
            channels: int,
            rd_ratio: float = 1. / 16,
            rd_channels: Optional[int] = None,
            spatial_kernel: int = 7,
            no_spatial: bool = False,
            act_layer: Type[nn.Module] = nn.ReLU,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.channel = CbamChannelGate(channels, rd_ratio, rd_channels, act_layer, **dd)
        self.spatial = nn.Identity() if no_spatial else CbamSpatialGate(spatial_kernel, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
