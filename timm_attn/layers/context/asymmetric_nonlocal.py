"""Asymmetric non-local blocks: APNB (pyramid-pooled self-attention) and AFNB (fusion of two stages).

Paper: "Asymmetric Non-local Neural Networks for Semantic Segmentation", Zhen Zhu, Mengde Xu, Song Bai,
Tengteng Huang, Xiang Bai, ICCV 2019, https://arxiv.org/abs/1908.07678
Official code: https://github.com/MendelXu/ANN (``models/seg/utils/apnb.py``, ``afnb.py``).

Pyramid sampling P(.): adaptive average pooling to s x s for s in (1, 3, 6, 8), flattened and
concatenated: S = 1 + 9 + 36 + 64 = 110 anchor points whatever the input size (the adaptive pool
repeats values when the map is smaller than s, so a 1 x 1 map works).

APNB (eq. 5-7), one input X:
    Q = phi(X) (N x Ck), K = P(phi(X)) (S x Ck)     phi = 1x1 conv + BN + ReLU, SHARED by query and key
    V = P(theta(X)) (S x Cv)                          theta = 1x1 conv
    Y = W( softmax_S(Q K^T / sqrt(Ck)) V )            W = 1x1 conv Cv -> C, weight and bias start at 0
AFNB, low-level X_l (keys / values) and high-level X_h (queries, output grid):
    Q = phi_h(X_h), K = P(phi_l(X_l)), V = P(theta(X_l)); Y = W(softmax(Q K^T / sqrt(Ck)) V)
    (two separate key / query convs: they see different inputs).
Output (``fuse``):
    'concat' (official): conv1x1(cat[Y, X]) -> BN (+ ReLU in APNB) -> Dropout2d; X = X_h in AFNB.
    'add': X + Y, a residual block that is the identity at init (W = 0), used by the classifiers
           here so the backbone's pretrained features pass unchanged at the start of training.

APNB ``scale`` (official ``_SelfAttentionBlock(..., scale)``, "downsample the input feature maps (save memory
cost)"): X is max-pooled first (``nn.MaxPool2d(kernel_size=scale)``: stride = kernel, floor, no padding, so the
input must be at least scale x scale), Y is computed on the pooled grid, W applied, and Y is upsampled back to
X's size, bilinear with align_corners=True, before the fuse. The ANN file (``apnb.py``, "modified from" OCNet's
``base_oc_block.py``) keeps the pooling but lost OCNet's upsampling line, so its scale > 1 fails at the concat;
the upsampling here is OCNet's (and OCR's ``ObjectAttentionBlock``). The official ``APNB(sizes=[...])`` sums one
such block per scale; the official networks use one block, ``sizes=[1]``, and so does this module (one
``scale``). AFNB has no ``scale`` (its pooling is commented out in the official ``afnb.py``).

Defaults that differ from the official ones (docs/zoo.md, "Our defaults vs the official ones"): ``fuse='add'``
(official 'concat'): a residual block inside a classifier keeps the pretrained backbone's features at init;
``drop_rate=0`` (official 0.05), used by the 'concat' head only: set 0.05 with it for the official head.
"""
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._ops import conv_bn

__all__ = ['pyramid_pool', 'PyramidNonLocal', 'FusionNonLocal']


def pyramid_pool(x: torch.Tensor, sizes: List[int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, sum s^2): adaptive average pools to s x s, flattened, concatenated."""
    return torch.cat([F.adaptive_avg_pool2d(x, s).flatten(2) for s in sizes], dim=-1)


class _PyramidAttentionOutput(nn.Module):
    """What APNB and AFNB share after the attention: W (``proj``, 1x1 conv Cv -> C, weight and bias zero at
    init) and the ``fuse`` of Y = W(.) with the block's input X: 'add' X + Y, or 'concat' (``fusion``)
    conv1x1(cat[Y, X]) -> BN [-> ReLU: APNB only] -> Dropout2d."""

    def _init_output(self, channels: int, value_channels: int, fuse: str, drop_rate: float, relu: bool, dd) -> None:
        if fuse not in ('add', 'concat'):
            raise ValueError(f"fuse must be 'add' or 'concat', got {fuse!r}")
        self.fuse = fuse
        self.proj = nn.Conv2d(value_channels, channels, 1, **dd)  # W
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        if fuse == 'concat':
            self.fusion = nn.Sequential(
                *conv_bn(2 * channels, channels, bias=True, relu=relu, dd=dd), nn.Dropout2d(drop_rate))
        else:
            self.fusion = nn.Identity()

    def _fuse(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.fuse == 'add':
            return x + y
        return self.fusion(torch.cat([y, x], dim=1))


def _attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, sizes: List[int]) -> torch.Tensor:
    """softmax(Q P(K)^T / sqrt(Ck)) P(V) on the query's grid: (B, Cv, H, W)."""
    b, ck, h, w = query.shape
    q = query.flatten(2).transpose(1, 2)                          # (B, N, Ck)
    k = pyramid_pool(key, sizes)                                  # (B, Ck, S)
    v = pyramid_pool(value, sizes).transpose(1, 2)                # (B, S, Cv)
    attn = F.softmax(torch.bmm(q, k) * ck ** -0.5, dim=-1)        # (B, N, S)
    return torch.bmm(attn, v).transpose(1, 2).reshape(b, -1, h, w)


class PyramidNonLocal(_PyramidAttentionOutput):
    """APNB: self-attention of every position to 110 pyramid-pooled anchors.

    Args:
        channels: input channels C (= output channels).
        key_channels: Ck (official: C / 2 for C = 512).
        value_channels: Cv (official: C / 2).
        sizes: pyramid pooling sizes.
        fuse: 'add' (default here: residual, identity at init) or 'concat' (the official head).
        drop_rate: Dropout2d after the 'concat' fuse (default here 0, official 0.05).
        scale: attend on the input max-pooled by ``scale`` (kernel = stride = scale), upsample Y back (bilinear,
            align_corners=True): the official ``scale`` (default 1: no pooling, as the official networks).
    """

    def __init__(
            self,
            channels: int,
            key_channels: int = 0,
            value_channels: int = 0,
            sizes: Sequence[int] = (1, 3, 6, 8),
            fuse: str = 'add',
            drop_rate: float = 0.,
            scale: int = 1,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f'scale must be an integer >= 1 (the max-pooling kernel before attending), got {scale!r}')
        self.scale = scale
        key_channels = key_channels or max(1, channels // 2)
        value_channels = value_channels or max(1, channels // 2)
        self.sizes = [int(s) for s in sizes]
        self.key = conv_bn(channels, key_channels, bias=True, relu=True, dd=dd)  # f_key = f_query in the official code
        self.value = nn.Conv2d(channels, value_channels, 1, **dd)
        self._init_output(channels, value_channels, fuse, drop_rate, relu=True, dd=dd)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """Y of eq. 7 (B, C, H, W)."""
        h, w = x.shape[2], x.shape[3]
        if self.scale > 1:
            x = F.max_pool2d(x, self.scale)  # official nn.MaxPool2d(kernel_size=scale): stride = kernel, floor
        k = self.key(x)
        y = self.proj(_attend(k, k, self.value(x), self.sizes))
        if self.scale > 1:
            y = F.interpolate(y, size=(h, w), mode='bilinear', align_corners=True)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fuse(self.context(x), x)


class FusionNonLocal(_PyramidAttentionOutput):
    """AFNB: queries from the high-level map, pyramid-pooled keys / values from the low-level map.

    ``forward(low, high)``; the output has the high-level map's grid and ``channels`` channels.

    Args:
        channels: high-level (query) channels = output channels.
        low_channels: low-level (key / value) channels.
        key_channels, value_channels: Ck, Cv (official 256 / 256 for 1024 + 2048 inputs).
        sizes, fuse, drop_rate: as ``PyramidNonLocal`` (defaults here 'add' and 0, official 'concat' and 0.05;
            the official AFNB fuse has BN without ReLU). No ``scale``: the official AFNB does not pool.
    """

    def __init__(
            self,
            channels: int,
            low_channels: int,
            key_channels: int = 256,
            value_channels: int = 256,
            sizes: Sequence[int] = (1, 3, 6, 8),
            fuse: str = 'add',
            drop_rate: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.sizes = [int(s) for s in sizes]
        self.query = conv_bn(channels, key_channels, bias=True, relu=True, dd=dd)
        self.key = conv_bn(low_channels, key_channels, bias=True, relu=True, dd=dd)
        self.value = nn.Conv2d(low_channels, value_channels, 1, **dd)
        self._init_output(channels, value_channels, fuse, drop_rate, relu=False, dd=dd)

    def context(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return self.proj(_attend(self.query(high), self.key(low), self.value(low), self.sizes))

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return self._fuse(self.context(low, high), high)
