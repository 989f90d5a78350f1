"""SPA: spatial pyramid attention.

Paper: "SPANet: Spatial Pyramid Attention Network for Enhanced Image Recognition", Jingda Guo, Xu Ma,
Andrew Sansom, Mara McGuire, Andrew Kalaani, Qi Chen, Sihai Tang, Qing Yang, Song Fu, ICME 2020.
Official code: https://github.com/ma-xu/SPANet (``models/spp_se_resnet.py``, ``SPPSELayer``).

The squeeze of SE is replaced by a spatial pyramid of average pools (1x1, 2x2, 4x4 bins), flattened per
channel and concatenated into a 21C vector:

    z = cat(flat(AvgPool_1(x)), flat(AvgPool_2(x)), flat(AvgPool_4(x)))      (N, 21C), channel-major bins
    s = sigmoid(W2 relu(W1 z)),   W1: 21C -> C/r,  W2: C/r -> C  (no biases, r = 16)
    y = x * s

Any input size: adaptive pooling to 2x2 / 4x4 bins works for every map, including maps smaller than the bins
(1x1 input: every bin is the single pixel).

Equal to the official ``SPPSELayer(channel, reduction=16)``: ``nn.AdaptiveAvgPool2d`` 1 / 2 / 4, each
``.view(b, p * p * c)`` (channel-major, as ``flatten(1)`` here), concatenated 1, 2, 4; ``fc = Sequential(
Linear(21C, C // 16, bias=False), ReLU, Linear(C // 16, C, bias=False), Sigmoid)``. Official keys
``se.fc.0.weight`` / ``se.fc.2.weight`` -> ``fc1.weight`` / ``fc2.weight`` (``attention_resnet``'s
``checkpoint_filter_fn``). The official repository trains only CIFAR networks (pre-activation ResNets with a
3x3 stem, SPA after conv3 before the residual add); it has no ImageNet model or checkpoint (docs/zoo.md).
"""
from typing import Optional, Sequence, Type, Union

import torch
import torch.nn.functional as F
from torch import nn

from timm.layers import create_act_layer

__all__ = ['SpatialPyramidAttention']


class SpatialPyramidAttention(nn.Module):
    """SPA channel attention (official ``SPPSELayer``).

    Args:
        channels: input (= output) channels.
        pool_sizes: pyramid bin counts per side (paper: 1, 2, 4 -> 21 bins).
        rd_ratio: reduction of the hidden layer relative to ``channels`` (paper: 1/16); rd_channels overrides.
    """

    def __init__(
            self,
            channels: int,
            pool_sizes: Sequence[int] = (1, 2, 4),
            rd_ratio: float = 1. / 16,
            rd_channels: Optional[int] = None,
            act_layer: Type[nn.Module] = nn.ReLU,
            gate_layer: Union[str, Type[nn.Module]] = 'sigmoid',
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.pool_sizes = tuple(int(p) for p in pool_sizes)
        bins = sum(p * p for p in self.pool_sizes)
        rd_channels = rd_channels or int(channels * rd_ratio)
        self.fc1 = nn.Linear(channels * bins, rd_channels, bias=False, **dd)
        self.act = create_act_layer(act_layer, inplace=True)
        self.fc2 = nn.Linear(rd_channels, channels, bias=False, **dd)
        self.gate = create_act_layer(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        pooled = []
        for p in self.pool_sizes:
            pooled.append(F.adaptive_avg_pool2d(x, p).flatten(1))  # (N, C * p * p), channel-major
        z = torch.cat(pooled, dim=1)  # (N, 21C)
        s = self.gate(self.fc2(self.act(self.fc1(z))))
        return x * s.reshape(n, c, 1, 1)
