"""Residual Attention Network's attention module: trunk branch and bottom-up top-down soft mask branch.

Paper: "Residual Attention Network for Image Classification", Fei Wang, Mengqing Jiang, Chen Qian, Shuo Yang,
Cheng Li, Honggang Zhang, Xiaogang Wang, Xiaoou Tang, CVPR 2017, https://arxiv.org/abs/1704.06904.
Official code (Caffe prototxts): https://github.com/fwang91/residual-attention-network; structure as in
the widely used PyTorch port (tengshaofeng/ResidualAttentionNetwork-pytorch, ``AttentionModule_stage1..3``).

    H(x) = (1 + M(x)) * T(x)        attention residual learning (eq. 3), M in [0, 1] from the mask branch

Hyper-parameters p = 1, t = 2, r = 1 (paper): one pre-activation bottleneck unit before the split and
after the merge, two in the trunk, one unit between adjacent poolings in the mask branch (two at the
lowest resolution). The soft mask branch of a module with ``depth`` D max-pools (3x3, stride 2) D times,
keeps a skip unit at every level but the lowest, and comes back up by bilinear interpolation; at each
level up, the upsampled map is summed with the level's down-path output and its skip output (the port's
addition), then one unit; at the top the upsampled map is summed with the trunk output, and two
BN-ReLU-1x1-conv layers and a sigmoid give M. Any input size: every upsampling interpolates to the size
of the map it is added to (not a fixed scale or a fixed size as in the port), so odd and 1x1 maps work.
"""
from typing import List

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from timm.layers import register_notrace_function

__all__ = ['PreActBottleneck', 'SoftMaskBranch', 'ResidualAttentionModule', 'upsample_to']


@register_notrace_function  # reads the target's size: a leaf for torch.fx
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
def upsample_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear (align_corners, as Caffe's Interp / nn.UpsamplingBilinear2d) resize of x to ref's size."""
    return F.interpolate(x, size=(ref.shape[-2], ref.shape[-1]), mode='bilinear', align_corners=True)


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck unit (the paper's residual unit, port's ``ResidualBlock``):
    BN-ReLU-1x1 (out/4), BN-ReLU-3x3 (stride), BN-ReLU-1x1 (out); projection shortcut (1x1, stride) on the
    pre-activated input when the shape changes, identity otherwise. No conv has a bias."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        mid = out_chs // 4
        self.norm1 = nn.BatchNorm2d(in_chs, **dd)
        self.act1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_chs, mid, 1, bias=False, **dd)
        self.norm2 = nn.BatchNorm2d(mid, **dd)
        self.act2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False, **dd)
        self.norm3 = nn.BatchNorm2d(mid, **dd)
        self.act3 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(mid, out_chs, 1, bias=False, **dd)
        self.downsample = nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False, **dd) \
            if in_chs != out_chs or stride != 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.norm1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.norm2(out)))
        out = self.conv3(self.act3(self.norm3(out)))
        return out + shortcut


class SoftMaskBranch(nn.Module):
    """Bottom-up top-down mask branch: ``depth`` max-pools down, bilinear upsampling back, sigmoid mask.

    ``forward(x, trunk)`` returns M(x) in [0, 1], the size of ``trunk``.
    """

    def __init__(self, channels: int, depth: int, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if depth < 1:
            raise ValueError(f'soft mask depth (number of down-samplings) must be >= 1, got {depth}')
        self.depth = depth
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        # down path: level i (1..depth) = pool, then r = 1 unit (2 at the lowest level)
        self.down = nn.ModuleList([
            nn.Sequential(*[PreActBottleneck(channels, channels, **dd) for _ in range(2 if i == depth - 1 else 1)])
            for i in range(depth)])
        self.skips = nn.ModuleList([PreActBottleneck(channels, channels, **dd) for _ in range(depth - 1)])
        self.up = nn.ModuleList([PreActBottleneck(channels, channels, **dd) for _ in range(depth - 1)])
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels, **dd), nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1, bias=False, **dd),
            nn.BatchNorm2d(channels, **dd), nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1, bias=False, **dd),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor, trunk: torch.Tensor) -> torch.Tensor:
        feats: List[torch.Tensor] = []
        skips: List[torch.Tensor] = []
        for down in self.down:
            x = down(self.pool(x))
            feats.append(x)
        for i, skip in enumerate(self.skips):
            skips.append(skip(feats[i]))
        # up: from the lowest level to level 1; self.up[j] works at level depth-2-j (0-based)
        for j, up in enumerate(self.up):
            level = self.depth - 2 - j
            x = up(upsample_to(x, feats[level]) + feats[level] + skips[level])
        return self.head(upsample_to(x, trunk) + trunk)


class ResidualAttentionModule(nn.Module):
    """Attention module (p = 1, t = 2, r = 1): unit -> {trunk: 2 units, mask: soft mask branch} ->
    (1 + M) * T -> unit."""

    def __init__(self, channels: int, depth: int, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.first = PreActBottleneck(channels, channels, **dd)
        self.trunk = nn.Sequential(PreActBottleneck(channels, channels, **dd),
                                   PreActBottleneck(channels, channels, **dd))
        self.mask = SoftMaskBranch(channels, depth, **dd)
        self.last = PreActBottleneck(channels, channels, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        trunk = self.trunk(x)
        return self.last((1. + self.mask(x, trunk)) * trunk)
