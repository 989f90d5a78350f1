"""DANet position and channel attention modules.

Paper: "Dual Attention Network for Scene Segmentation", Jun Fu, Jing Liu, Haijie Tian, Yong Li, Yongjun Bao,
Zhiwei Fang, Hanqing Lu, CVPR 2019, https://arxiv.org/abs/1809.02983
Official code: https://github.com/junfu1115/DANet (``encoding/nn/da_att.py``: ``PAM_Module``, ``CAM_Module``).

Position attention (PAM, eq. 1-2), for positions i, j of N = H W:
    s_ji = exp(B_i . C_j) / sum_i exp(B_i . C_j)         B = query(A), C = key(A): 1x1 convs to C/8
    E_j  = gamma * sum_i s_ji D_i + A_j                   D = value(A): 1x1 conv C -> C, gamma starts at 0

Channel attention (CAM, eq. 3-4), for channels i, j (no projections):
    paper:    x_ji = exp(A_i . A_j) / sum_i exp(A_i . A_j)
    official: energy = A A^T; attention = softmax(rowmax(energy) - energy)
              = softmax(-energy) (a row-constant shift does not change a softmax), i.e. the official
              code weights the LEAST similar channels most, the opposite sign of the paper's equation.
    E_j  = beta * sum_i x_ji A_i + A_j                    beta starts at 0
``ChannelAttention(official=True)`` (default) follows the official code (its released models were
trained with it); ``official=False`` gives the paper's softmax(energy).

``DualAttention`` sums the two modules' attention outputs on one input, as the DANet head sums its
two branches: ``x + gamma * PAM_out + beta * CAM_out`` (= PAM(x) + CAM(x) - x). Deviation from the
DANet segmentation head: its 3x3 conv reductions to C/4 before and 3x3 convs after each module are left
out, so the block is the identity at initialisation (gamma = beta = 0) and can sit inside a backbone.
Every input size from 1 x 1 works.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['PositionAttention', 'ChannelAttention', 'DualAttention']


class PositionAttention(nn.Module):
    """DANet PAM: ``x + gamma * V softmax_i(Q_i . K_j)``, query / key of C // reduction channels."""

    def __init__(self, channels: int, reduction: int = 8, qk_channels: Optional[int] = None, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        qk = qk_channels or max(1, channels // reduction)
        self.query = nn.Conv2d(channels, qk, 1, **dd)
        self.key = nn.Conv2d(channels, qk, 1, **dd)
        self.value = nn.Conv2d(channels, channels, 1, **dd)
        self.gamma = nn.Parameter(torch.zeros(1, **dd))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """sum_i s_ji D_i, without gamma and the residual (B, C, H, W)."""
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)                              # (B, C', N)
        k = self.key(x).flatten(2)                                # (B, C', N)
        v = self.value(x).flatten(2)                              # (B, C, N)
        attn = F.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # (B, N, N): [j, i], softmax over i
        return torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * self.attention(x)


class ChannelAttention(nn.Module):
    """DANet CAM: ``x + beta * softmax(-/+ A A^T) A`` (no parameters but beta)."""

    def __init__(self, channels: int, official: bool = True, device=None, dtype=None):
        super().__init__()
        self.official = official
        self.gamma = nn.Parameter(torch.zeros(1, device=device, dtype=dtype))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        a = x.flatten(2)                                          # (B, C, N)
        energy = torch.bmm(a, a.transpose(1, 2))                  # (B, C, C)
        if self.official:
            energy = -energy  # softmax(rowmax - energy) of the official code
        attn = F.softmax(energy, dim=-1)
        return torch.bmm(attn, a).reshape(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * self.attention(x)


class DualAttention(nn.Module):
    """PAM and CAM on the same input, summed: ``x + gamma * PAM_out + beta * CAM_out``."""

    def __init__(self, channels: int, reduction: int = 8, official: bool = True, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.pam = PositionAttention(channels, reduction, **dd)
        self.cam = ChannelAttention(channels, official, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pam.gamma * self.pam.attention(x) + self.cam.gamma * self.cam.attention(x)
