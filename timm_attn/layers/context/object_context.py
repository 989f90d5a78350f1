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
BN + ReLU (Ck -> mid); g: 1x1 conv + BN + ReLU (2 mid -> mid) + Dropout2d; these convs have no bias, as
in the official code. The pixel representation x is the official ``conv3x3_ocr`` (3x3 conv C -> mid + BN +
ReLU) of the input. Deviation: the official ``conv3x3_ocr`` conv and the aux head's first conv have biases
(nn.Conv2d's default); here they have none (each is followed by a BN, which absorbs a bias), and the aux
head's last conv has a bias, as the official one.

Classifier adaptation (deviations): the auxiliary head is 1x1 conv C -> mid + BN + ReLU + 1x1 conv
mid -> K (official: C -> C -> K; mid keeps it small for C = 2048); the augmented representation is
projected back to C by a 1x1 conv + BN (weight starting at 0) and added to the input, so the block is a
residual block that is the identity at init. ``forward_with_regions`` also returns the region logits
(B, K, H, W) for an auxiliary loss (OCR: cross-entropy of the aux head, weight 0.4).
"""
import torch
import torch.nn.functional as F
from torch import nn
from typing import Tuple

from .._ops import conv_bn

__all__ = ['ObjectContext']


class ObjectContext(nn.Module):
    """OCR block with its auxiliary soft-region head, as a residual block.

    Args:
        channels: input (= output) channels C.
        num_regions: K, number of soft object regions (classes of the auxiliary head).
        mid_channels: width of the pixel / region representations (official 512).
        key_channels: Ck of the pixel-region relation (official 256).
        pixel_kernel_size: kernel of the pixel representation conv (official 3).
        drop_rate: Dropout2d after g (official 0.05).
    """

    def __init__(
            self,
            channels: int,
            num_regions: int,
            mid_channels: int = 512,
            key_channels: int = 256,
            pixel_kernel_size: int = 3,
            drop_rate: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if num_regions < 1:
            raise ValueError(f'ObjectContext needs num_regions >= 1, got {num_regions}')
        self.num_regions = num_regions
        self.key_channels = key_channels
        self.aux_head = nn.Sequential(
            conv_bn(channels, mid_channels, relu=True, dd=dd), nn.Conv2d(mid_channels, num_regions, 1, **dd))
        self.pixel = conv_bn(channels, mid_channels, pixel_kernel_size, relu=True, dd=dd)
        self.f_pixel = nn.Sequential(
            conv_bn(mid_channels, key_channels, relu=True, dd=dd),
            conv_bn(key_channels, key_channels, relu=True, dd=dd))
        self.f_object = nn.Sequential(
            conv_bn(mid_channels, key_channels, relu=True, dd=dd),
            conv_bn(key_channels, key_channels, relu=True, dd=dd))
        self.f_down = conv_bn(mid_channels, key_channels, relu=True, dd=dd)
        self.f_up = conv_bn(key_channels, mid_channels, relu=True, dd=dd)
        self.fuse = nn.Sequential(conv_bn(2 * mid_channels, mid_channels, relu=True, dd=dd), nn.Dropout2d(drop_rate))
        self.proj = nn.Conv2d(mid_channels, channels, 1, bias=False, **dd)
        self.norm = nn.BatchNorm2d(channels, **dd)
        nn.init.zeros_(self.norm.weight)

    def forward_with_regions(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Output (B, C, H, W) and the auxiliary region logits (B, K, H, W)."""
        b, _, h, w = x.shape
        regions = self.aux_head(x)                                          # (B, K, H, W)
        feats = self.pixel(x)                                               # (B, mid, H, W)
        probs = F.softmax(regions.flatten(2), dim=-1)                       # (B, K, N), softmax over positions
        objects = torch.bmm(feats.flatten(2), probs.transpose(1, 2))        # (B, mid, K) = f_k
        objects = objects.unsqueeze(-1)                                     # (B, mid, K, 1)
        query = self.f_pixel(feats).flatten(2).transpose(1, 2)              # (B, N, Ck)
        key = self.f_object(objects).flatten(2)                             # (B, Ck, K)
        value = self.f_down(objects).flatten(2).transpose(1, 2)             # (B, K, Ck)
        sim = F.softmax(torch.bmm(query, key) * self.key_channels ** -0.5, dim=-1)  # (B, N, K)
        context = torch.bmm(sim, value).transpose(1, 2).reshape(b, -1, h, w)        # (B, Ck, H, W)
        context = self.f_up(context)                                        # (B, mid, H, W) = y
        z = self.fuse(torch.cat([context, feats], dim=1))                   # official order: [context, feats]
        return x + self.norm(self.proj(z)), regions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_regions(x)[0]
