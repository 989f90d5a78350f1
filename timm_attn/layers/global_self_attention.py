"""Global self-attention (GSA) module: content attention plus axial positional attention, summed.

Paper: "Global Self-Attention Networks for Image Recognition", Zhuoran Shen, Irwan Bello, Raviteja
Vemulapalli, Xuhui Jia, Ching-Hui Chen, 2020, https://arxiv.org/abs/2010.03019 (no official code).

For an input F with N = H * W pixels, 1x1 convolutions give queries Q, keys K (N x d_k) and values
V (N x d_out), split into heads. Per head:

    content:     F_c = Q (softmax_N(K)^T V)
                 every key channel is softmax-normalised over the N positions, V is pooled into d_k
                 global context vectors (a d_k x d_v matrix), each pixel's query mixes them:
                 O(N d_k d_v), linear in N. No 1/sqrt(d) scale; Q not normalised (``norm_queries``).
    positional:  column-only attention, BatchNorm, row-only attention (paper Figure 1):
                 Y[a, b]   = sum_{a' : |a' - a| <= r} (q[a, b] . R^c[a' - a]) v[a', b]
                 Z[a, b]   = sum_{b' : |b' - b| <= r} (q[a, b] . R^r[b' - b]) BN(Y)[a, b']
                 learned relative embeddings R (one per offset, d_k wide) are the keys; L = 2r + 1
                 neighbours, or the whole axis. Offsets that leave the map contribute nothing
                 (no wrap-around). O(N L d).
    output:      F_c + Z  (optionally followed by a 1x1 projection, ``out_proj``).

The positional logits are computed from the embedding table directly: for a window smaller than the
axis as one matmul q . R^T over the L offsets (B, heads, H, W, L), applied to L shifted slices of the
zero-padded values; for a window covering the axis, the table is gathered by offset into an
(H, H, d_k) key tensor per axis (independent of the batch, its size is that of one image's logits per
channel-group), and logits and aggregation are two batched matmuls. No one-hot re-indexing tensor is
built, and nothing is rebuilt beyond that small gather.

Choices (the paper's tables were not available; see ``GlobalSelfAttention``'s docstring).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from timm.layers import register_notrace_function, trunc_normal_

from .pointwise import PointwiseConv2d

__all__ = ['GlobalSelfAttention', 'content_attention', 'axial_positional_attention', 'relative_index']


def content_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, norm_queries: bool = False) -> torch.Tensor:
    """q, k (B, heads, d_k, N), v (B, heads, d_v, N) -> (B, heads, d_v, N): Q (softmax_N(K)^T V)."""
    k = k.softmax(dim=-1)
    if norm_queries:
        q = q.softmax(dim=-2)
    context = k @ v.transpose(-1, -2)  # (B, heads, d_k, d_v): one global context vector per key channel
    return context.transpose(-1, -2) @ q


@register_notrace_function  # builds index tensors from the input's size: a leaf for torch.fx
def relative_index(size: int, radius: int, table_center: int, table_len: int, device: torch.device):
    """(size, size) index into the embedding table of the offset a' - a for query a and key a', clamped
    to the table (offsets beyond the table reuse its outermost embedding), and a (size, size) bool mask
    of the pairs inside the window |a' - a| <= radius."""
    pos = torch.arange(size, device=device)
    offset = pos.view(1, -1) - pos.view(-1, 1)  # [a, a'] = a' - a
    index = (offset + table_center).clamp(0, table_len - 1)
    return index, offset.abs() <= radius


def _axis_dense(q: torch.Tensor, v: torch.Tensor, table: torch.Tensor, radius: int, softmax: bool) -> torch.Tensor:
    """Attention along dim 3 of q (B, heads, d_k, X, Y) / v (B, heads, d_v, X, Y), every pair of the axis
    at once. table: (T, d_k) shared or (heads, T, d_k) per head, centre at T // 2."""
    size = q.shape[3]
    table_len = table.shape[-2]
    index, inside = relative_index(size, radius, table_len // 2, table_len, q.device)
    keys = table[..., index, :]  # (X, X', d_k) or (heads, X, X', d_k): R[a' - a] for every pair
    if table.dim() == 2:
        logits = torch.einsum('bndxy,xzd->bnxyz', q, keys)  # (B, heads, X, Y, X')
    else:
        logits = torch.einsum('bndxy,nxzd->bnxyz', q, keys)
    mask = inside.view(size, 1, size)
    if softmax:
        logits = logits.masked_fill(~mask, float('-inf')).softmax(dim=-1)
    elif radius < size - 1:
        logits = logits.masked_fill(~mask, 0.)
    return torch.einsum('bnxyz,bnezy->bnexy', logits, v)


def _axis_window(q: torch.Tensor, v: torch.Tensor, table: torch.Tensor, radius: int, softmax: bool) -> torch.Tensor:
    """Attention along dim 3 over a window of L = 2 * radius + 1 < X pixels: logits q . R^T for the L
    offsets (one matmul), then the sum over L shifted slices of the zero-padded values."""
    b, n, dv, size, other = v.shape
    length = 2 * radius + 1
    if table.dim() == 2:
        logits = torch.einsum('bndxy,ld->bnlxy', q, table)  # (B, heads, L, X, Y): offset l - radius
    else:
        logits = torch.einsum('bndxy,nld->bnlxy', q, table)
    if softmax:
        pos = torch.arange(size, device=q.device)
        key_pos = pos.view(1, -1) + torch.arange(length, device=q.device).view(-1, 1) - radius  # (L, X)
        outside = (key_pos < 0) | (key_pos >= size)
        logits = logits.masked_fill(outside.view(length, size, 1), float('-inf')).softmax(dim=2)
    v = F.pad(v, (0, 0, radius, radius))  # (B, heads, d_v, X + 2r, Y): zeros beyond the map
    out = logits[:, :, 0:1] * v[:, :, :, 0:size]
    for i in range(1, length):
        out = out + logits[:, :, i:i + 1] * v[:, :, :, i:i + size]
    return out


@register_notrace_function  # branches on the map size: a leaf for torch.fx
def axial_positional_attention(
        q: torch.Tensor, v: torch.Tensor, table: torch.Tensor, radius: int, softmax: bool = False) -> torch.Tensor:
    """Positional attention along dim 3 (the first spatial dim) of q (B, heads, d_k, X, Y) and
    v (B, heads, d_v, X, Y): out[a] = sum_{|a' - a| <= radius} w(q[a] . R[a' - a]) v[a'], with w the
    identity or a softmax over the window's pixels inside the map. ``table``: (T, d_k) or (heads, T, d_k)
    relative embeddings, offset 0 at T // 2 (offsets beyond the table use its outermost rows).
    For the other axis pass ``q.transpose(3, 4)`` / ``v.transpose(3, 4)`` and transpose the result back."""
    size = q.shape[3]
    if 2 * radius + 1 < size:
        return _axis_window(q, v, table, radius, softmax)
    return _axis_dense(q, v, table, radius, softmax)


class GlobalSelfAttention(nn.Module):
    """GSA module: content attention + column / BatchNorm / row positional attention, outputs summed.

    Args:
        dim: input channels.
        dim_out: output (value) channels, default ``dim``.
        num_heads: heads; ``dim_key`` and ``dim_out`` must be divisible by it. Default 8 (chosen:
            the paper's number is not in the available text; lucidrains and stand-alone attention use 8).
        dim_key: total query / key channels d_k, default ``dim_out`` (chosen: d_k = d_v, so q, k, v cost
            3 d^2 weights against the 9 d^2 of the 3x3 conv they replace).
        rel_pos_length: L, the neighbourhood of the positional attention (odd), or None for the whole
            axis (default; the paper uses the whole axis, per lucidrains' reading). Table: L embeddings.
        max_size: with ``rel_pos_length=None``, the largest axis the table covers exactly: 2 * max_size - 1
            embeddings (offsets -(max_size - 1)..max_size - 1). On a larger map, offsets beyond the table
            reuse its outermost embedding (stated rule, no error), so any input size works.
        pos_softmax: softmax over the window's logits (default False, as lucidrains: the paper's
            positional attention is a plain q . r weighting, with the BatchNorm between the two axes
            keeping the scale in check).
        shared_pos_embed: one embedding table per axis shared by all heads (default True, lucidrains);
            False gives each head its own.
        out_proj: 1x1 conv (with bias) after the sum (default False: Figure 1 has none; lucidrains adds one).
        norm_queries: softmax of each query over its channels in the content branch (default False, the paper).
        qkv_bias: bias in the q / k / v projection (default False).
    """

    def __init__(
            self,
            dim: int,
            dim_out: Optional[int] = None,
            num_heads: int = 8,
            dim_key: Optional[int] = None,
            rel_pos_length: Optional[int] = None,
            max_size: int = 56,
            pos_softmax: bool = False,
            shared_pos_embed: bool = True,
            out_proj: bool = False,
            norm_queries: bool = False,
            qkv_bias: bool = False,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        dim_out = dim_out or dim
        dim_key = dim_key or dim_out
        if dim_key % num_heads or dim_out % num_heads:
            raise ValueError(f'dim_key ({dim_key}) and dim_out ({dim_out}) must be divisible by num_heads ({num_heads})')
        if rel_pos_length is not None and (rel_pos_length < 1 or rel_pos_length % 2 == 0):
            raise ValueError(f'rel_pos_length must be odd and positive (a centred window) or None, got {rel_pos_length}')
        if rel_pos_length is None and max_size < 1:
            raise ValueError(f'max_size must be positive, got {max_size}')
        self.dim_out = dim_out
        self.dim_key = dim_key
        self.num_heads = num_heads
        self.rel_pos_length = rel_pos_length
        self.max_size = max_size
        self.pos_softmax = pos_softmax
        self.norm_queries = norm_queries
        # window radius; whole axis: no limit (the dense path covers every pair of the map)
        self.radius = (rel_pos_length - 1) // 2 if rel_pos_length is not None else 2 ** 30
        table_len = rel_pos_length if rel_pos_length is not None else 2 * max_size - 1
        self.qkv = PointwiseConv2d(dim, 2 * dim_key + dim_out, bias=qkv_bias, **dd)
        head_key = dim_key // num_heads
        shape = (table_len, head_key) if shared_pos_embed else (num_heads, table_len, head_key)
        self.rel_pos_col = nn.Parameter(torch.empty(shape, **dd))  # keys of the column-only attention
        self.rel_pos_row = nn.Parameter(torch.empty(shape, **dd))  # keys of the row-only attention
        self.pos_norm = nn.BatchNorm2d(dim_out, **dd)  # between the column and the row attention
        self.proj = PointwiseConv2d(dim_out, dim_out, **dd) if out_proj else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings: truncated normal with std d_k_head^-0.5, so that q . r starts with the scale of q."""
        if not self.rel_pos_col.is_meta:
            std = (self.dim_key // self.num_heads) ** -0.5
            trunc_normal_(self.rel_pos_col, std=std)
            trunc_normal_(self.rel_pos_row, std=std)

    def project(self, x: torch.Tensor):
        """x (B, C, H, W) -> q (B, heads, d_k, H, W), k (B, heads, d_k, H, W), v (B, heads, d_v, H, W)."""
        b, _, h, w = x.shape
        n = self.num_heads
        q, k, v = self.qkv(x).split([self.dim_key, self.dim_key, self.dim_out], dim=1)
        return (q.reshape(b, n, self.dim_key // n, h, w), k.reshape(b, n, self.dim_key // n, h, w),
                v.reshape(b, n, self.dim_out // n, h, w))

    def content_branch(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """F_c, (B, heads, d_v, H, W)."""
        return content_attention(q.flatten(3), k.flatten(3), v.flatten(3), self.norm_queries).view(v.shape)

    def positional_branch(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Column-only attention -> BatchNorm -> row-only attention, (B, heads, d_v, H, W)."""
        b, n, dv, h, w = v.shape
        col = axial_positional_attention(q, v, self.rel_pos_col, self.radius, self.pos_softmax)
        col = self.pos_norm(col.reshape(b, n * dv, h, w)).view(b, n, dv, h, w)
        row = axial_positional_attention(
            q.transpose(3, 4), col.transpose(3, 4), self.rel_pos_row, self.radius, self.pos_softmax)
        return row.transpose(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = self.project(x)
        out = self.content_branch(q, k, v) + self.positional_branch(q, v)
        out = out.reshape(b, self.dim_out, h, w)
        if self.proj is not None:
            out = self.proj(out)
        return out
