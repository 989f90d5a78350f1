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

The positional logits come from the embedding table directly. For a window smaller than the axis:
one matmul q . R^T over the L offsets (B, heads, lines, X, L), applied to L shifted slices of the
zero-padded values. For a window covering the axis (the default, whole axis): the table is gathered
by offset into (X, X, d_k) keys R[a' - a] (independent of the batch: X^2 d_k numbers, e.g. 25k for a
56-pixel axis), then logits and aggregation are two batched matmuls, O(N X d). No one-hot
re-indexing tensor is built, and nothing but that small gather is rebuilt per call.

Choices (the paper's tables were not available; see ``GlobalSelfAttention``'s docstring).
"""
from typing import Optional, Tuple

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from timm.layers import register_notrace_function, register_notrace_module, trunc_normal_

from ._ops import PointwiseConv2d, batch_norm_train, batchnorm_affine, chunk_size, is_plain_batchnorm, \
    pointwise_conv, recompute_in_backward
from ._ops.caching import is_capturing

__all__ = ['GlobalSelfAttention', 'content_attention', 'axial_positional_attention', 'relative_keys']

# the radius of a positional attention over the whole axis: larger than any map side
WHOLE_AXIS_RADIUS = 2 ** 30


def content_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, norm_queries: bool = False) -> torch.Tensor:
    """q, k (..., d_k, N), v (..., d_v, N) -> (..., d_v, N): Q (softmax_N(K)^T V)."""
    k = k.softmax(dim=-1)
    if norm_queries:
        q = q.softmax(dim=-2)
    context = v @ k.transpose(-1, -2)  # (..., d_v, d_k): one global context vector per key channel
    return context @ q


def relative_keys(table: torch.Tensor, size: int, radius: int) -> torch.Tensor:
    """The keys of every (query a, key a') pair of an axis of ``size`` pixels, R[a' - a], laid out for a
    matmul: (size, d, size) [a, :, a'] from a (T, d) table with offset 0 at T // 2, or
    (heads, size, d, size) from (heads, T, d). Offsets beyond the table reuse its outermost row; pairs
    outside the window |a' - a| <= radius get zero keys (zero logits). No index tensor: the table, padded
    to the offsets -(size - 1)..size - 1, is read through sliding windows (``unfold``) and flipped."""
    table_len = table.shape[-2]
    centre = table_len // 2
    if radius < size - 1 and radius < centre:  # a window narrower than the table's reach: drop the rest
        table = table[..., centre - radius:centre + radius + 1, :]
        table_len, centre = 2 * radius + 1, radius
    pad = max(0, size - 1 - centre)
    if pad:
        if radius < size - 1:  # offsets beyond the window: zero keys
            table = F.pad(table, (0, 0, pad, pad))
        else:  # whole axis beyond the table: the outermost embeddings (clamp)
            first, last = table[..., :1, :], table[..., -1:, :]
            shape = list(table.shape)
            shape[-2] = pad
            table = torch.cat([first.expand(shape), table, last.expand(shape)], dim=-2)
        centre += pad
    # rows centre - (size - 1) .. centre + size - 1: offsets -(size - 1)..size - 1
    table = table[..., centre - size + 1:centre + size, :]
    if torch.jit.is_tracing():  # torch.onnx's TorchScript exporter cannot size Tensor.unfold: a gather instead
        pos = torch.arange(size, device=table.device)
        rows = table.index_select(table.dim() - 2, (pos.view(-1, 1) + pos.view(1, -1)).reshape(-1))
        windows = rows.reshape(list(table.shape[:-2]) + [size, size, table.shape[-1]]).transpose(-1, -2)
    else:
        windows = table.unfold(-2, size, 1)  # (..., size, d, size): [i, :, j] = R[i + j - (size - 1)]
    return windows.flip([-3])  # [a, :, a'] = R[a' - a]: i = size - 1 - a


def _axis_dense(q: torch.Tensor, v: torch.Tensor, table: torch.Tensor, radius: int, softmax: bool) -> torch.Tensor:
    """Every pair of the axis at once, as two batched matmuls: logits batched over the query position
    (its keys R[a' - a] depend on it), aggregation batched over the lines."""
    b, n, lines, size, dv = v.shape
    dk = q.shape[-1]
    keys = relative_keys(table, size, radius)  # ([heads,] X, d_k, X')
    if table.dim() == 2:
        q = q.permute(3, 0, 1, 2, 4).reshape(size, b * n * lines, dk)  # (X, B * heads * A, d_k)
        logits = torch.bmm(q, keys).transpose(0, 1)  # (B * heads * A, X, X'), a strided view
    else:
        q = q.permute(1, 3, 0, 2, 4).reshape(n * size, b * lines, dk)  # (heads * X, B * A, d_k)
        logits = torch.bmm(q, keys.reshape(n * size, dk, size)).view(n, size, b, lines, size)
        logits = logits.permute(2, 0, 3, 1, 4).reshape(b * n * lines, size, size)
    if softmax:
        pos = torch.arange(size, device=q.device)
        outside = (pos.view(1, -1) - pos.view(-1, 1)).abs() > radius
        logits = logits.masked_fill(outside, float('-inf')).softmax(dim=-1)
    out = torch.bmm(logits, v.reshape(b * n * lines, size, dv))
    return out.view(b, n, lines, size, dv)


def _axis_window(q: torch.Tensor, v: torch.Tensor, table: torch.Tensor, radius: int, softmax: bool) -> torch.Tensor:
    """A window of L = 2 * radius + 1 < X pixels: logits q . R^T for the L offsets (one matmul), then the
    sum over L shifted slices of the zero-padded values."""
    size = v.shape[3]
    length = 2 * radius + 1
    keys = table.transpose(-1, -2) if table.dim() == 2 else table.transpose(-1, -2).unsqueeze(1)
    logits = torch.matmul(q, keys)  # (B, heads, A, X, L): offset l - radius
    if softmax:
        key_pos = torch.arange(size, device=q.device).view(-1, 1) + torch.arange(length, device=q.device) - radius
        logits = logits.masked_fill((key_pos < 0) | (key_pos >= size), float('-inf')).softmax(dim=-1)
    v = F.pad(v, (0, 0, radius, radius))  # (B, heads, A, X + 2r, d_v): zeros beyond the map
    out = logits[..., 0:1] * v[:, :, :, 0:size]
    for i in range(1, length):
        out = out + logits[..., i:i + 1] * v[:, :, :, i:i + size]
    return out


def _positional_dense(
        q_col: torch.Tensor, v_col: torch.Tensor, q_row: torch.Tensor, keys_col: torch.Tensor,
        keys_row: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Column pass -> affine (the eval BatchNorm) -> row pass over every pair of each axis, for g (image, head)
    groups: q_col (H, g, W, d_k), v_col (g, W, d_v, H), q_row (W, g, H, d_k), keys from ``relative_keys``,
    scale / shift (g, 1, d_v, 1). Returns (g, H, d_v, W).

    Each pass aggregates as out^T = v^T L^T per line, (d_v, X') @ (X', X): the logits come out of their matmul
    as (X, lines, X') and are read transposed, without a copy. With a small d_v this is faster than L v,
    (X, X') @ (X', d_v), whose narrow output starves the matmul kernel."""
    h, g, w, dk = q_col.shape
    dv = v_col.shape[2]
    # columns: W lines of H pixels per group
    logits = torch.bmm(q_col.reshape(h, g * w, dk), keys_col)  # (H, g*W, H'): [a, line, a']
    col = torch.bmm(v_col.reshape(g * w, dv, h), logits.permute(1, 2, 0))  # (g*W, d_v, H)
    # BatchNorm while re-laying out to rows: (g, H, d_v, W)
    norm = torch.empty((g, h, dv, w), dtype=col.dtype, device=col.device)
    torch.addcmul(shift, col.view(g, w, dv, h).permute(0, 3, 2, 1), scale, out=norm)
    # rows: H lines of W pixels per group
    logits = torch.bmm(q_row.reshape(w, g * h, dk), keys_row)  # (W, g*H, W')
    return torch.bmm(norm.view(g * h, dv, w), logits.permute(1, 2, 0)).view(g, h, dv, w)


def _lines(q: torch.Tensor, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Maps q (g, d_k, A, X), v (g, d_v, A, X) (any strides) as g * A lines of X pixels, laid out for the matmuls
    of ``_DenseAxialPass``: q (X, g * A, d_k) (pixel major), v (g * A, d_v, X)."""
    g, dk, lines, size = q.shape
    return (q.permute(3, 0, 2, 1).reshape(size, g * lines, dk),
            v.permute(0, 2, 1, 3).reshape(g * lines, v.shape[1], size))


class _DenseAxialPass(torch.autograd.Function):
    """One whole-axis positional pass without softmax for training. q (g, d_k, A, X), v (g, d_v, A, X) (g groups
    of A lines of X pixels, any strides: a column pass is the row pass of the transposed maps) and keys
    (X, d_k, X') from ``relative_keys`` give out (g, d_v, A, X),
    out[., :, l, a] = sum_a' (q[., :, l, a] . keys[a, :, a']) v[., :, l, a'].

    Keeps only its inputs (q and v are maps the module keeps anyway); their line layouts are remade in backward.
    The logits of a chunk of lines are made, used and dropped while they are in cache, in forward and again in
    backward (one matmul more than storing them): stored for the batch they would be X times the size of v,
    and reading them back costs more than remaking them. With L = q . keys per line:
        dv = g L,   dL = g^T v,   dq[a] = dL[a, :] keys[a]^T,   dkeys[a] = sum over lines of q[a]^T dL[a, :]."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, v: torch.Tensor, keys: torch.Tensor, chunk: int) -> torch.Tensor:
        g, dv, lines, size = v.shape
        q_lines, v_lines = _lines(q, v)
        n = q_lines.shape[1]
        out = v_lines.new_empty((n, dv, size))
        for i in range(0, n, chunk):
            j = min(i + chunk, n)
            logits = torch.bmm(q_lines[:, i:j], keys)  # (X, c, X')
            torch.bmm(v_lines[i:j], logits.permute(1, 2, 0), out=out[i:j])  # out^T = v L^T: (c, d_v, X)
        ctx.save_for_backward(q, v, keys)
        ctx.chunk = chunk
        return out.view(g, lines, dv, size).transpose(1, 2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        q, v, keys = ctx.saved_tensors
        chunk = ctx.chunk
        g, dv, lines, size = v.shape
        q_lines, v_lines = _lines(q, v)
        grad = grad.transpose(1, 2).reshape(g * lines, dv, size).contiguous()  # (g * A, d_v, X); e.g. expanded
        n = q_lines.shape[1]
        grad_q, grad_v, grad_keys = torch.empty_like(q_lines), torch.empty_like(v_lines), torch.zeros_like(keys)
        keys_t = keys.transpose(1, 2)  # (X, X', d_k)
        for i in range(0, n, chunk):
            j = min(i + chunk, n)
            logits = torch.bmm(q_lines[:, i:j], keys)  # (X, c, X'), remade
            torch.bmm(grad[i:j], logits.transpose(0, 1), out=grad_v[i:j])  # (c, d_v, X) @ (c, X, X')
            grad_logits = torch.bmm(grad[i:j].transpose(1, 2), v_lines[i:j]).transpose(0, 1).contiguous()
            grad_q[:, i:j] = torch.bmm(grad_logits, keys_t)  # (X, c, d_k)
            grad_keys += torch.bmm(q_lines[:, i:j].transpose(1, 2), grad_logits)  # not baddbmm_: a loop of addmm
        return (grad_q.view(size, g, lines, -1).permute(1, 3, 2, 0), grad_v.view(g, lines, dv, size).transpose(1, 2),
                grad_keys, None)


@register_notrace_function  # branches on the map size: a leaf for torch.fx
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
def axial_positional_attention(
        q: torch.Tensor, v: torch.Tensor, table: torch.Tensor, radius: int, softmax: bool = False) -> torch.Tensor:
    """Positional attention along the lines of q (B, heads, A, X, d_k) / v (B, heads, A, X, d_v) (A lines
    of X pixels): out[a] = sum_{|a' - a| <= radius} w(q[a] . R[a' - a]) v[a'] over the a' of the line,
    w the identity or a softmax over them. ``table``: (T, d_k) or (heads, T, d_k) relative embeddings,
    offset 0 at T // 2, offsets beyond the table use its outermost rows. Returns (B, heads, A, X, d_v)."""
    if 2 * radius + 1 < v.shape[3]:
        return _axis_window(q, v, table, radius, softmax)
    return _axis_dense(q, v, table, radius, softmax)


@register_notrace_module  # training branches on the mode (recompute): a leaf for torch.fx
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
        recompute: in training, keep only the module's input and output for backward and recompute the
            rest there (same values, gradients and BatchNorm statistics): the whole-axis logits are
            (B, heads, H, W, max(H, W)) per axis, the largest tensors of the network at 56 x 56.
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
            recompute: bool = True,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        dim_out = dim_out or dim
        dim_key = dim_key or dim_out
        if dim_key % num_heads or dim_out % num_heads:
            raise ValueError(
                f'dim_key ({dim_key}) and dim_out ({dim_out}) must be divisible by num_heads ({num_heads})')
        if rel_pos_length is not None and (rel_pos_length < 1 or rel_pos_length % 2 == 0):
            raise ValueError(
                f'rel_pos_length must be odd and positive (a centred window) or None, got {rel_pos_length}')
        if rel_pos_length is None and max_size < 1:
            raise ValueError(f'max_size must be positive, got {max_size}')
        self.dim_out = dim_out
        self.dim_key = dim_key
        self.num_heads = num_heads
        self.rel_pos_length = rel_pos_length
        self.max_size = max_size
        self.pos_softmax = pos_softmax
        self.norm_queries = norm_queries
        self.recompute = recompute
        # eval without autograd: positional logits per chunk of (image, head) groups, at most about this many
        # elements; None: the chunk-size policy of ``_ops.chunking`` (see ``_attention_inference``)
        self.inference_chunk_numel: Optional[int] = None
        # window radius; whole axis: no limit (the dense path covers every pair of the map)
        self.radius = (rel_pos_length - 1) // 2 if rel_pos_length is not None else WHOLE_AXIS_RADIUS
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

    def project(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> q (B, heads, d_k, H, W), k (B, heads, d_k, H, W), v (B, heads, d_v, H, W)."""
        b, _, h, w = x.shape
        n = self.num_heads
        # three products with slices of the one qkv weight: each output contiguous
        wq, wk, wv = self.qkv.weight.split([self.dim_key, self.dim_key, self.dim_out])
        bias = self.qkv.bias
        if bias is None:
            q, k, v = pointwise_conv(x, wq), pointwise_conv(x, wk), pointwise_conv(x, wv)
        else:
            bq, bk, bv = bias.split([self.dim_key, self.dim_key, self.dim_out])
            q, k, v = pointwise_conv(x, wq, bq), pointwise_conv(x, wk, bk), pointwise_conv(x, wv, bv)
        return (q.view(b, n, self.dim_key // n, h, w), k.view(b, n, self.dim_key // n, h, w),
                v.view(b, n, self.dim_out // n, h, w))

    def content_branch(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """F_c, (B, heads, d_v, H, W)."""
        return content_attention(q.flatten(3), k.flatten(3), v.flatten(3), self.norm_queries).view(v.shape)

    def positional_branch(self, q: torch.Tensor, v: torch.Tensor, update_stats: bool = True) -> torch.Tensor:
        """Column-only attention -> BatchNorm -> row-only attention, (B, heads, d_v, H, W).
        ``update_stats=False``: a recomputation in training (the BatchNorm's running statistics stay)."""
        if not torch.jit.is_scripting() and self._use_dense_axial_pass(q, v):
            return self._positional_branch_dense(q, v, update_stats)
        b, n, dv, h, w = v.shape
        # columns: W lines of H pixels, (B, heads, W, H, d)
        col = axial_positional_attention(
            q.permute(0, 1, 4, 3, 2), v.permute(0, 1, 4, 3, 2), self.rel_pos_col, self.radius, self.pos_softmax)
        col = col.permute(0, 1, 4, 3, 2).reshape(b, n * dv, h, w)
        if self.training and not update_stats and not torch.jit.is_scripting():
            col = self._pos_norm_recomputed(col)
        else:
            col = self.pos_norm(col)
        # rows: H lines of W pixels, (B, heads, H, W, d)
        row = axial_positional_attention(
            q.permute(0, 1, 3, 4, 2), col.view(b, n, dv, h, w).permute(0, 1, 3, 4, 2), self.rel_pos_row,
            self.radius, self.pos_softmax)
        return row.permute(0, 1, 4, 2, 3)

    @torch.jit.unused
    def _use_dense_axial_pass(self, q: torch.Tensor, v: torch.Tensor) -> bool:
        """Eager training in float32 / float64 on the CPU or CUDA of the default positional attention (whole axis,
        dense on both axes, no softmax, shared tables) takes ``_DenseAxialPass``; compiled graphs, traces, autocast
        and other devices (e.g. 'meta', which has no autocast state to ask) do not."""
        return torch.is_grad_enabled() and v.device.type in ('cpu', 'cuda') and self._default_positional(v) \
            and v.dtype in (torch.float32, torch.float64) \
            and q.dtype == v.dtype and self.rel_pos_col.dtype == v.dtype and not is_capturing() \
            and not torch.is_autocast_enabled(v.device.type)

    @torch.jit.unused
    def _default_positional(self, x: torch.Tensor) -> bool:
        """The default positional attention on maps of x's size: whole axis (dense on both axes), no softmax,
        tables shared by the heads. The fast paths (``_DenseAxialPass``, ``_attention_inference``) need it."""
        return not self.pos_softmax and self.rel_pos_col.dim() == 2 \
            and 2 * self.radius + 1 >= max(x.shape[-2], x.shape[-1])

    @torch.jit.unused
    def _positional_branch_dense(self, q: torch.Tensor, v: torch.Tensor, update_stats: bool) -> torch.Tensor:
        """``positional_branch`` through ``_DenseAxialPass`` (same function), (B, heads, d_v, H, W)."""
        b, n, dv, h, w = v.shape
        q = q.reshape(b * n, -1, h, w)
        # columns: the row pass of the transposed maps, g * W lines of H pixels
        keys = relative_keys(self.rel_pos_col, h, self.radius)
        col = _DenseAxialPass.apply(
            q.transpose(2, 3), v.reshape(b * n, dv, h, w).transpose(2, 3), keys, chunk_size(h * h, v.device))
        col = col.transpose(2, 3).reshape(b, n * dv, h, w)
        col = self._pos_norm_recomputed(col) if self.training and not update_stats else self.pos_norm(col)
        # rows: g * H lines of W pixels
        keys = relative_keys(self.rel_pos_row, w, self.radius)
        row = _DenseAxialPass.apply(q, col.view(b * n, dv, h, w), keys, chunk_size(w * w, v.device))
        return row.view(b, n, dv, h, w)

    @torch.jit.unused
    def _pos_norm_recomputed(self, x: torch.Tensor) -> torch.Tensor:
        """The training BatchNorm of a recomputation: batch statistics, running statistics left alone."""
        return batch_norm_train(self.pos_norm, x, False)

    def attention(self, x: torch.Tensor, update_stats: bool = True) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = self.project(x)
        out = self.content_branch(q, k, v) + self.positional_branch(q, v, update_stats)
        out = out.reshape(b, self.dim_out, h, w)
        if self.proj is not None:
            out = self.proj(out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.recompute and torch.is_grad_enabled() and not torch.jit.is_scripting():
            return self._attention_recomputed(x)
        if not torch.jit.is_scripting() and self._use_inference_path(x):
            return self._attention_inference(x)
        return self.attention(x)

    @torch.jit.unused
    def _use_inference_path(self, x: torch.Tensor) -> bool:
        """Eval mode without autograd, default positional attention: whole axis (dense on both axes), no
        softmax, shared tables, a BatchNorm with running statistics (an affine map) between the axes."""
        return not self.training and not torch.is_grad_enabled() and self._default_positional(x) \
            and self.pos_norm.running_var is not None and self.pos_norm.running_mean is not None \
            and is_plain_batchnorm(self.pos_norm) \
            and not torch.compiler.is_compiling()

    @torch.jit.unused
    def _attention_inference(self, x: torch.Tensor) -> torch.Tensor:
        """``attention`` in eval without autograd: the BatchNorm applied as an affine map while re-laying the column
        output out for the row pass, the row output added into the content output in place (three full-size copies
        fewer than ``attention``). The positional pass runs over chunks of (image, head) groups with at most
        logits per axis (the chunk-size policy of ``_ops.chunking``, or ``inference_chunk_numel``), each chunk's
        q / v laid out for both passes just before use: on the CPU a chunk's logits stay in cache between the two
        matmuls that write and read them. Same function as ``attention`` up to float rounding."""
        b, _, h, w = x.shape
        n = self.num_heads
        dk, dv = self.dim_key // n, self.dim_out // n
        q, k, v = self.project(x)
        out = self.content_branch(q, k, v).view(b * n, dv, h, w)
        keys_col = relative_keys(self.rel_pos_col, h, self.radius)  # (H, d_k, H')
        keys_row = relative_keys(self.rel_pos_row, w, self.radius)  # (W, d_k, W')
        scale, shift = batchnorm_affine(self.pos_norm)
        # per (image, head) group, broadcast over the (H, d_v, W) layout of the row pass's values
        scale = scale.view(1, n, 1, dv, 1).expand(b, -1, -1, -1, -1).reshape(b * n, 1, dv, 1)
        shift = shift.view(1, n, 1, dv, 1).expand(b, -1, -1, -1, -1).reshape(b * n, 1, dv, 1)
        q, v = q.reshape(b * n, dk, h, w), v.reshape(b * n, dv, h, w)
        chunk = chunk_size(h * w * max(h, w), x.device, self.inference_chunk_numel)
        for i in range(0, b * n, chunk):
            j = min(i + chunk, b * n)
            q_i, v_i = q[i:j], v[i:j]
            # the line layouts of both passes, per chunk (laid out while the chunk is in cache)
            q_col = q_i.permute(2, 0, 3, 1).contiguous()  # (H, g, W, d_k)
            q_row = q_i.permute(3, 0, 2, 1).contiguous()  # (W, g, H, d_k)
            v_col = v_i.permute(0, 3, 1, 2).contiguous()  # (g, W, d_v, H)
            row = _positional_dense(q_col, v_col, q_row, keys_col, keys_row, scale[i:j], shift[i:j])
            out[i:j].add_(row.transpose(1, 2))
        out = out.view(b, self.dim_out, h, w)
        if self.proj is not None:
            out = self.proj(out)
        return out

    @torch.jit.unused
    def _attention_recomputed(self, x: torch.Tensor) -> torch.Tensor:
        """Training without storing q / k / v, the logits and the BatchNorm's input: recomputed in backward
        (not with a BatchNorm that is not plain, e.g. a SyncBatchNorm: see ``_ops.recompute``)."""
        return recompute_in_backward(lambda update_stats, x: self.attention(x, update_stats), x, norms=(self.pos_norm,))
