"""OCR: object-contextual representations.

Paper: "Object-Contextual Representations for Semantic Segmentation", Yuhui Yuan, Xilin Chen, Jingdong Wang,
ECCV 2020, https://arxiv.org/abs/1909.11065
Official code: https://github.com/HRNet/HRNet-Semantic-Segmentation (``lib/models/seg_hrnet_ocr.py``:
``SpatialGather_Module``, ``ObjectAttentionBlock2D``, ``SpatialOCR_Module``) and openseg.pytorch.

With pixel representations x_i (i over N positions) and K soft object regions M_k from an auxiliary
head (region logits, softmax over the positions of each region):
    object region representation (eq. 2):  f_k = sum_i softmax_i(M_k)_i x_i
    pixel-region relation (eq. 3):         w_ik = softmax_k( phi(x_i) . psi(f_k) / sqrt(Ck) )
    object contextual representation (4):  y_i = rho( sum_k w_ik delta(f_k) )
    augmented representation (eq. 5):      z_i = g([x_i ; y_i])
phi, psi: two 1x1 conv + BN + ReLU layers (to Ck); delta: 1x1 conv + BN + ReLU (to Ck); rho: 1x1 conv +
BN + ReLU (Ck -> mid); g: 1x1 conv + BN + ReLU (2 mid -> mid) + Dropout2d. The pixel representation x is the
official ``conv3x3_ocr`` (3x3 conv C -> mid + BN + ReLU) of the input.

Official options (defaults = the official networks'):
    ``gather_scale`` (``SpatialGather_Module(cls_num, scale)``): the region logits are multiplied by it
        before the softmax over positions, softmax_i(s M_k)_i in eq. 2 (a temperature 1 / s; official 1).
    ``scale`` (``ObjectAttentionBlock2D(in_channels, key_channels, scale)``): the pixel representation is
        max-pooled (``nn.MaxPool2d(kernel_size=scale)``: stride = kernel, floor, no padding, so the map must be
        at least scale x scale) before phi; the relation and rho run on the pooled grid and y is upsampled back,
        bilinear with align_corners=True (HRNet's ALIGN_CORNERS default, openseg's fixed value), before g. The
        object regions f_k are gathered from the full-size x. Official networks: 1.

Convolution biases (``conv_bias``; every conv here is followed by a BN, which absorbs a bias at inference
but not in the parameter count). The two official codes differ: HRNet-OCR (``seg_hrnet_ocr.py``) has no bias
in phi, psi, delta, rho and g and the default nn.Conv2d bias in ``conv3x3_ocr`` and the aux head's first
conv ('hrnet'); openseg.pytorch (``spatial_ocr_block.py``, ``ocrnet.py``) has the default bias in all of them
('openseg'). Default 'none': none of them has one (the count of the registered ``ocr_resnet50``); the aux
head's last conv (the region classifier) has a bias in every mode, as in both official codes.

Classifier adaptation (deviations): the auxiliary head is 1x1 conv C -> mid + BN + ReLU + 1x1 conv
mid -> K (official: C -> C -> K; mid keeps it small for C = 2048); the augmented representation is
projected back to C by a 1x1 conv + BN (weight starting at 0) and added to the input, so the block is a
residual block that is the identity at init; ``drop_rate`` defaults to 0 (official 0.05, the segmentation
head's; a classifier regularises with its own head's dropout). ``forward_with_regions`` also returns the region
logits (B, K, H, W) for an auxiliary loss (OCR: cross-entropy of the aux head, weight 0.4).
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .._ops import conv_bn

__all__ = ['ObjectContext']

# conv_bias -> which convs before a BN have a bias: (pixel and aux head's first conv, phi / psi / delta / rho / g)
_OCR_CONV_BIAS = {'none': (False, False), 'hrnet': (True, False), 'openseg': (True, True)}


class ObjectContext(nn.Module):
    """OCR block with its auxiliary soft-region head, as a residual block.

    Args:
        channels: input (= output) channels C.
        num_regions: K, number of soft object regions (classes of the auxiliary head).
        mid_channels: width of the pixel / region representations (official 512).
        key_channels: Ck of the pixel-region relation (official 256).
        pixel_kernel_size: kernel of the pixel representation conv (official 3).
        drop_rate: Dropout2d after g (default here 0, official 0.05).
        scale: max-pool the pixel representation by ``scale`` before the pixel-region relation and upsample the
            context back (bilinear, align_corners=True): the official ``ObjectAttentionBlock`` ``scale``; 1 = none.
        gather_scale: multiplies the region logits before the softmax over positions: the official
            ``SpatialGather_Module`` ``scale`` (default 1).
        conv_bias: biases of the convs followed by a BN: 'none' (default), 'hrnet' (HRNet-OCR's) or 'openseg'
            (openseg.pytorch's); see the module docstring.
    """

    def __init__(
            self,
            channels: int,
            num_regions: int,
            mid_channels: int = 512,
            key_channels: int = 256,
            pixel_kernel_size: int = 3,
            drop_rate: float = 0.,
            scale: int = 1,
            gather_scale: float = 1.,
            conv_bias: str = 'none',
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if num_regions < 1:
            raise ValueError(f'ObjectContext needs num_regions >= 1, got {num_regions}')
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f'scale must be an integer >= 1 (the max-pooling kernel before attending), got {scale!r}')
        if isinstance(gather_scale, bool) or not isinstance(gather_scale, (int, float)) \
                or not (math.isfinite(gather_scale) and gather_scale > 0):
            raise ValueError(f'gather_scale must be a finite number > 0 (it multiplies the region logits), '
                             f'got {gather_scale!r}')
        if not isinstance(conv_bias, str) or conv_bias not in _OCR_CONV_BIAS:
            raise ValueError(f"conv_bias must be 'none', 'hrnet' or 'openseg', got {conv_bias!r}")
        self.num_regions = num_regions
        self.key_channels = key_channels
        self.scale = scale
        self.gather_scale = float(gather_scale)
        self.conv_bias = conv_bias
        head_bias, block_bias = _OCR_CONV_BIAS[conv_bias]
        self.aux_head = nn.Sequential(
            conv_bn(channels, mid_channels, bias=head_bias, relu=True, dd=dd),
            nn.Conv2d(mid_channels, num_regions, 1, **dd))
        self.pixel = conv_bn(channels, mid_channels, pixel_kernel_size, bias=head_bias, relu=True, dd=dd)
        self.f_pixel = nn.Sequential(
            conv_bn(mid_channels, key_channels, bias=block_bias, relu=True, dd=dd),
            conv_bn(key_channels, key_channels, bias=block_bias, relu=True, dd=dd))
        self.f_object = nn.Sequential(
            conv_bn(mid_channels, key_channels, bias=block_bias, relu=True, dd=dd),
            conv_bn(key_channels, key_channels, bias=block_bias, relu=True, dd=dd))
        self.f_down = conv_bn(mid_channels, key_channels, bias=block_bias, relu=True, dd=dd)
        self.f_up = conv_bn(key_channels, mid_channels, bias=block_bias, relu=True, dd=dd)
        self.fuse = nn.Sequential(
            conv_bn(2 * mid_channels, mid_channels, bias=block_bias, relu=True, dd=dd), nn.Dropout2d(drop_rate))
        self.proj = nn.Conv2d(mid_channels, channels, 1, bias=False, **dd)
        self.norm = nn.BatchNorm2d(channels, **dd)
        nn.init.zeros_(self.norm.weight)

    def forward_with_regions(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Output (B, C, H, W) and the auxiliary region logits (B, K, H, W)."""
        b, _, h, w = x.shape
        regions = self.aux_head(x)                                          # (B, K, H, W)
        feats = self.pixel(x)                                               # (B, mid, H, W)
        logits = regions.flatten(2)
        if self.gather_scale != 1.:
            logits = logits * self.gather_scale                             # official SpatialGather scale
        probs = F.softmax(logits, dim=-1)                                   # (B, K, N), softmax over positions
        objects = torch.bmm(feats.flatten(2), probs.transpose(1, 2))        # (B, mid, K) = f_k
        objects = objects.unsqueeze(-1)                                     # (B, mid, K, 1)
        pixels = F.max_pool2d(feats, self.scale) if self.scale > 1 else feats  # (B, mid, h', w'): official pool
        ph, pw = pixels.shape[2], pixels.shape[3]
        query = self.f_pixel(pixels).flatten(2).transpose(1, 2)             # (B, N', Ck)
        key = self.f_object(objects).flatten(2)                             # (B, Ck, K)
        value = self.f_down(objects).flatten(2).transpose(1, 2)             # (B, K, Ck)
        sim = F.softmax(torch.bmm(query, key) * self.key_channels ** -0.5, dim=-1)  # (B, N', K)
        context = torch.bmm(sim, value).transpose(1, 2).reshape(b, -1, ph, pw)      # (B, Ck, h', w')
        context = self.f_up(context)                                        # (B, mid, h', w') = y
        if self.scale > 1:
            context = F.interpolate(context, size=(h, w), mode='bilinear', align_corners=True)
        z = self.fuse(torch.cat([context, feats], dim=1))                   # official order: [context, feats]
        return x + self.norm(self.proj(z)), regions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_regions(x)[0]
