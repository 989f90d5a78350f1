"""Sliding-window (local) dot-product attention over a k x k neighbourhood, without unfolding.

For a query map q (N, d, Ho, Wo) and padded key / value maps k, v (N, d, Hp, Wp) with
Hp = (Ho - 1) * s + k (stride s), every output position attends to the k x k window whose
top-left corner is (i * s, j * s) in the padded maps:

    a_o(i, j) = softmax_o( sum_c q[c, i, j] * k[c, i*s + dy_o, j*s + dx_o] )      o = dy_o * k + dx_o
    out[c, i, j] = sum_o a_o(i, j) * v[c, i*s + dy_o, j*s + dx_o]

The k*k windows are never materialised (an ``unfold`` would copy k and v k*k times): the op loops
over the k window rows, each an ``as_strided`` view (N, d, k, Ho, Wo) of the padded map (no copy),
and keeps only the logits / weights (N, k*k, Ho, Wo); temporaries are at most k times q. In training a
custom autograd function stores q, k, v and the weights and recomputes everything else in backward.
Logits and softmax are computed in float32 for half inputs (autocast). Without autograd the same row loops
run as plain ops (ACmix's inference takes its own gather path; ``_tile_mask`` is the -inf window mask of
its T x T query tiles).

``mirror_pad`` extends ReflectionPad2d to maps not larger than the padding.
"""
from typing import Tuple

import torch
import torch.nn.functional as F

from ._ops.caching import is_capturing, tensor_cache
from .san.neighbourhood import neighbour_slices

__all__ = ['mirror_index', 'mirror_pad', 'sliding_window_attention', 'sliding_window_attention_plain']


def mirror_index(size: int, pad: int, device: torch.device) -> torch.Tensor:
    """Source index of each of the ``size + 2 * pad`` padded positions for a mirror-periodic extension
    (reflect at both borders again and again, period 2 * (size - 1)); a single position repeats.
    For pad < size this is exactly ReflectionPad2d's single reflection."""
    idx = torch.arange(-pad, size + pad, device=device)
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx < size, idx, period - idx)


def mirror_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``F.pad(x, (pad,) * 4, mode='reflect')`` for (N, C, H, W), also defined when pad >= H or W."""
    h, w = x.shape[-2], x.shape[-1]
    if pad == 0:
        return x
    if pad < h and pad < w:
        return F.pad(x, (pad, pad, pad, pad), mode='reflect')
    return x.index_select(-2, mirror_index(h, pad, x.device)).index_select(-1, mirror_index(w, pad, x.device))


def _window_row(x: torch.Tensor, dy: int, kernel_size: int, stride: int, out_h: int, out_w: int) -> torch.Tensor:
    """The k offsets (dy, 0..k-1) of a padded map at once, as a view (N, C, k, Ho, Wo) (no copy):
    element (dx, i, j) is x[..., i*s + dy, j*s + dx]."""
    if is_capturing():  # no as_strided in the ONNX exporter, storage offsets break dynamo graphs: slices instead
        h_end, w_end = dy + (out_h - 1) * stride + 1, (out_w - 1) * stride + 1
        return torch.stack([x[:, :, dy:h_end:stride, dx:dx + w_end:stride] for dx in range(kernel_size)], dim=2)
    n, c = x.shape[0], x.shape[1]
    sn, sc, sh, sw = x.stride(0), x.stride(1), x.stride(2), x.stride(3)
    return x.as_strided(
        (n, c, kernel_size, out_h, out_w), (sn, sc, sw, stride * sh, stride * sw), x.storage_offset() + dy * sh)


def _logit_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _attend(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int, stride: int,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(output (N, d, Ho, Wo), weights (N, k*k, Ho, Wo)), one window row (k offsets) per step: a few large
    ops per row instead of one per offset (each op's temporary is k times q, never k*k times)."""
    n, _, ho, wo = q.shape
    ks = kernel_size
    acc_dtype = _logit_dtype(q.dtype)
    logits = torch.empty((n, ks * ks, ho, wo), dtype=acc_dtype, device=q.device)
    # sum straight into the logits buffer where autograd does not record (out= is not differentiable)
    # (not in a captured graph: it must stay valid when later run with autograd)
    sum_into = acc_dtype == q.dtype and not (torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)) \
        and not is_capturing()
    q5 = q.unsqueeze(2)
    for dy in range(ks):
        prod = q5 * _window_row(k, dy, ks, stride, ho, wo)  # (N, d, k, Ho, Wo)
        if sum_into:
            torch.sum(prod, [1], False, out=logits[:, dy * ks:(dy + 1) * ks])  # no temporary for the sum
        else:
            logits[:, dy * ks:(dy + 1) * ks] = prod.sum(1, dtype=acc_dtype)
    attn = logits.softmax(1).to(v.dtype)
    out = torch.zeros(q.shape, dtype=acc_dtype, device=q.device)
    for dy in range(ks):
        weights = attn[:, dy * ks:(dy + 1) * ks].unsqueeze(1)
        out += (weights * _window_row(v, dy, ks, stride, ho, wo)).sum(2, dtype=acc_dtype)
    return out.to(q.dtype), attn


@tensor_cache(maxsize=32)
def _tile_mask(tile: int, kernel_size: int, stride: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(T*T, R*R) additive mask of a query tile against its key region (R = (T-1)*s + k): 0 inside each
    query's k x k window, -inf outside."""
    with torch.inference_mode(False):
        span = (tile - 1) * stride + kernel_size
        qi, ri = torch.arange(tile, device=device), torch.arange(span, device=device)
        rows = (ri[None, :] >= qi[:, None] * stride) & (ri[None, :] < qi[:, None] * stride + kernel_size)
        inside = (rows[:, None, :, None] & rows[None, :, None, :]).reshape(tile * tile, span * span)
        return torch.zeros(inside.shape, dtype=dtype, device=device).masked_fill_(~inside, float('-inf'))


def sliding_window_attention_plain(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int, stride: int = 1,
) -> torch.Tensor:
    """``sliding_window_attention`` in plain, TorchScript-able torch ops (autograd stores every temporary)."""
    return _attend(q, k, v, kernel_size, stride)[0]


class _SlidingWindowAttention(torch.autograd.Function):
    """Stores q, k, v and the attention weights; backward loops over the offsets like forward."""

    @staticmethod
    def forward(ctx, q, k, v, kernel_size: int, stride: int):
        out, attn = _attend(q, k, v, kernel_size, stride)
        ctx.save_for_backward(q, k, v, attn)
        ctx.kernel_size, ctx.stride = kernel_size, stride
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        q, k, v, attn = ctx.saved_tensors
        ks, s = ctx.kernel_size, ctx.stride
        ho, wo = q.shape[-2], q.shape[-1]
        acc_dtype = _logit_dtype(q.dtype)
        grad_out = grad_out.to(v.dtype)
        need_q, need_k, need_v = ctx.needs_input_grad[:3]

        # d loss / d weights, and d v (each offset's window receives weight * grad_out)
        grad_attn = torch.empty(attn.shape, dtype=acc_dtype, device=attn.device)
        grad_v = torch.zeros(v.shape, dtype=acc_dtype, device=v.device) if need_v else None
        go5 = grad_out.unsqueeze(2)
        for dy in range(ks):
            grad_attn[:, dy * ks:(dy + 1) * ks] = (go5 * _window_row(v, dy, ks, s, ho, wo)).sum(1, dtype=acc_dtype)
        if grad_v is not None:  # overlapping windows: one offset at a time
            for o, gv in enumerate(neighbour_slices(grad_v, ks, s, 1, (ho, wo))):
                gv.addcmul_(attn[:, o:o + 1], grad_out)

        # softmax backward: dl = a * (da - sum_o a * da)
        attn_f = attn.to(acc_dtype)
        grad_logits = attn_f * (grad_attn - (attn_f * grad_attn).sum(1, keepdim=True))
        del grad_attn, attn_f
        grad_logits = grad_logits.to(q.dtype)

        grad_q = torch.zeros(q.shape, dtype=acc_dtype, device=q.device) if need_q else None
        grad_k = torch.zeros(k.shape, dtype=acc_dtype, device=k.device) if need_k else None
        if grad_q is not None:
            for dy in range(ks):
                grad_q += (grad_logits[:, dy * ks:(dy + 1) * ks].unsqueeze(1) * _window_row(k, dy, ks, s, ho, wo)).sum(
                    2, dtype=acc_dtype)
        if grad_k is not None:
            for o, gk in enumerate(neighbour_slices(grad_k, ks, s, 1, (ho, wo))):
                gk.addcmul_(grad_logits[:, o:o + 1], q)
        return (
            None if grad_q is None else grad_q.to(q.dtype),
            None if grad_k is None else grad_k.to(k.dtype),
            None if grad_v is None else grad_v.to(v.dtype),
            None, None,
        )


def sliding_window_attention(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int, stride: int = 1,
) -> torch.Tensor:
    """Local attention of q (N, d, Ho, Wo) over k x k windows of the padded k, v (N, d, Hp, Wp).

    Needs Hp >= (Ho - 1) * stride + kernel_size (same for W; extra rows / columns are unused); q, k, v of one dtype.
    With autograd the
    memory kept for backward is q, k, v and the (N, k*k, Ho, Wo) weights.
    """
    ho, wo = q.shape[-2], q.shape[-1]
    if k.shape != v.shape or k.shape[:2] != q.shape[:2]:
        raise ValueError(f'k and v must be (N, d, Hp, Wp) with the N, d of q {tuple(q.shape)}, '
                         f'got k {tuple(k.shape)}, v {tuple(v.shape)}')
    if k.shape[-2] < (ho - 1) * stride + kernel_size or k.shape[-1] < (wo - 1) * stride + kernel_size:
        raise ValueError(f'padded k / v of {k.shape[-2]}x{k.shape[-1]} are too small for {ho}x{wo} queries with a '
                         f'{kernel_size}x{kernel_size} window at stride {stride}')
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad) \
            and not torch.jit.is_tracing():  # a traced graph (ONNX export) cannot record the autograd.Function
        return _SlidingWindowAttention.apply(q, k, v, kernel_size, stride)
    return _attend(q, k, v, kernel_size, stride)[0]
