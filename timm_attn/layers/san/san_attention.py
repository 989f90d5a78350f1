"""SAN self-attention modules (the official ``SAM``), pairwise and patchwise.

Zhao, Jia, Koltun, "Exploring Self-attention for Image Recognition", CVPR 2020
(arXiv:2004.13621), official code https://github.com/hszhao/SAN (``model/san.py``, MIT).

    y_i = sum_{j in R(i)} alpha(x_i, x_j) (.) beta(x_j)          pairwise, Eq. (1)-(2)
    y_i = sum_{j in R(i)} alpha(x_R(i))_j (.) beta(x_j)          patchwise, Eq. (3)-(4)

with alpha = gamma(delta(...)), (.) the Hadamard product with weights shared by C_w = out / share_planes
interleaved channel groups (see ``aggregation``). Names follow the paper; the official state_dict
names are ``conv1 = phi``, ``conv2 = psi``, ``conv3 = beta``, ``conv_w = gamma``, ``conv_p = pos_proj``,
with ``gamma`` as ``conv_w.{0,2,3,5}`` = ``gamma.{norm1,conv1,norm2,conv2}``.
"""
from collections import OrderedDict
from typing import Optional, Tuple

import torch
from torch import nn

from timm.layers import register_notrace_module

from .._ops import PointwiseConv2d, batchnorm_affine, bn_relu_conv1x1, chunk_size, is_plain_batchnorm, \
    pointwise_conv, recompute_in_backward
from .._ops.caching import is_capturing
from .aggregation import aggregate_neighbours
from .neighbourhood import check_footprint, neighbour_slices, neighbourhood_output_size, reflect_pad
from .relation import gather_neighbours, pairwise_relation, \
    patchwise_relation, relation_channels

__all__ = ['PairwiseSelfAttention', 'PatchwiseSelfAttention', 'position_grid']


def position_grid(h: int, w: int, device: Optional[torch.device] = None, dtype: Optional[torch.dtype] = None):
    """(1, 2, H, W) coordinates in [-1, 1]: channel 0 varies along the width (x), channel 1 along the height (y)."""
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype).view(1, w).expand(h, w)
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype).view(h, 1).expand(h, w)
    return torch.stack([xs, ys], dim=0).unsqueeze(0)


def _mapping(in_chs: int, hidden_chs: int, out_chs: int, dd) -> nn.Sequential:
    """gamma: BN -> ReLU -> 1x1 conv (no bias) -> BN -> ReLU -> 1x1 conv (bias), applied per footprint offset."""
    return nn.Sequential(OrderedDict([
        ('norm1', nn.BatchNorm2d(in_chs, **dd)),
        ('act1', nn.ReLU(inplace=True)),
        ('conv1', PointwiseConv2d(in_chs, hidden_chs, bias=False, **dd)),
        ('norm2', nn.BatchNorm2d(hidden_chs, **dd)),
        ('act2', nn.ReLU(inplace=True)),
        ('conv2', PointwiseConv2d(hidden_chs, out_chs, **dd)),
    ]))


class _SelfAttention(nn.Module):
    """Projections and aggregation shared by the pairwise and patchwise modules."""

    def __init__(self, in_chs: int, rel_chs: int, out_chs: int, share_planes: int, kernel_size: int,
                 stride: int, dilation: int, recompute_weights: bool, dd):
        super().__init__()
        check_footprint(kernel_size, stride, dilation)
        if out_chs % share_planes != 0:
            raise ValueError(f'out_chs ({out_chs}) must be divisible by share_planes ({share_planes})')
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation
        self.weight_chs = out_chs // share_planes
        self.recompute_weights = recompute_weights
        self.inference_chunk_numel: Optional[int] = None  # None: the chunk-size policy of ``_ops.chunking``
        self.phi = PointwiseConv2d(in_chs, rel_chs, **dd)
        self.psi = PointwiseConv2d(in_chs, rel_chs, **dd)
        self.beta = PointwiseConv2d(in_chs, out_chs, **dd)

    @torch.jit.unused
    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """alpha for every output position and footprint offset, (N, C_w, k*k, Ho*Wo)."""
        if self._use_inference_path(x):
            w = self._weights_inference(x)
            if w is not None:
                return w
        x1, x2 = self.phi(x), self.psi(x)
        if self.training and self.recompute_weights and torch.is_grad_enabled() and not torch.jit.is_scripting():
            return self._weights_recomputed(x1, x2)
        return self._weights(x1, x2, True)

    @torch.jit.unused
    def _weights_recomputed(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Training without storing the (C', k*k, H*W) relation and gamma's activations: only phi(x),
        psi(x) and the weights are kept, the rest is recomputed in backward. The BatchNorm running
        statistics are updated once, by the first call; the recomputation uses the same batch
        statistics, so values and gradients are those of the plain path."""
        return recompute_in_backward(
            lambda update_stats, a, b: self._weights(a, b, update_stats), x1, x2,
            norms=(self.gamma.norm1, self.gamma.norm2))

    @torch.jit.unused
    def _weights(self, x1: torch.Tensor, x2: torch.Tensor, update_stats: bool) -> torch.Tensor:
        """Weights from the projections phi(x), psi(x) (layer by layer, any relation)."""
        raise NotImplementedError

    @torch.jit.unused
    def _weights_inference(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """Fused eval path for the official relation; None where there is none."""
        return None

    @torch.jit.unused
    def _gamma(self, rel: torch.Tensor, update_stats: bool) -> torch.Tensor:
        """gamma; in training each BN -> ReLU -> conv stores only its input (``bn_relu_conv1x1``), and with
        update_stats=False (a recomputation) the running statistics are left as they are."""
        g = self.gamma
        if not self.training:
            return g(rel)
        return bn_relu_conv1x1(bn_relu_conv1x1(rel, g.norm1, g.conv1, update_stats), g.norm2, g.conv2, update_stats)

    @torch.jit.unused
    def _temporaries_per_position(self) -> int:
        """Elements of the largest temporary of ``attention_weights`` per input position."""
        raise NotImplementedError

    @torch.jit.unused
    def _use_inference_path(self, x: torch.Tensor) -> bool:
        """Eval mode without autograd: BatchNorms folded into the adjacent 1x1 convs, relation written
        once into its final buffer. Same function as the layer-by-layer path, up to float rounding. Only with
        plain BatchNorms (``is_plain_batchnorm``)."""
        return not self.training and not torch.is_grad_enabled() and not torch.jit.is_scripting() \
            and is_plain_batchnorm(self.gamma.norm1) and is_plain_batchnorm(self.gamma.norm2)

    @torch.jit.unused
    def _mapping_tail(self, rel: torch.Tensor) -> torch.Tensor:
        """gamma after its first BN + ReLU, with norm2 folded into conv1 (eval only)."""
        g = self.gamma
        scale, shift = batchnorm_affine(g.norm2)
        w = pointwise_conv(rel, g.conv1.weight * scale.view(-1, 1, 1, 1), shift).relu_()
        return pointwise_conv(w, g.conv2.weight, g.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return self.aggregate(self.beta(x), self._weights_scripted(self.phi(x), self.psi(x)))
        return self._forward_eager(x)

    @torch.jit.unused
    def _forward_eager(self, x: torch.Tensor) -> torch.Tensor:
        if self._use_inference_path(x) and x.shape[0] > 1 and not torch.compiler.is_compiling():
            # Without autograd, images are independent (BN is in eval mode): run the batch in chunks of
            # (C', k*k, H*W) temporaries (``_ops.chunking``; not under torch.compile)
            chunk = chunk_size(
                self._temporaries_per_position() * x.shape[-2] * x.shape[-1], x.device, self.inference_chunk_numel)
            if chunk < x.shape[0]:
                return torch.cat([self._attend(xc) for xc in x.split(chunk)], dim=0)
        return self._attend(x)

    def _weights_scripted(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """The layer-by-layer weights in a form TorchScript compiles."""
        raise NotImplementedError

    @torch.jit.unused
    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        w = self.attention_weights(x)  # (N, C_w, k*k, Ho*Wo)
        return self.aggregate(self.beta(x), w)

    def aggregate(self, values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum_j alpha_ij (.) beta(x_j) for values = beta(x)."""
        return aggregate_neighbours(values, weights, self.kernel_size, self.stride, self.dilation)

    @torch.jit.unused
    def weights_and_values(self, x: torch.Tensor, update_stats: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
        """(alpha, beta(x)) computed layer by layer; for callers that recompute them in backward."""
        return self._weights(self.phi(x), self.psi(x), update_stats), self.beta(x)


@register_notrace_module
class PairwiseSelfAttention(_SelfAttention):
    """Pairwise SAN attention: alpha(x_i, x_j) = softmax_j gamma([delta(phi(x_i), psi(x_j)), p_i - p_j]).

    The softmax over the k*k footprint is the official one (``nn.Softmax(dim=-2)``). The position
    term p = pos_proj(grid) is a 1x1 conv of the [-1, 1] coordinates; its bias cancels in p_i - p_j
    but is part of the official state_dict. Like the official code, the relation tensor of
    (rel + 2) x k*k x H*W values goes through gamma as an image, so its BatchNorms normalise over
    batch, footprint and positions together.

    Args:
        in_chs: input channels.
        rel_chs: channels of phi / psi (official: planes // 16).
        out_chs: channels of beta and of the output (official: planes // 4).
        share_planes: output channels per attention weight channel (official 8).
        kernel_size: footprint k (odd).
        stride: output stride (SAN itself uses 1).
        dilation: footprint dilation.
        relation: one of ``PAIRWISE_RELATIONS``; official 'subtraction'.
        pos_embed: concatenate the relative position p_i - p_j (official True).
        recompute_weights: in training, keep only the weights and recompute the relation and gamma's
            activations in backward (same values and gradients, a fraction of the memory).
    """

    def __init__(
            self,
            in_chs: int,
            rel_chs: int,
            out_chs: int,
            share_planes: int = 8,
            kernel_size: int = 7,
            stride: int = 1,
            dilation: int = 1,
            relation: str = 'subtraction',
            pos_embed: bool = True,
            recompute_weights: bool = True,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__(in_chs, rel_chs, out_chs, share_planes, kernel_size, stride, dilation, recompute_weights, dd)
        gamma_in = relation_channels('pairwise', relation, rel_chs, kernel_size) + (2 if pos_embed else 0)
        self.relation = relation
        self.pos_embed = pos_embed
        self.gamma = _mapping(gamma_in, rel_chs, self.weight_chs, dd)
        self.pos_proj = PointwiseConv2d(2, 2, **dd) if pos_embed else None

    @torch.jit.unused
    def _temporaries_per_position(self) -> int:
        return self.gamma.norm1.num_features * self.kernel_size ** 2  # the (C', k*k) relation

    def _position_map(self, x: torch.Tensor) -> torch.Tensor:
        """p = pos_proj(grid), (1, 2, H, W) for x's H, W."""
        assert self.pos_proj is not None
        return self.pos_proj(position_grid(x.shape[-2], x.shape[-1], x.device, self.pos_proj.weight.dtype))

    def _position_relation(self, x: torch.Tensor) -> torch.Tensor:
        """p_i - p_j, (1, 2, k*k, L)."""
        p = self._position_map(x)
        return pairwise_relation(p, p, self.kernel_size, self.stride, self.dilation, 'subtraction')

    @torch.jit.unused
    def _weights(self, x1: torch.Tensor, x2: torch.Tensor, update_stats: bool) -> torch.Tensor:
        k, s, d = self.kernel_size, self.stride, self.dilation
        if self.pos_proj is None:
            rel = pairwise_relation(x1, x2, k, s, d, self.relation)  # (N, C', k*k, L)
        elif self.relation == 'subtraction':
            # [x1_i - x2_j, p_i - p_j] = [x1, p]_i - [x2, p]_j: one relation, no concatenated copy
            p = self._position_map(x1).to(x1.dtype).expand(x1.shape[0], -1, -1, -1)
            rel = pairwise_relation(torch.cat([x1, p], dim=1), torch.cat([x2, p], dim=1), k, s, d, 'subtraction')
        else:
            rel = pairwise_relation(x1, x2, k, s, d, self.relation)
            p = self._position_relation(x1)
            rel = torch.cat([rel, p.to(rel.dtype).expand(rel.shape[0], -1, -1, -1)], dim=1)
        return self._gamma(rel, update_stats).softmax(dim=2)

    def _weights_scripted(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        rel = pairwise_relation(x1, x2, self.kernel_size, self.stride, self.dilation, self.relation)
        if self.pos_proj is not None:
            p = self.pos_proj(position_grid(x1.shape[-2], x1.shape[-1], x1.device, self.pos_proj.weight.dtype))
            p = pairwise_relation(p, p, self.kernel_size, self.stride, self.dilation, 'subtraction')
            rel = torch.cat([rel, p.to(rel.dtype).expand(rel.shape[0], -1, -1, -1)], dim=1)
        return self.gamma(rel).softmax(dim=2)

    @torch.jit.unused
    def _weights_inference(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        if self.relation != 'subtraction' or is_capturing():  # out= into strided slices: eager only
            return None
        """Eval path of the official relation. norm1 is affine, so
        norm1(phi(x)_i - psi(x)_j) = (a * phi(x) + b)_i - (a * psi(x))_j: it folds into phi and psi, and
        each offset's difference is written straight into the (N, rel + 2, k*k, Ho, Wo) buffer."""
        k, s, d = self.kernel_size, self.stride, self.dilation
        rel_chs = self.phi.out_channels
        scale, shift = batchnorm_affine(self.gamma.norm1)
        a, b = scale[:rel_chs], shift[:rel_chs]
        x1 = pointwise_conv(x, self.phi.weight * a.view(-1, 1, 1, 1), self.phi.bias * a + b)
        x2 = pointwise_conv(x, self.psi.weight * a.view(-1, 1, 1, 1), self.psi.bias * a)
        ho = neighbourhood_output_size(x.shape[-2], k, s, d)
        wo = neighbourhood_output_size(x.shape[-1], k, s, d)
        n = x.shape[0]
        rel = x1.new_empty(n, self.gamma.norm1.num_features, k * k, ho, wo)
        xi = x1[:, :, ::s, ::s] if s > 1 else x1
        for kk, xj in enumerate(neighbour_slices(reflect_pad(x2, k, d), k, s, d, (ho, wo))):
            torch.sub(xi, xj, out=rel[:, :rel_chs, kk])
        if self.pos_proj is not None:
            p = self._position_relation(x).view(1, 2, k * k, ho, wo)
            rel[:, rel_chs:] = p * scale[rel_chs:].view(1, 2, 1, 1, 1) + shift[rel_chs:].view(1, 2, 1, 1, 1)
        rel = rel.view(n, -1, k * k, ho * wo).relu_()
        return self._mapping_tail(rel).softmax(dim=2)


@register_notrace_module
class PatchwiseSelfAttention(_SelfAttention):
    """Patchwise SAN attention: alpha(x_R(i)) = gamma(delta(x_R(i))), one weight per footprint offset.

    gamma ends in a 1x1 conv to k*k * C_w channels, read as (C_w, k*k) (official channel order
    ``c_w * k*k + kk``). There is no softmax and no position encoding in the patchwise path (as in
    the official code: the concatenation keeps each neighbour's position by its channel index).

    Args:
        in_chs, rel_chs, out_chs, share_planes, kernel_size, stride, dilation: as ``PairwiseSelfAttention``.
        relation: one of ``PATCHWISE_RELATIONS``; official 'concatenation'.
        recompute_weights: as ``PairwiseSelfAttention``.
    """

    def __init__(
            self,
            in_chs: int,
            rel_chs: int,
            out_chs: int,
            share_planes: int = 8,
            kernel_size: int = 7,
            stride: int = 1,
            dilation: int = 1,
            relation: str = 'concatenation',
            recompute_weights: bool = True,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__(in_chs, rel_chs, out_chs, share_planes, kernel_size, stride, dilation, recompute_weights, dd)
        gamma_in = relation_channels('patchwise', relation, rel_chs, kernel_size)  # validates the relation
        self.relation = relation
        self.gamma = _mapping(gamma_in, self.weight_chs, kernel_size * kernel_size * self.weight_chs, dd)

    @torch.jit.unused
    def _weights(self, x1: torch.Tensor, x2: torch.Tensor, update_stats: bool) -> torch.Tensor:
        k, s, d = self.kernel_size, self.stride, self.dilation
        rel = patchwise_relation(x1, x2, k, s, d, self.relation)  # (N, C', 1, L)
        w = self._gamma(rel, update_stats)  # (N, C_w * k*k, 1, L)
        return w.view(w.shape[0], self.weight_chs, k * k, w.shape[-1])

    def _weights_scripted(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        w = self.gamma(patchwise_relation(x1, x2, k, self.stride, self.dilation, self.relation))
        return w.view(w.shape[0], self.weight_chs, k * k, w.shape[-1])

    @torch.jit.unused
    def _weights_inference(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        if self.relation != 'concatenation':
            return None
        w = self._concatenation_weights_inference(x)
        return w.view(w.shape[0], self.weight_chs, self.kernel_size ** 2, w.shape[-1])

    @torch.jit.unused
    def _temporaries_per_position(self) -> int:
        return max(self.gamma.norm1.num_features, self.gamma.conv2.out_channels)  # relation, C_w * k*k weights

    @torch.jit.unused
    def _concatenation_weights_inference(self, x: torch.Tensor) -> torch.Tensor:
        """Eval path of the official relation without the concatenated copy: gamma.conv1 applied to
        [phi(x_i), unfold(psi(x))] is split into its two column blocks; norm1's part on phi folds into
        phi, its part on the unfold is applied in place."""
        k, s, d = self.kernel_size, self.stride, self.dilation
        g = self.gamma
        rel_chs = self.phi.out_channels
        scale, shift = batchnorm_affine(g.norm1)
        a, b = scale[:rel_chs], shift[:rel_chs]
        xi = pointwise_conv(x, self.phi.weight * a.view(-1, 1, 1, 1), self.phi.bias * a + b)
        xi = (xi[:, :, ::s, ::s] if s > 1 else xi).relu_()  # (N, rel, Ho, Wo)
        n, _, ho, wo = xi.shape
        xj = gather_neighbours(self.psi(x), k, s, d).view(n, -1, 1, ho * wo)  # (N, rel * k*k, 1, L)
        xj = torch.addcmul(shift[rel_chs:].view(1, -1, 1, 1), xj, scale[rel_chs:].view(1, -1, 1, 1), out=xj).relu_()
        scale2, shift2 = batchnorm_affine(g.norm2)
        w1 = g.conv1.weight.flatten(1) * scale2.view(-1, 1)  # (C_w, rel * (k*k + 1)), norm2 folded in
        h = pointwise_conv(xj, w1[:, rel_chs:], shift2)
        h += pointwise_conv(xi.reshape(n, rel_chs, 1, ho * wo), w1[:, :rel_chs])
        return pointwise_conv(h.relu_(), g.conv2.weight, g.conv2.bias)
