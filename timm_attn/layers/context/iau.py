"""IAU: interaction-aggregation-update block of IAUnet (image version: channel IAU then spatial IAU).

Paper: "IAUnet: Global Context-Aware Feature Learning for Person Re-Identification", Ruibing Hou, Bingpeng Ma,
Hong Chang, Xinqian Gu, Shiguang Shan, Xilin Chen, IEEE TNNLS 2021, https://arxiv.org/abs/2009.01035
Official code (image ReID): https://github.com/blue-blue272/ImgReID-IAnet (``models/IAU.py``, ``models/SIAU.py``).

Facts from the official image code (followed here):
Channel IAU (CIAU), on X (C x N):
    Y = softmax_j(X X^T) X                 (C x C channel affinities, softmax over j, no scaling)
    Z = X + BN(W1 Y)                       W1: 1x1 conv with bias; BN weight and bias start at 0
Spatial IAU (SIAU), on Z (the image version's "spatial" interaction runs between P = 4 body parts):
    a = sigmoid(BN(conv1x1(Z)))            P part maps (B, P, H, W); official: supervised by part masks
    p_k = sum_i a_k,i z_i                  part features (sum over positions, not normalised)
    u = mean_i z_i                         global node
    [p'; u'] = g([p; u])                   g: 1x1 conv C -> C/2 with bias, shared by parts and node
    interaction:  e_kl = BN(conv1x1([|p'_k - p'_l| ; u'])) (a scalar), minus inf on k = l,
                  A = softmax_l(e)         each part attends to the OTHER parts only
    aggregation:  q_k = ReLU(BN(conv1x1([p'_k ; sum_l A_kl p'_l])))   (C -> C/2, with bias)
    update:       v = [mean_k q_k ; u']    (C channels),  out = Z + BN(W2 v)  broadcast over positions
                  W2: 1x1 conv with bias; BN weight and bias start at 0
Deviations: the official subtracts 1e8 on the diagonal before the softmax; here it is -inf (same
result for P >= 2, no overflow in fp16); ``num_parts`` must be >= 2. The part maps get no mask
supervision in a classifier (``forward_with_parts`` returns them for anyone who has masks).
BatchNorm over the (B, C, 1, 1) update needs a batch > 1 in training, like the official code.
Works for every input size from 1 x 1.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .._ops import conv_bn

__all__ = ['ChannelIAU', 'SpatialIAU', 'IAU']


class ChannelIAU(nn.Module):
    """CIAU: ``x + BN(W1 softmax(X X^T) X)``."""

    def __init__(self, channels: int, device=None, dtype=None):
        super().__init__()
        self.update = conv_bn(channels, channels, bias=True, zero_init=True, dd={'device': device, 'dtype': dtype})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x.flatten(2)                                                    # (B, C, N)
        attn = F.softmax(torch.bmm(a, a.transpose(1, 2)), dim=-1)           # (B, C, C)
        return x + self.update(torch.bmm(attn, a).view_as(x))


class SpatialIAU(nn.Module):
    """SIAU (image version): interaction between P soft part features and the global node."""

    def __init__(self, channels: int, num_parts: int = 4, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if num_parts < 2:
            raise ValueError(f'SpatialIAU needs num_parts >= 2 (each part attends to the others), got {num_parts}')
        inter = channels // 2
        self.parts = conv_bn(channels, num_parts, bias=True, dd=dd)
        self.reduce = nn.Conv2d(channels, inter, 1, **dd)
        self.relation = conv_bn(2 * inter, 1, bias=True, dd=dd)
        self.aggregate = conv_bn(2 * inter, inter, bias=True, relu=True, dd=dd)
        self.update = conv_bn(2 * inter, channels, bias=True, zero_init=True, dd=dd)

    def forward_with_parts(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        _b, _c, _h, _w = x.shape
        parts = torch.sigmoid(self.parts(x))                                # (B, P, H, W)
        p = torch.bmm(parts.flatten(2), x.flatten(2).transpose(1, 2))       # (B, P, C) part features
        u = x.mean(dim=(2, 3))                                              # (B, C) global node
        nodes = torch.cat([p, u.unsqueeze(1)], dim=1)                       # (B, P + 1, C)
        nodes = self.reduce(nodes.transpose(1, 2).unsqueeze(-1)).squeeze(-1)  # (B, C', P + 1)
        u = nodes[:, :, -1]                                                 # (B, C')
        p = nodes[:, :, :-1]                                                # (B, C', P)
        num_parts = p.shape[2]
        diff = (p.unsqueeze(3) - p.unsqueeze(2)).abs()                      # (B, C', P, P): |p_k - p_l|
        glob = u[:, :, None, None].expand_as(diff)
        energy = self.relation(torch.cat([diff, glob], dim=1)).squeeze(1)   # (B, P, P)
        eye = torch.eye(num_parts, dtype=torch.bool, device=x.device)
        attn = F.softmax(energy.masked_fill(eye, float('-inf')), dim=-1)    # (B, P, P), softmax over l != k
        neighbours = torch.bmm(p, attn.transpose(1, 2))                     # (B, C', P): sum_l A_kl p_l
        q = self.aggregate(torch.cat([p, neighbours], dim=1).unsqueeze(-1)).squeeze(-1)  # (B, C', P)
        v = torch.cat([q.mean(dim=2), u], dim=1)                            # (B, 2 C')
        return x + self.update(v[:, :, None, None]), parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_parts(x)[0]


class IAU(nn.Module):
    """The official image IAU block: CIAU, then SIAU."""

    def __init__(self, channels: int, num_parts: int = 4, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.channel = ChannelIAU(channels, **dd)
        self.spatial = SpatialIAU(channels, num_parts, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
