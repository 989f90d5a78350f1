"""ACmix on SAN's patchwise self-attention (Pan et al., CVPR 2022, Section 4.5, "Generalization to Other
Attention Modes"; the official repository released no SAN code).

The patchwise module's 1x1 projections phi(x), psi(x) (``rel`` channels each) and beta(x) (``4 * rel``
channels) are computed once and feed both paths:

    att:  y_att = sum_j alpha(x_R(i))_j (.) beta(x_j)                       SAN patchwise (unchanged)
    conv: y_conv = dep_conv( fc( maps ) )   maps: the m feature maps of each channel c < rel
          fc: 1x1 conv m -> k_c^2 per channel c (no bias), dep_conv: grouped k_c x k_c conv (groups rel,
          zero padding, no bias, init: shift kernels), as the official ACmix with rel in place of the head size
    out = rate1 * y_att + rate2 * y_conv                                     rate1 = rate2 = 0.5 at init

``conv_inputs`` picks the maps (chosen by us; the paper does not say): 'phi_psi_beta' (default: the
analogue of the official q, k, v: phi, psi and beta split into 4 maps of ``rel`` channels, m = 6) or
'beta' (the values only, m = 4). fc and dep_conv run as one grouped conv (fc folded into dep_conv's weight,
rate2 too), as in ``timm_attn.layers.ACmix``.
"""
from typing import List

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_module

from .acmix import ACmixConvPathMixin
from .san import PatchwiseSelfAttention

__all__ = ['PatchwiseSelfAttentionACmix', 'ACMIX_SAN_CONV_INPUTS']

ACMIX_SAN_CONV_INPUTS = ('phi_psi_beta', 'beta')


@register_notrace_module
class PatchwiseSelfAttentionACmix(ACmixConvPathMixin, PatchwiseSelfAttention):
    """SAN patchwise attention plus the ACmix convolution path on the same projections (module docstring).

    Args:
        *args, **kwargs: ``PatchwiseSelfAttention``'s (in_chs, rel_chs, out_chs, share_planes, kernel_size, stride,
            dilation, relation, recompute_weights, device, dtype); out_chs must be a multiple of rel_chs and the
            stride 1 (as every SAN block).
        kernel_conv: kernel of the convolution path (official ACmix 3; chosen by us for SAN).
        conv_inputs: 'phi_psi_beta' or 'beta' (chosen by us).
    """

    def __init__(self, *args, kernel_conv: int = 3, conv_inputs: str = 'phi_psi_beta', **kwargs):
        if conv_inputs not in ACMIX_SAN_CONV_INPUTS:
            raise ValueError(f'conv_inputs must be one of {ACMIX_SAN_CONV_INPUTS}, got {conv_inputs!r}')
        super().__init__(*args, **kwargs)
        rel_chs, out_chs = self.phi.out_channels, self.beta.out_channels
        if self.stride != 1:
            raise ValueError(f'PatchwiseSelfAttentionACmix supports stride 1 only (as SAN), got {self.stride}')
        if out_chs % rel_chs:
            raise ValueError(f'out_chs ({out_chs}) must be a multiple of rel_chs ({rel_chs})')
        self.rel_chs = rel_chs
        self.conv_inputs = conv_inputs
        self.num_maps = out_chs // rel_chs + (2 if conv_inputs == 'phi_psi_beta' else 0)
        self.init_conv_path(self.num_maps, rel_chs, out_chs, kernel_conv,
                            device=kwargs.get('device'), dtype=kwargs.get('dtype'))

    def extra_repr(self) -> str:
        return f'kernel_conv={self.kernel_conv}, conv_inputs={self.conv_inputs!r}'

    def conv_path(self, x1: torch.Tensor, x2: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """rate2 * dep_conv(fc(maps)) for phi(x), psi(x), beta(x): (N, out, H, W)."""
        n, _, h, w = v.shape
        maps: List[torch.Tensor] = [x1, x2, v] if self.conv_inputs == 'phi_psi_beta' else [v]
        # map j of channel c is channel j * rel + c of the concatenation; the grouped conv wants c * m + j
        x = torch.cat(maps, dim=1).view(n, self.num_maps, self.rel_chs, h, w).transpose(1, 2)
        x = x.reshape(n, self.num_maps * self.rel_chs, h, w)
        return F.conv2d(x, self.fused_conv_weight(x.dtype), None, 1, self.kernel_conv // 2, 1, self.rel_chs)

    def mix(self, y_att: torch.Tensor, y_conv: torch.Tensor) -> torch.Tensor:
        """rate1 * y_att + y_conv (rate2 is in y_conv)."""
        return torch.addcmul(y_conv, y_att, self.rate1.to(y_att.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            x1, x2, v = self.phi(x), self.psi(x), self.beta(x)
            return self.mix(self.aggregate(v, self._weights_scripted(x1, x2)), self.conv_path(x1, x2, v))
        return self._forward_eager(x)

    @torch.jit.unused
    def _weights_inference(self, x: torch.Tensor):
        return None  # the fused eval path computes its own phi / psi: the shared projections are used instead

    @torch.jit.unused
    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2, v = self.phi(x), self.psi(x), self.beta(x)
        if self.training and self.recompute_weights and torch.is_grad_enabled():
            w = self._weights_recomputed(x1, x2)
        else:
            w = self._weights(x1, x2, True)
        return self.mix(self.aggregate(v, w), self.conv_path(x1, x2, v))

    @torch.jit.unused
    def weights_values_conv(self, x: torch.Tensor, update_stats: bool = True):
        """(alpha, beta(x), conv path) layer by layer; for callers that recompute them in backward."""
        x1, x2, v = self.phi(x), self.psi(x), self.beta(x)
        return self._weights(x1, x2, update_stats), v, self.conv_path(x1, x2, v)
