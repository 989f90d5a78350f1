"""Training-mode BatchNorm -> ReLU -> 1x1 conv that stores only its input.

Autograd would keep three tensors of the input's size for this sequence (the BN input, the BN
output that the in-place ReLU overwrites and saves, the conv input = that same output); on SAN's
(C, k*k, H*W) relation tensors those dominate the training memory. This function saves only the
input and the per-channel batch statistics, and recomputes ``relu(bn(x))`` in backward (one
elementwise pass). Values, gradients and running-statistics updates are those of
``conv(relu(bn(x)))`` with ``bn`` in training mode.

Backward of BN with batch statistics (M elements per channel, x_hat the normalised input):
    dx = gamma * invstd * (dy - mean(dy) - x_hat * mean(dy * x_hat))
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .batchnorm import is_plain_batchnorm
from .pointwise import pointwise_conv
from .recompute import running_stats_factor

__all__ = ['bn_relu_conv1x1']


def _per_channel(t: torch.Tensor, ndim: int) -> torch.Tensor:
    return t.view((1, -1) + (1,) * (ndim - 2))


class _BnReluConv(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, bn_weight, bn_bias, conv_weight, conv_bias, running_mean, running_var, factor: float,
                eps: float):
        dims = [0] + list(range(2, x.dim()))
        var, mean = torch.var_mean(x, dim=dims, correction=0)
        count = x.numel() // x.shape[1]
        if running_mean is not None and factor > 0:
            running_mean.mul_(1 - factor).add_(mean, alpha=factor)
            running_var.mul_(1 - factor).add_(var * (count / max(count - 1, 1)), alpha=factor)
        invstd = torch.rsqrt(var + eps)
        scale = invstd * bn_weight if bn_weight is not None else invstd
        shift = bn_bias - mean * scale if bn_bias is not None else -mean * scale
        y = torch.addcmul(_per_channel(shift, x.dim()), x, _per_channel(scale, x.dim())).relu_()
        ctx.save_for_backward(x, mean, invstd, bn_weight, bn_bias, conv_weight)
        ctx.has_conv_bias = conv_bias is not None
        ctx.input_dtype = x.dtype
        return pointwise_conv(y, conv_weight, conv_bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, mean, invstd, bn_weight, bn_bias, conv_weight = ctx.saved_tensors
        nd = x.dim()
        n, c = x.shape[:2]
        gamma = bn_weight if bn_weight is not None else torch.ones_like(mean)
        beta = bn_bias if bn_bias is not None else torch.zeros_like(mean)
        scale = gamma * invstd
        # recompute the conv input y = relu(bn(x)); no separate x_hat tensor is made
        y = torch.addcmul(_per_channel(beta - mean * scale, nd), x, _per_channel(scale, nd)).relu_()
        x = x.to(y.dtype)  # autocast: x may be low precision, the BN math runs in the parameters' precision
        g = grad_out.reshape(n, grad_out.shape[1], -1).to(y.dtype)  # autocast: conv ran in low precision
        grad_conv_w = torch.bmm(g, y.view(n, c, -1).transpose(1, 2)).sum(0).view_as(conv_weight).to(conv_weight.dtype)
        grad_conv_b = g.sum((0, 2)) if ctx.has_conv_bias else None
        mask = y > 0  # ReLU
        # dy = W^T grad_out, written into y's buffer: one input-sized tensor less at the peak
        w_t = conv_weight.flatten(1).t().unsqueeze(0).expand(n, -1, -1)
        dy = torch.bmm(w_t, g, out=y.view(n, c, -1)).view_as(x)
        dy.mul_(mask)
        del mask
        # per-channel sums over batch and positions; sum(dy * x) as a batched dot product (no product tensor)
        count = x.numel() // c
        sum_dy = dy.sum([0] + list(range(2, nd)))
        sum_dy_x = torch.bmm(dy.reshape(n * c, 1, -1), x.reshape(n * c, -1, 1)).view(n, c).sum(0)
        grad_beta = sum_dy
        grad_gamma = (sum_dy_x - mean * sum_dy) * invstd  # sum(dy * x_hat)
        # dx = gamma * invstd * (dy - mean(dy) - x_hat * mean(dy * x_hat)), affine in dy and x, in place on dy
        k = grad_gamma * invstd / count
        dx = dy.mul_(_per_channel(scale, nd))
        dx.addcmul_(x, _per_channel(-scale * k, nd))
        dx.add_(_per_channel(scale * (k * mean - sum_dy / count), nd))
        return (dx.to(ctx.input_dtype), grad_gamma if bn_weight is not None else None,
                grad_beta if bn_bias is not None else None, grad_conv_w, grad_conv_b, None, None, None, None)


def bn_relu_conv1x1(x: torch.Tensor, bn: nn.BatchNorm2d, conv: nn.Conv2d, update_stats: bool = True) -> torch.Tensor:
    """``conv(relu(bn(x)))`` for a 1x1 ``conv`` and ``bn`` in training mode, storing only ``x``.

    With ``update_stats=False`` the running statistics are left as they are (a recomputation).
    In eval mode, when ``bn`` tracks no running statistics or is not a plain BatchNorm (``is_plain_batchnorm``,
    e.g. a ``SyncBatchNorm``: called, so it normalises with its own statistics), it is the plain sequence.
    """
    if not bn.training or not bn.track_running_stats or torch.jit.is_scripting() or not is_plain_batchnorm(bn):
        return conv(F.relu(bn(x)))
    factor = running_stats_factor(bn, update_stats)
    return _BnReluConv.apply(x, bn.weight, bn.bias, conv.weight, conv.bias, bn.running_mean, bn.running_var,
                             factor, bn.eps)
