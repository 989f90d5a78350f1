"""Relation functions delta of SAN (Zhao et al., CVPR 2020, Sec. 3.1 and 3.2).

Pairwise, for i the output position and j in its footprint R(i) (Eq. 2, Table 4 of the paper):

    summation       phi(x_i) + psi(x_j)          C channels
    subtraction     phi(x_i) - psi(x_j)          C channels   (official SAN)
    concatenation   [phi(x_i), psi(x_j)]         2C channels
    hadamard        phi(x_i) * psi(x_j)          C channels
    dot             phi(x_i)^T psi(x_j)          1 channel

returned as (N, C', k*k, Ho*Wo), the layout of the official ``Subtraction2`` op.

Patchwise, over the whole footprint at once (Eq. 4, Table 5):

    star            [phi(x_i)^T psi(x_j)]_{j in R(i)}            k*k channels
    clique          [phi(x_j)^T psi(x_k)]_{j, k in R(i)}          k^4 channels
    concatenation   [phi(x_i), psi(x_j) for j in R(i)]           C * (k*k + 1) channels (official SAN)

returned as (N, C', 1, Ho*Wo). For concatenation the channel order is the official one: the C
channels of phi(x_i) first, then psi's channel-major unfold (index ``C + c * k*k + kk``).

phi(x_i) is taken at the footprint centre (h * s, w * s); neighbours are read from the reflection
padded map (see ``neighbourhood``). Only the relation inputs (C = planes / 16 channels in SAN) are
unfolded here, never the value tensor.
"""
import torch
import torch.fx
import torch.nn.functional as F

from timm.layers import register_notrace_function

from .neighbourhood import check_footprint, reflect_pad

__all__ = [
    'PAIRWISE_RELATIONS', 'PATCHWISE_RELATIONS', 'gather_neighbours', 'pairwise_relation', 'patchwise_relation',
    'relation_channels',
]

PAIRWISE_RELATIONS = ('summation', 'subtraction', 'concatenation', 'hadamard', 'dot')
PATCHWISE_RELATIONS = ('star', 'clique', 'concatenation')


def relation_channels(attn_type: str, relation: str, channels: int, kernel_size: int) -> int:
    """Number of channels the relation function outputs for ``channels`` input channels."""
    kk = kernel_size * kernel_size
    table = {
        ('pairwise', 'summation'): channels,
        ('pairwise', 'subtraction'): channels,
        ('pairwise', 'concatenation'): 2 * channels,
        ('pairwise', 'hadamard'): channels,
        ('pairwise', 'dot'): 1,
        ('patchwise', 'star'): kk,
        ('patchwise', 'clique'): kk * kk,
        ('patchwise', 'concatenation'): channels * (kk + 1),
    }
    if (attn_type, relation) not in table:
        valid = PAIRWISE_RELATIONS if attn_type == 'pairwise' else PATCHWISE_RELATIONS
        raise ValueError(f'unknown {attn_type} relation {relation}, expected one of {valid}')
    return table[(attn_type, relation)]


def _centre(x: torch.Tensor, stride: int) -> torch.Tensor:
    """phi(x_i) at the footprint centres, (N, C, 1, Ho*Wo)."""
    if stride > 1:
        x = x[:, :, ::stride, ::stride]
    return x.reshape(x.shape[0], x.shape[1], 1, -1)


def gather_neighbours(x: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, k*k, Ho*Wo): every position's reflection-padded footprint."""
    check_footprint(kernel_size, stride, dilation)
    n, c = x.shape[0], x.shape[1]
    cols = F.unfold(reflect_pad(x, kernel_size, dilation), kernel_size, dilation=dilation, stride=stride)
    return cols.view(n, c, kernel_size * kernel_size, cols.shape[-1])


def _check_pair(x1: torch.Tensor, x2: torch.Tensor):
    if x1.dim() != 4 or x1.shape != x2.shape:
        raise ValueError(f'relation inputs must be two (N, C, H, W) tensors of one shape, got {list(x1.shape)} '
                         f'and {list(x2.shape)}')


@register_notrace_function
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
def pairwise_relation(
        x1: torch.Tensor,
        x2: torch.Tensor,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        relation: str = 'subtraction',
) -> torch.Tensor:
    """delta(x_i, x_j) for every j in R(i): (N, C, H, W) x 2 -> (N, C', k*k, Ho*Wo)."""
    _check_pair(x1, x2)
    if relation not in ('summation', 'subtraction', 'concatenation', 'hadamard', 'dot'):
        raise ValueError('unknown pairwise relation ' + relation +
                         ', expected summation, subtraction, concatenation, hadamard or dot')
    xi = _centre(x1, stride)  # (N, C, 1, L)
    xj = gather_neighbours(x2, kernel_size, stride, dilation)  # (N, C, k*k, L)
    if relation == 'subtraction':
        return xi - xj
    if relation == 'summation':
        return xi + xj
    if relation == 'hadamard':
        return xi * xj
    if relation == 'dot':
        return (xi * xj).sum(dim=1, keepdim=True)
    return torch.cat([xi.expand_as(xj), xj], dim=1)  # concatenation


@register_notrace_function
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
def patchwise_relation(
        x1: torch.Tensor,
        x2: torch.Tensor,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        relation: str = 'concatenation',
) -> torch.Tensor:
    """delta(x_R(i)) for every output position: (N, C, H, W) x 2 -> (N, C', 1, Ho*Wo)."""
    _check_pair(x1, x2)
    if relation not in ('star', 'clique', 'concatenation'):
        raise ValueError('unknown patchwise relation ' + relation + ', expected star, clique or concatenation')
    n = x1.shape[0]
    xj = gather_neighbours(x2, kernel_size, stride, dilation)  # (N, C, k*k, L)
    if relation == 'concatenation':
        xi = _centre(x1, stride)
        return torch.cat([xi, xj.reshape(n, -1, 1, xj.shape[-1])], dim=1)  # official order: x_i, then c*k*k + kk
    if relation == 'star':
        xi = _centre(x1, stride)
        return (xi * xj).sum(dim=1).unsqueeze(2)  # (N, k*k, 1, L)
    xk = gather_neighbours(x1, kernel_size, stride, dilation)  # clique: phi over the footprint too
    return torch.einsum('ncjl,nckl->njkl', xk, xj).reshape(n, -1, 1, xj.shape[-1])  # (N, k^4, 1, L)

