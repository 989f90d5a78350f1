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

Channel pools (``pool_types``, the official ``ChannelGate(pool_types=[...])``; default the paper's avg, max):
each pooled descriptor goes through the shared MLP, the results are summed (in the listed order) before the
sigmoid:

    'avg'  mean over H x W                                   (official F.avg_pool2d over the whole map)
    'max'  max over H x W                                    (F.max_pool2d over the whole map)
    'lp'   sqrt(sum_{h,w} x^2), the power-2 LP pool          (F.lp_pool2d(x, 2, (H, W)))
    'lse'  log sum_{h,w} exp(x), computed max-shifted        (official logsumexp_2d)
"""
from typing import List, Optional, Sequence, Type, Union

import torch
from torch import nn

from timm.layers import create_act_layer

__all__ = ['CBAM', 'CbamChannelGate', 'CbamSpatialGate']


POOL_TYPES = ('avg', 'max', 'lp', 'lse')


class CbamChannelGate(nn.Module):
    """M_c: shared MLP over the pooled descriptors (paper: average and max), summed, sigmoid.

    ``pool_types``: one or more of 'avg', 'max', 'lp', 'lse' (module docstring); ValueError for others.
    """

    def __init__(self, channels: int, rd_ratio: float = 1. / 16, rd_channels: Optional[int] = None,
                 act_layer: Type[nn.Module] = nn.ReLU, gate_layer: Union[str, Type[nn.Module]] = 'sigmoid',
                 pool_types: Sequence[str] = ('avg', 'max'), device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if isinstance(pool_types, str) or not pool_types or any(p not in POOL_TYPES for p in pool_types):
            raise ValueError(f'CBAM pool_types must be a non-empty sequence of {POOL_TYPES}, got {pool_types!r}')
        self.pool_types: List[str] = list(pool_types)
        rd_channels = rd_channels or int(channels * rd_ratio)
        self.fc1 = nn.Linear(channels, rd_channels, **dd)
        self.act = create_act_layer(act_layer, inplace=True)
        self.fc2 = nn.Linear(rd_channels, channels, **dd)
        self.gate = create_act_layer(gate_layer)

    @staticmethod
    def _pool(x: torch.Tensor, kind: str) -> torch.Tensor:
        """(N, C, H, W) -> (N, C), pooled over the whole map."""
        if kind == 'avg':
            return x.mean((2, 3))
        if kind == 'max':
            return x.amax((2, 3))
        if kind == 'lp':
            return torch.linalg.vector_norm(x.flatten(2), 2, dim=2)  # sqrt(sum x^2); its gradient at 0 is 0
        return torch.logsumexp(x.flatten(2), dim=2)  # 'lse'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        att = self.fc2(self.act(self.fc1(self._pool(x, self.pool_types[0]))))
        for kind in self.pool_types[1:]:
            att = att + self.fc2(self.act(self.fc1(self._pool(x, kind))))
        return x * self.gate(att)[:, :, None, None]


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
        pool_types: the channel gate's pools, summed through the shared MLP: 'avg', 'max' (paper, default),
            'lp', 'lse' (the official code's ``pool_types``; module docstring).
    """

    def __init__(
            self,
            channels: int,
            rd_ratio: float = 1. / 16,
            rd_channels: Optional[int] = None,
            spatial_kernel: int = 7,
            no_spatial: bool = False,
            act_layer: Type[nn.Module] = nn.ReLU,
            pool_types: Sequence[str] = ('avg', 'max'),
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.channel = CbamChannelGate(channels, rd_ratio, rd_channels, act_layer, pool_types=pool_types, **dd)
        self.spatial = nn.Identity() if no_spatial else CbamSpatialGate(spatial_kernel, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
