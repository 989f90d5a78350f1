"""A2 double attention block (gather by second-order attention pooling, then distribute).

Paper: "A^2-Nets: Double Attention Networks", Yunpeng Chen, Yannis Kalantidis, Jianshu Li, Shuicheng Yan,
Jiashi Feng, NeurIPS 2018, https://arxiv.org/abs/1810.11579 (no official PyTorch code was released).

For an input X (C x N positions, N = H W) the block computes three 1x1 projections
A = phi(X) (m x N), B = theta(X) (n x N), V = rho(X) (n x N) and

    gather (second-order attention pooling, eq. 3/4):  G = A softmax(B)^T                (m x n)
        softmax over the N positions of each of the n rows of B: each column g_j of G is
        a weighted average of the features a_i under the j-th attention map.
    distribute (eq. 5):                               z_i = G softmax(v_i)               (m per position)
        softmax over the n entries of v_i at each position i.

Z (m x N) is mapped back to C channels by a 1x1 conv and added to the input (the block is residual,
as in the paper's Fig. 2). Choices stated here: m = n = C / 4 by default (``reduction``); the output
projection is followed by a BatchNorm whose weight starts at zero, so a freshly inserted block is the
identity (the same initialisation as timm's ``NonLocalAttn``); the paper does not name its init.
Works for any H x W >= 1 x 1.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['DoubleAttention']


class DoubleAttention(nn.Module):
    """A2 block: ``x + BN(W( A softmax_N(B)^T softmax_n(V) ))``.

    Args:
        channels: input (= output) channels C.
        gather_channels: m, rows of the global descriptors G (default C // reduction).
        distribute_channels: n, number of global descriptors (default C // reduction).
        reduction: default ratio for m and n.
    """

    def __init__(
            self,
            channels: int,
            gather_channels: Optional[int] = None,
            distribute_channels: Optional[int] = None,
            reduction: int = 4,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        m = gather_channels or max(1, channels // reduction)
        n = distribute_channels or max(1, channels // reduction)
        self.features = nn.Conv2d(channels, m, 1, **dd)         # A = phi(X)
        self.attn_gather = nn.Conv2d(channels, n, 1, **dd)      # B = theta(X)
        self.attn_distribute = nn.Conv2d(channels, n, 1, **dd)  # V = rho(X)
        self.proj = nn.Conv2d(m, channels, 1, **dd)
        self.norm = nn.BatchNorm2d(channels, **dd)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for mod in (self.features, self.attn_gather, self.attn_distribute, self.proj):
            nn.init.kaiming_normal_(mod.weight, mode='fan_out', nonlinearity='relu')
            nn.init.zeros_(mod.bias)
        nn.init.zeros_(self.norm.weight)
        nn.init.zeros_(self.norm.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        a = self.features(x).flatten(2)                                # (B, m, N)
        attn_g = F.softmax(self.attn_gather(x).flatten(2), dim=-1)     # (B, n, N), softmax over positions
        attn_d = F.softmax(self.attn_distribute(x).flatten(2), dim=1)  # (B, n, N), softmax over the n descriptors
        g = torch.bmm(a, attn_g.transpose(1, 2))                       # (B, m, n) global descriptors
        z = torch.bmm(g, attn_d).reshape(b, -1, h, w)                  # (B, m, H, W)
        return x + self.norm(self.proj(z))
