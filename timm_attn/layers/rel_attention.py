"""Multi-head self-attention with a trainable relative-position bias per head (CoAtNet's relative attention).

For a token grid of H x W positions, head h, query i at (y_i, x_i) and key j at (y_j, x_j):

    attn[h, i, j] = softmax_j( q_h[i] . k_h[j] / sqrt(d) + P_h[y_i - y_j + H - 1, x_i - x_j + W - 1] )
    out[i] = proj( concat_h  sum_j attn[h, i, j] v_h[j] )

P_h is a (2H-1) x (2W-1) table, one per head, stored as ``relative_position_bias_table`` of shape
(heads, 2H-1, 2W-1). The (L, L) gather index into the flattened table is a buffer built once for the
grid (not saved in the state_dict); the gathered (heads, L, L) bias goes to
``F.scaled_dot_product_attention`` as its additive ``attn_mask`` (``fused_attn``) or into the explicit
softmax of the fallback, which computes the same thing.

The tables depend on the grid: a model for another input size needs tables of another size, and
``resize_relative_position_bias_table`` interpolates them bilinearly (the paper's fine-tuning recipe).
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from timm.layers import trunc_normal_, use_fused_attn

__all__ = ['RelativeSelfAttention', 'relative_position_index', 'resize_relative_position_bias_table']


def relative_position_index(grid_size: Tuple[int, int], device=None) -> torch.Tensor:
    """(L, L) long tensor, L = H * W: index of P[y_i - y_j + H - 1, x_i - x_j + W - 1] in the flat table."""
    h, w = grid_size
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing='ij')
    ys, xs = ys.flatten(), xs.flatten()  # (L,) row-major positions, as the tokens are ordered
    dy = ys[:, None] - ys[None, :] + h - 1  # (L, L) in [0, 2H-2]
    dx = xs[:, None] - xs[None, :] + w - 1  # (L, L) in [0, 2W-2]
    return dy * (2 * w - 1) + dx


def resize_relative_position_bias_table(table: torch.Tensor, grid_size: Tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (heads, 2H-1, 2W-1) tables to the ones of an (H', W') grid.

    ``align_corners=True`` maps the offsets +-(H-1) onto +-(H'-1) and 0 onto 0: the relative offsets of
    the new grid are the old ones stretched, as the paper's interpolation for fine-tuning at a larger size.
    """
    new = (2 * grid_size[0] - 1, 2 * grid_size[1] - 1)
    if tuple(table.shape[-2:]) == new:
        return table
    dtype = table.dtype
    out = F.interpolate(table.float().unsqueeze(0), size=new, mode='bilinear', align_corners=True)
    return out.squeeze(0).to(dtype)


class RelativeSelfAttention(nn.Module):
    """Multi-head self-attention over (N, L, dim) tokens of an H x W grid with a relative bias table per head.

    Args:
        dim: input channels.
        dim_out: output channels (the attention width; heads = dim_out // head_dim).
        grid_size: (H, W) of the token grid the tables are built for.
        head_dim: channels per head (CoAtNet: 32).
        qkv_bias, proj_bias: biases of the q/k/v and output projections.
        attn_drop: dropout on the attention weights (non-fused path when > 0 in training).
    """

    def __init__(
            self,
            dim: int,
            dim_out: int,
            grid_size: Tuple[int, int],
            head_dim: int = 32,
            qkv_bias: bool = True,
            proj_bias: bool = True,
            attn_drop: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if dim_out % head_dim:
            raise ValueError(f'attention width {dim_out} is not a multiple of head_dim {head_dim}')
        self.num_heads = dim_out // head_dim
        self.head_dim = head_dim
        self.dim_out = dim_out
        self.scale = head_dim ** -0.5
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.num_positions = self.grid_size[0] * self.grid_size[1]
        self.fused_attn = use_fused_attn()
        self.attn_drop = attn_drop

        self.qkv = nn.Linear(dim, 3 * dim_out, bias=qkv_bias, **dd)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(self.num_heads, 2 * self.grid_size[0] - 1, 2 * self.grid_size[1] - 1, **dd))
        # (L * L,) computed from grid_size, not saved: filled by _init_buffers()
        self.register_buffer(
            'relative_position_index', torch.empty(self.num_positions ** 2, device=device, dtype=torch.long),
            persistent=False)
        self.proj = nn.Linear(dim_out, dim_out, bias=proj_bias, **dd)
        self.init_weights()

    def init_weights(self) -> None:
        trunc_normal_(self.relative_position_bias_table, std=.02)
        self._init_buffers()

    def _init_buffers(self) -> None:
        index = self.relative_position_index
        index.copy_(relative_position_index(self.grid_size, device=index.device).view(-1))

    def init_non_persistent_buffers(self) -> None:
        """Recompute ``relative_position_index`` (after ``to_empty()``; timm's
        ``reinit_non_persistent_buffers`` calls this)."""
        self._init_buffers()

    def relative_position_bias(self) -> torch.Tensor:
        """(heads, L, L) bias gathered from the tables."""
        table = self.relative_position_bias_table.flatten(1)  # (heads, (2H-1)(2W-1))
        bias = table.index_select(1, self.relative_position_index)
        return bias.view(self.num_heads, self.num_positions, self.num_positions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape  # (N, L, dim), L = H * W row-major
        qkv = self.qkv(x).view(n, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (N, heads, L, head_dim) each
        bias = self.relative_position_bias().to(q.dtype)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(
                q, k, v, attn_mask=bias.unsqueeze(0), dropout_p=self.attn_drop if self.training else 0.)
        else:
            attn = torch.baddbmm(
                bias.unsqueeze(0).expand(n, -1, -1, -1).reshape(n * self.num_heads, length, length),
                q.reshape(n * self.num_heads, length, self.head_dim),
                k.reshape(n * self.num_heads, length, self.head_dim).transpose(1, 2),
                alpha=self.scale,
            ).softmax(-1)  # (N * heads, L, L)
            if self.training and self.attn_drop > 0.:
                attn = F.dropout(attn, self.attn_drop)
            x = torch.bmm(attn, v.reshape(n * self.num_heads, length, self.head_dim))
        x = x.view(n, self.num_heads, length, self.head_dim).transpose(1, 2).reshape(n, length, self.dim_out)
        return self.proj(x)
