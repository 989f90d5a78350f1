"""SAN aggregation: a weighted sum of the values over each position's footprint.

Eq. (1) of Zhao et al., "Exploring Self-attention for Image Recognition" (CVPR 2020),
official op ``lib/sa/functions/aggregation_refpad.py`` of https://github.com/hszhao/SAN:

    y[n, c, i] = sum_{kk in R(i)} w[n, c mod C_w, kk, i] * pad(x)[n, c, neighbour(i, kk)]

``x`` is (N, C, H, W); ``w`` is (N, C_w, k*k, Ho*Wo) with C divisible by C_w. The weight channels
are shared by INTERLEAVED groups: output channel c uses weight channel ``c % C_w`` (the official
layout, so (N, C, ...) is viewed as (N, C // C_w, C_w, ...) and the weights broadcast over dim 1).

The official code is CUDA-only (CuPy); its unfold equivalent materialises a (N, C, k*k, Ho*Wo)
copy of the values. Here the forward accumulates k*k shifted *views* of the padded values
(``addcmul_`` into one output buffer), and the backward is written by hand so that autograd does
not allocate a full padded gradient per offset: peak extra memory is one padded copy of x.
"""

import torch
import torch.fx
from torch.autograd.function import once_differentiable

from timm.layers import register_notrace_function

from .neighbourhood import check_footprint, neighbour_slices, neighbourhood_output_size, neighbourhood_padding, \
    reflect_pad

__all__ = ['aggregate_neighbours']


def _check_aggregation_args(x: torch.Tensor, weight: torch.Tensor, kernel_size: int, stride: int, dilation: int):
    check_footprint(kernel_size, stride, dilation)
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(f'expected x (N, C, H, W) and weight (N, C_w, k*k, L), got {list(x.shape)} and '
                         f'{list(weight.shape)}')
    n, c, h, w = x.shape
    ho = neighbourhood_output_size(h, kernel_size, stride, dilation)
    wo = neighbourhood_output_size(w, kernel_size, stride, dilation)
    if weight.shape[0] != n or weight.shape[2] != kernel_size * kernel_size or weight.shape[3] != ho * wo:
        raise ValueError(f'weight of shape {list(weight.shape)} does not fit x of shape {list(x.shape)}: '
                         f'expected ({n}, C_w, {kernel_size * kernel_size}, {ho * wo})')
    if c % weight.shape[1] != 0:
        raise ValueError(f'channels of x ({c}) must be a multiple of the weight channels ({weight.shape[1]})')
    return ho, wo


def _aggregate_forward(x: torch.Tensor, weight: torch.Tensor, kernel_size: int, stride: int, dilation: int,
                       ho: int, wo: int, inplace: bool) -> torch.Tensor:
    """Accumulate the k*k shifted views; in place when no autograd graph is recorded."""
    n, c, cw = x.shape[0], x.shape[1], weight.shape[1]
    padded = reflect_pad(x, kernel_size, dilation)
    padded = padded.view(n, c // cw, cw, padded.shape[-2], padded.shape[-1])  # interleaved groups of C_w
    w = weight.view(n, 1, cw, kernel_size * kernel_size, ho, wo)  # broadcast over the C // C_w groups
    out = torch.empty(0)
    for kk, xs in enumerate(neighbour_slices(padded, kernel_size, stride, dilation, (ho, wo))):
        if kk == 0:
            out = xs * w[:, :, :, kk]  # promoted dtype: fp32 accumulation under autocast
        elif inplace:
            out.addcmul_(xs, w[:, :, :, kk])
        else:
            out = out.addcmul(xs, w[:, :, :, kk])
    return out.reshape(n, c, ho, wo)


class _AggregateNeighbours(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, weight, kernel_size: int, stride: int, dilation: int, ho: int, wo: int):
        with torch.no_grad():
            out = _aggregate_forward(x, weight, kernel_size, stride, dilation, ho, wo, inplace=True)
        ctx.save_for_backward(x, weight)
        ctx.geometry = (kernel_size, stride, dilation, ho, wo)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        kernel_size, stride, dilation, ho, wo = ctx.geometry
        n, c, h, w_ = x.shape
        cw = weight.shape[1]
        pad = neighbourhood_padding(kernel_size, dilation)
        g = grad_out.reshape(n, c // cw, cw, ho, wo)
        wv = weight.view(n, 1, cw, kernel_size * kernel_size, ho, wo)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            # scatter-add every offset's contribution into a padded buffer, then fold the reflected border back
            grad_padded = g.new_zeros(n, c // cw, cw, h + 2 * pad, w_ + 2 * pad)
            for kk, gs in enumerate(neighbour_slices(grad_padded, kernel_size, stride, dilation, (ho, wo))):
                gs.addcmul_(g, wv[:, :, :, kk])
            grad_padded = grad_padded.view(n, c, h + 2 * pad, w_ + 2 * pad)
            if pad:
                like_x = x if x.dtype == grad_padded.dtype else x.to(grad_padded.dtype)  # only its shape is read
                grad_x = torch.ops.aten.reflection_pad2d_backward(grad_padded, like_x, [pad, pad, pad, pad])
            else:
                grad_x = grad_padded
            grad_x = grad_x.to(x.dtype)
        if ctx.needs_input_grad[1]:
            padded = reflect_pad(x, kernel_size, dilation).view(n, c // cw, cw, h + 2 * pad, w_ + 2 * pad)
            grad_w = weight.new_empty(n, cw, kernel_size * kernel_size, ho, wo)
            for kk, xs in enumerate(neighbour_slices(padded, kernel_size, stride, dilation, (ho, wo))):
                grad_w[:, :, kk] = (g * xs).sum(dim=1)  # sum over the C // C_w groups sharing the weight
            grad_w = grad_w.view(weight.shape)
        return grad_x, grad_w, None, None, None, None, None


@register_notrace_function
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
def aggregate_neighbours(
        x: torch.Tensor,
        weight: torch.Tensor,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
) -> torch.Tensor:
    """SAN aggregation (see module docstring) without materialising the unfolded values.

    Args:
        x: values, (N, C, H, W).
        weight: attention weights, (N, C_w, k*k, Ho*Wo), official layout; C % C_w == 0.
        kernel_size: footprint k (odd).
        stride: output stride s.
        dilation: footprint dilation d.

    Returns:
        (N, C, Ho, Wo) with Ho = (H - 1) // s + 1, in the promoted dtype of x and weight.
    """
    ho, wo = _check_aggregation_args(x, weight, kernel_size, stride, dilation)
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        # TorchScript and torch.jit.trace (which timm's onnx_export.py runs through torch.onnx.export) cannot
        # record a Python autograd.Function: the traced graph is the same sum of shifted views, out of place
        return _aggregate_forward(x, weight, kernel_size, stride, dilation, ho, wo, inplace=False)
    return _aggregate_autograd(x, weight, kernel_size, stride, dilation, ho, wo)


@torch.jit.ignore
def _aggregate_autograd(x: torch.Tensor, weight: torch.Tensor, kernel_size: int, stride: int, dilation: int,
                        ho: int, wo: int) -> torch.Tensor:
    return _AggregateNeighbours.apply(x, weight, kernel_size, stride, dilation, ho, wo)
