"""CPU-fast drop-ins for the 1x1 convolution (SAN's and GSA-Net's most used layer).

They keep the interface and state_dict of their torch.nn counterparts and compute the same result; they only
choose a faster kernel for contiguous NCHW inputs on the CPU, where PyTorch's oneDNN path reorders every NCHW
tensor to a blocked layout and back: a 1x1 conv is a batched matmul over (N, C, H*W). Channels-last input is
one matmul over the NHWC memory. GPU inputs use the stock kernels. Measurements belong in docs/performance.md.
"""
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from timm.layers import register_notrace_function

from typing import Optional

__all__ = ['PointwiseConv2d', 'pointwise_conv', 'pointwise_conv_by_size', 'MATMUL_MIN_POSITIONS']

# smallest map (H * W) on which ``pointwise_conv_by_size`` takes the batched matmul on the CPU (28 x 28): on
# smaller maps oneDNN's 1x1 conv was as fast or faster
MATMUL_MIN_POSITIONS = 28 * 28


@register_notrace_function  # shape / device checks: a leaf for torch.fx
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
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


class PointwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(in_chs, out_chs, 1)``, computed as a batched matmul over (N, C, H*W) on the CPU."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True, device=None, dtype=None):
        super().__init__(in_channels, out_channels, 1, bias=bias, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise_conv(x, self.weight, self.bias)


def pointwise_conv_by_size(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """1x1 conv with an (O, C) weight and a bias: ``pointwise_conv`` (batched matmul) on maps of at least
    ``MATMUL_MIN_POSITIONS`` positions, where it beats oneDNN's 1x1 conv on the CPU; ``F.conv2d`` on smaller
    CPU maps."""
    if x.device.type == 'cpu' and x.shape[-1] * x.shape[-2] < MATMUL_MIN_POSITIONS:
        return F.conv2d(x, weight[:, :, None, None], bias)
    return pointwise_conv(x, weight, bias)
