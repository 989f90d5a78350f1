"""CPU-fast pooling drop-ins (same values as the stock kernels) and the 2x2 pools of CoAtNet.

On the CPU without autograd, ``F.max_pool2d`` / ``F.avg_pool2d`` on NCHW maps go through a path that is slower
than a few elementwise maxima / sums of strided views of the map. Under autograd it is the other way round:
the views' backward writes a zero-filled full-size gradient per view, the stock backward one. These drop-ins
take the views on the CPU without autograd (where the conditions below hold) and the stock kernels elsewhere,
with the interface of their ``torch.nn`` counterparts. Measurements belong in docs/performance.md.
"""
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from timm.layers import register_notrace_function, register_notrace_module

__all__ = [
    'MaxPool2x2', 'AvgPool2x2', 'StemMaxPool', 'max_pool_2x2', 'avg_pool_2x2', 'max_pool_3x3_s2', 'pool_2x2_nchw',
    'pool_2x2_nhwc', 'is_avg_down_pool']


@register_notrace_function
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2, 2)`` (floor mode): odd last rows / columns are dropped. The maxima of strided views
    only without autograd on the CPU: under autograd the stock kernel, whose backward scatters into one buffer
    through its indices (the views' backward zero-fills and adds a full-size gradient per view) and routes a
    tie to one input, as ``nn.MaxPool2d`` does."""
    if x.device.type != 'cpu' or torch.is_grad_enabled():
        return F.max_pool2d(x, 2, 2)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return torch.maximum(
        torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]),
        torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]))


@register_notrace_function
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
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


def is_avg_down_pool(pool: nn.Module) -> bool:
    """timm's ``avg_down`` shortcut pooling: ``nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)``."""
    return type(pool) is nn.AvgPool2d and pool.kernel_size in (2, (2, 2)) and pool.stride in (2, (2, 2)) \
        and pool.padding in (0, (0, 0)) and pool.ceil_mode and not pool.count_include_pad \
        and pool.divisor_override is None


def max_pool_3x3_s2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 3, 2, 1)`` (the ResNet stem's pool). In eval without autograd on the CPU with even sides,
    the maxima of strided views, rows then columns (same values). Elsewhere (and whenever gradients are needed:
    ties are routed differently) the stock kernel."""
    if torch.jit.is_scripting() or torch.is_grad_enabled() or x.device.type != 'cpu' or x.dim() != 4 \
            or x.shape[-2] % 2 or x.shape[-1] % 2 or x.shape[-2] < 2 or x.shape[-1] < 2:
        return F.max_pool2d(x, 3, 2, 1)
    # out[i] = max(x[2i - 1], x[2i], x[2i + 1]), x[-1] = padding
    odd = x[:, :, 1::2]
    rows = torch.maximum(x[:, :, 0::2], odd)
    rows[:, :, 1:] = torch.maximum(rows[:, :, 1:], odd[:, :, :-1])
    odd = rows[..., 1::2]
    out = torch.maximum(rows[..., 0::2], odd)
    out[..., 1:] = torch.maximum(out[..., 1:], odd[..., :-1])
    return out


@register_notrace_module  # branches on the device, mode and map size: a leaf for torch.fx
class StemMaxPool(nn.Module):
    """``nn.MaxPool2d(3, 2, 1)`` of a ResNet stem; see ``max_pool_3x3_s2``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool_3x3_s2(x)


def pool_2x2_nchw(x: torch.Tensor, pool_type: str) -> torch.Tensor:
    """2x2 stride-2 'max' or 'avg' pooling of (N, C, H, W)."""
    if pool_type == 'max':
        return max_pool_2x2(x)
    return F.avg_pool2d(x, 2, 2)


def pool_2x2_nhwc(x: torch.Tensor, pool_type: str) -> torch.Tensor:
    """2x2 stride-2 'max' or 'avg' pooling of (N, H, W, C) tokens (even H, W). The permuted view is a
    channels_last NCHW map, which the stock kernels pool in place of memory (no copy either way), forward and
    backward, faster than a reduction over the strided window dims of the token tensor."""
    x = x.permute(0, 3, 1, 2)
    x = F.max_pool2d(x, 2, 2) if pool_type == 'max' else F.avg_pool2d(x, 2, 2)
    return x.permute(0, 2, 3, 1)
