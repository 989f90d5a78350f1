"""CCNet criss-cross attention with recurrence.

Paper: "CCNet: Criss-Cross Attention for Semantic Segmentation", Zilong Huang, Xinggang Wang, Lichao Huang,
Chang Huang, Yunchao Wei, Wenyu Liu, ICCV 2019, https://arxiv.org/abs/1811.11721
Official code: https://github.com/speedinghzl/CCNet (``cc_attention/functions.py``, ``networks/ccnet.py``).

For a position u = (h, w), its criss-cross set Omega_u is the column {(h', w)} and the row {(h, w')}:
    d_{i,u} = Q_u . K_{Omega_{i,u}}                    Q, K: 1x1 convs to C/8; V: 1x1 conv C -> C
    A_u     = softmax_i(d_{i,u})                       one softmax over the H + W - 1 positions of Omega_u
    H'_u    = gamma * sum_i A_{i,u} V_{Omega_{i,u}} + H_u      (eq. 1-2; gamma starts at 0)
The position u itself lies in both its row and its column; the official code masks it out of the
column (an -inf added on the diagonal of the vertical energies), so it is counted exactly once:
the softmax runs over H + W - 1 positions. Same here.

Recurrent criss-cross attention (RCCA): the SAME module (shared weights) is applied R times (R = 2 in
the paper), so every position gathers context from every other one. ``recurrence`` sets R.
Deviation from the CCNet segmentation head: its 3x3 conv reductions before / after the RCCA and the
concat bottleneck are left out, so the block can sit inside a backbone as the identity at init.
Works for every input size from 1 x 1.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['CrissCrossAttention']


def column_self_mask(height: int, device: torch.device) -> torch.Tensor:
    """(H, 1, H') bool, True where h' == h: u's own entry among its column's energies (B, H, W, H')."""
    return torch.eye(height, dtype=torch.bool, device=device).unsqueeze(1)


class CrissCrossAttention(nn.Module):
    """Criss-cross attention applied ``recurrence`` times with shared weights."""

    def __init__(self, channels: int, reduction: int = 8, recurrence: int = 2, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if recurrence < 1:
            raise ValueError(f'recurrence must be >= 1, got {recurrence}')
        qk = max(1, channels // reduction)
        self.recurrence = recurrence
        self.query = nn.Conv2d(channels, qk, 1, **dd)
        self.key = nn.Conv2d(channels, qk, 1, **dd)
        self.value = nn.Conv2d(channels, channels, 1, **dd)
        self.gamma = nn.Parameter(torch.zeros(1, **dd))

    def attention(self, x: torch.Tensor, self_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """sum_i A_{i,u} V_{Omega_{i,u}} for every u (B, C, H, W), one pass, no gamma / residual.

        ``self_mask``: the (H, 1, H') bool mask of u itself in its column (``column_self_mask``); built here when
        not given (``forward`` builds it once for all R passes)."""
        h = x.shape[2]
        if self_mask is None:
            self_mask = column_self_mask(h, x.device)
        q, k, v = self.query(x), self.key(x), self.value(x)
        energy_col = torch.einsum('bchw,bcgw->bhwg', q, k)       # (B, H, W, H'): u=(h, w) vs (h', w)
        energy_col = energy_col.masked_fill(self_mask, float('-inf'))
        energy_row = torch.einsum('bchw,bchv->bhwv', q, k)       # (B, H, W, W'): u=(h, w) vs (h, w')
        attn = F.softmax(torch.cat([energy_col, energy_row], dim=-1), dim=-1)
        attn_col, attn_row = attn[..., :h], attn[..., h:]
        out = torch.einsum('bhwg,bcgw->bchw', attn_col, v)
        return out + torch.einsum('bhwv,bchv->bchw', attn_row, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self_mask = column_self_mask(x.shape[2], x.device)  # the same for every pass: the map keeps its size
        for _ in range(self.recurrence):
            x = x + self.gamma * self.attention(x, self_mask)
        return x
