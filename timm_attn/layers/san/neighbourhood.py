"""Geometry of the k x k reflection-padded neighbourhood shared by the SAN operators.

SAN (Zhao et al., CVPR 2020, https://github.com/hszhao/SAN) computes every operator over the
footprint R(i) of an output position i: a k x k window with dilation d, centred on input position
(h * s, w * s) for stride s, and reflection padding ``pad = (d * (k - 1) + 1) // 2`` at the border
(single bounce: index -1 reads 1, index H reads H - 2, exactly ``F.pad(mode='reflect')``).

For odd k that centre is the pixel the official CUDA kernels use, and the output size is
``(H - 1) // s + 1``. Reflection needs ``pad < H`` and ``pad < W``.
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F

__all__ = ['neighbourhood_padding', 'neighbourhood_output_size', 'reflect_pad', 'neighbour_slices', 'check_footprint']


def check_footprint(kernel_size: int, stride: int, dilation: int) -> None:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'kernel_size must be a positive odd number (the footprint is centred), got {kernel_size}')
    if stride < 1 or dilation < 1:
        raise ValueError(f'stride and dilation must be >= 1, got stride={stride}, dilation={dilation}')


def neighbourhood_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding of the official operators, ``(d * (k - 1) + 1) // 2`` (= d * (k - 1) / 2 for odd k)."""
    return (dilation * (kernel_size - 1) + 1) // 2


def neighbourhood_output_size(size: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> int:
    pad = neighbourhood_padding(kernel_size, dilation)
    return (size + 2 * pad - (dilation * (kernel_size - 1) + 1)) // stride + 1


def reflect_pad(x: torch.Tensor, kernel_size: int, dilation: int = 1) -> torch.Tensor:
    """Reflection-pad an (N, C, H, W) map for the footprint, with a clear error when it is too small."""
    pad = neighbourhood_padding(kernel_size, dilation)
    if pad == 0:
        return x
    h, w = x.shape[-2], x.shape[-1]
    if pad >= h or pad >= w:
        raise ValueError(
            f'feature map of {h}x{w} is too small for a {kernel_size}x{kernel_size} footprint with dilation '
            f'{dilation}: reflection padding of {pad} needs at least {pad + 1}x{pad + 1}')
    return F.pad(x, (pad, pad, pad, pad), mode='reflect')


def neighbour_slices(
        padded: torch.Tensor,
        kernel_size: int,
        stride: int,
        dilation: int,
        out_size: Tuple[int, int],
) -> List[torch.Tensor]:
    """Views of a padded map, one per footprint offset, in row-major (kh * k + kw) order.

    Slice ``kk`` holds, at output position (h, w), the padded input at
    (h * s + kh * d, w * s + kw * d): the neighbour kk of that position. No copy is made.
    """
    ho, wo = out_size
    views = []
    for kh in range(kernel_size):
        for kw in range(kernel_size):
            top, left = kh * dilation, kw * dilation
            views.append(padded[..., top:top + (ho - 1) * stride + 1:stride, left:left + (wo - 1) * stride + 1:stride])
    return views
