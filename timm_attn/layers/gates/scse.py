"""cSE, sSE and scSE: channel, spatial and concurrent spatial-and-channel squeeze & excitation.

Paper: "Concurrent Spatial and Channel 'Squeeze & Excitation' in Fully Convolutional Networks",
Abhijit Guha Roy, Nassir Navab, Christian Wachinger, MICCAI 2018, https://arxiv.org/abs/1803.02579.

    cSE:  z = AvgPool(U);  s = sigmoid(W2 relu(W1 z));  U_cSE = U * s            (W1: C -> C/r, W2: C/r -> C)
    sSE:  q = sigmoid(W_sq * U)  (1x1 conv C -> 1);      U_sSE = U * q
    scSE: U_scSE = U_cSE + U_sSE      (``combine='add'``, the paper; ``'max'``: element-wise max, the
          aggregation the authors' follow-up journal paper prefers)

The paper does not give biases; both are written here with biases (as SE and the official code). The paper
used r = 2 on segmentation networks of 64 channels or fewer; the default here is r = 16 (SE's), which is what a
ResNet-50 with 256..2048 channels needs to stay SE-sized. Any input size from 1x1.

Official code: https://github.com/ai-med/squeeze_and_excitation (``squeeze_and_excitation.py``:
``ChannelSELayer``, ``SpatialSELayer``, ``ChannelSpatialSELayer``). Our defaults differ from its two
(docs/zoo.md, "Our defaults vs the official ones"): ``combine='add'`` (the MICCAI paper's equation; the
official ``ChannelSpatialSELayer`` takes ``torch.max``: ``combine='max'``) and ``rd_ratio=1/16`` (official
``reduction_ratio=2``, width C // 2: ``rd_ratio=1/2``, for its 64-channel segmentation networks).
"""
from typing import Optional

import torch
from torch import nn

from timm.layers import SEModule

__all__ = ['ChannelSE', 'SpatialSE', 'SCSE']


class ChannelSE(SEModule):
    """cSE: squeeze over space, excite channels (= SE): timm's ``SEModule`` (keys fc1 / fc2, with biases) with the
    reduced width ``max(1, int(C * rd_ratio))`` (no rounding to a divisor of 8). Default ``rd_ratio`` 1/16 (SE's);
    the official ``ChannelSELayer`` has ``reduction_ratio=2`` (``rd_ratio=1/2``)."""

    def __init__(self, channels: int, rd_ratio: float = 1. / 16, rd_channels: Optional[int] = None,
                 device=None, dtype=None):
        rd = rd_channels or max(1, int(channels * rd_ratio))
        super().__init__(channels, rd_channels=rd, device=device, dtype=dtype)


class SpatialSE(nn.Module):
    """sSE: squeeze over channels with a 1x1 conv, excite positions."""

    def __init__(self, channels: int, device=None, dtype=None):
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


class SCSE(nn.Module):
    """scSE: cSE and sSE in parallel, aggregated by ``combine``: 'add' (default, the paper's equation) or 'max'
    (the official ``ChannelSpatialSELayer``). Default ``rd_ratio`` 1/16; the official one is 1/2."""

    def __init__(self, channels: int, rd_ratio: float = 1. / 16, rd_channels: Optional[int] = None,
                 combine: str = 'add', device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if combine not in ('add', 'max'):
            raise ValueError(f"scSE combine must be 'add' (paper) or 'max', got {combine!r}")
        self.combine = combine
        self.cse = ChannelSE(channels, rd_ratio, rd_channels, **dd)
        self.sse = SpatialSE(channels, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.combine == 'max':
            return torch.maximum(self.cse(x), self.sse(x))
        return self.cse(x) + self.sse(x)
