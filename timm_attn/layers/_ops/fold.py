"""BatchNorm folding for eval paths: a BN in eval mode is a per-channel affine map, folded into the conv before it.

    bn(conv(x)) = (W x + b) * scale + shift = (W * scale) x + (b * scale + shift)
    scale = gamma / sqrt(running_var + eps),  shift = beta - running_mean * scale

``pointwise_bn_relu_inference`` runs a folded 1x1 conv -> BN -> ReLU over the batch in chunks, so a large
full-resolution map is never allocated for the whole batch. ``ConvBnFoldCache`` keeps the folded weights of a
block between calls and rebuilds them when a source tensor changes, so an eval forward does not refold on every
call.
"""
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .batchnorm import is_plain_batchnorm
from .chunking import chunk_size
from .pointwise import pointwise_conv

__all__ = ['batchnorm_affine', 'is_foldable_bn', 'is_foldable_shortcut', 'fold_conv_bn', 'ConvBnFoldCache',
           'pointwise_bn_relu_inference']


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



def is_foldable_bn(bn: nn.Module) -> bool:
    """A plain BatchNorm (``is_plain_batchnorm``) with running statistics (an affine map in eval mode)."""
    return is_plain_batchnorm(bn) and bn.running_var is not None and bn.running_mean is not None


def is_foldable_shortcut(down: nn.Module) -> bool:
    """timm's ``downsample_avg`` / ``downsample_conv`` with a 1x1 stride-1 conv: [pool,] conv, BatchNorm."""
    if not isinstance(down, nn.Sequential) or len(down) not in (2, 3) or not is_foldable_bn(down[-1]):
        return False
    conv = down[-2]
    if len(down) == 3 and not isinstance(down[0], (nn.Identity, nn.AvgPool2d)):
        return False
    return type(conv) is nn.Conv2d and conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.groups == 1 \
        and conv.padding == (0, 0)


def fold_conv_bn(pairs: Sequence[Tuple[nn.Conv2d, nn.BatchNorm2d]]) -> List[torch.Tensor]:
    """[w_0, b_0, w_1, b_1, ...]: each 1x1 conv with its BatchNorm folded in, as a detached (out, in) matrix and
    a bias."""
    out: List[torch.Tensor] = []
    for conv, bn in pairs:
        scale, shift = batchnorm_affine(bn)
        weight = conv.weight.flatten(1) * scale.view(-1, 1)
        if conv.bias is not None:
            shift = shift + conv.bias * scale
        out += [weight.detach(), shift.detach()]
    return out


class ConvBnFoldCache:
    """``fold_conv_bn(pairs)``, cached: rebuilt when any source tensor changes (its storage or its version
    counter: optimizer steps, load_state_dict, .to()). Not a module: nothing of it is in a state_dict."""

    def __init__(self):
        self._key: Optional[Tuple[Any, ...]] = None
        self._folded: List[torch.Tensor] = []

    def __call__(self, pairs: Sequence[Tuple[nn.Conv2d, nn.BatchNorm2d]]) -> List[torch.Tensor]:
        sources = [t for conv, bn in pairs for t in (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
                   if t is not None]
        if any(t.is_inference() for t in sources):  # no version counter: no cache
            return fold_conv_bn(pairs)
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in sources)
        if self._key != key:
            self._key, self._folded = key, fold_conv_bn(pairs)
        return self._folded


def pointwise_bn_relu_inference(
        x: torch.Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d, post: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """``post(relu(bn(conv(x))))`` for a 1x1 ``conv`` in eval mode without autograd: the BN folded into the conv,
    the batch in chunks of the chunk-size policy (``chunking``), each chunk's output reduced by ``post`` (e.g. a
    pooling) before the next chunk runs."""
    scale, shift = batchnorm_affine(bn)
    weight = conv.weight * scale.view(-1, 1, 1, 1)
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    if torch.compiler.is_compiling():  # the compiled graph plans its own buffers
        return post(pointwise_conv(x, weight, shift).relu_())
    chunk = chunk_size(weight.shape[0] * x.shape[-2] * x.shape[-1], x.device)
    return torch.cat([post(pointwise_conv(xc, weight, shift).relu_()) for xc in x.split(chunk)])
