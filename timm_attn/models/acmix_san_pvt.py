"""ACmix on SAN (patchwise attention) and on PVT v1 (global attention with spatial reduction).

Paper: "On the Integration of Self-Attention and Convolution", Pan et al., CVPR 2022,
https://arxiv.org/abs/2111.14556, Section 4.5 "Generalization to Other Attention Modes" (official README table:
ACmix SAN-10 / 15 / 19 12.1 / 16.6 / 21.2M, 1.9 / 2.7 / 3.4G; ACmix PVT-T / S 13 / 25M, 2.0 / 3.9G). The
official repository released only the ResNet and Swin code; the choices the paper leaves open are constructor
arguments, documented in docs/acmix.md ("stated by the paper" / "chosen by us").

ACmix-SAN (``acmix_san10/15/19``): the SAN patchwise networks (``timm_attn.models.san``) whose blocks use
``PatchwiseSelfAttentionACmix``: phi / psi / beta feed SAN's patchwise attention and an ACmix conv path
(fc + grouped shift-initialised 3x3 dep_conv), ``rate1 * att + rate2 * conv``.

ACmix-PVT (``acmix_pvt_tiny/small``): PVT v1 (``timm_attn.models.pvt``) whose spatial-reduction attention adds
an ACmix conv path on the full-resolution projections: ``rate1 * proj(SRA) + rate2 * dep_conv(fc(maps))``, with
the maps the query projection (``conv_inputs='q'``, default) or q and the shared kv projection applied to the
un-reduced tokens (``'qkv'``). Default: in the three stages with spatial reduction (``conv_stages``).
"""
from dataclasses import dataclass
from typing import Any, Dict, Sequence, Tuple

import torch
import torch.nn.functional as F

from timm.layers import register_notrace_module
from timm.models import generate_default_cfgs, register_model

from ..card_data import acmix_san_pvt as card
from ..layers._ops import batch_norm_train, recompute_in_backward
from ..layers.acmix import ACmixConvPathMixin
from ..layers.acmix_san import PatchwiseSelfAttentionACmix
from . import pvt as _pvt, san as _san
from ._builder import base_cfg, build_model, cfg_kwargs
from .pvt import PyramidVisionTransformer, SpatialReductionAttention
from .san import SAN, SelfAttentionBottleneck

__all__ = ['ACmixSAN', 'ACmixSANCfg', 'ACmixSelfAttentionBottleneck', 'ACmixPvt', 'ACmixPvtCfg',
           'SpatialReductionAttentionACmix', 'ACMIX_PVT_CONV_INPUTS']

ACMIX_PVT_CONV_INPUTS = ('q', 'qkv')


@dataclass(frozen=True)
class ACmixSANCfg:
    """One ACmix-SAN: blocks per stage of the SAN patchwise network."""
    layers: Tuple[int, ...]


@dataclass(frozen=True)
class ACmixPvtCfg:
    """One ACmix-PVT: blocks per stage of PVT v1 (the other PVT arguments as ``PvtCfg``)."""
    depths: Tuple[int, int, int, int]


model_cfgs = dict(
    acmix_san10=ACmixSANCfg(layers=_san.model_cfgs['san10_patchwise'].layers),
    acmix_san15=ACmixSANCfg(layers=_san.model_cfgs['san15_patchwise'].layers),
    acmix_san19=ACmixSANCfg(layers=_san.model_cfgs['san19_patchwise'].layers),
    acmix_pvt_tiny=ACmixPvtCfg(depths=_pvt.model_cfgs['pvt_tiny'].depths),
    acmix_pvt_small=ACmixPvtCfg(depths=_pvt.model_cfgs['pvt_small'].depths),
)


class ACmixSelfAttentionBottleneck(SelfAttentionBottleneck):
    """SAN's pre-activation bottleneck with ``PatchwiseSelfAttentionACmix`` (patchwise only); ``**kwargs`` are
    ``SelfAttentionBottleneck``'s, kernel_conv / conv_inputs the conv path's."""

    def __init__(self, dim: int, kernel_conv: int = 3, conv_inputs: str = 'phi_psi_beta', **kwargs):
        if kwargs.get('attn_type', 'patchwise') != 'patchwise':
            raise ValueError(f"ACmix-SAN has patchwise attention only (paper Sec. 4.5), got {kwargs['attn_type']!r}")
        super().__init__(dim, **kwargs)
        a = self.attn
        self.attn = PatchwiseSelfAttentionACmix(
            dim, a.phi.out_channels, a.beta.out_channels, a.beta.out_channels // a.weight_chs, a.kernel_size,
            dilation=a.dilation, relation=a.relation, recompute_weights=False, kernel_conv=kernel_conv,
            conv_inputs=conv_inputs, device=kwargs.get('device'), dtype=kwargs.get('dtype'))

    @torch.jit.unused
    def _attention_recomputed(self, x: torch.Tensor) -> torch.Tensor:
        """As SAN's: only the block input, the weights, beta(.) and the conv path are kept for backward."""
        attn = self.attn

        def weights_values_conv(update_stats: bool, x: torch.Tensor):
            return attn.weights_values_conv(batch_norm_train(self.norm1, x, update_stats).relu_(), update_stats)
        w, v, conv = recompute_in_backward(weights_values_conv, x)
        return attn.mix(attn.aggregate(v, w), conv)


class ACmixSAN(SAN):
    """SAN (patchwise) with ACmix blocks.

    Args:
        layers: blocks per stage (san10 (2, 1, 2, 4, 1), san15 (3, 2, 3, 5, 2), san19 (3, 3, 4, 6, 3)).
        kernel_conv: conv-path kernel (3: the official ACmix value; chosen by us for SAN).
        conv_inputs: the projections feeding the conv path, 'phi_psi_beta' or 'beta' (chosen by us).
        **kwargs: ``SAN`` arguments (kernel_sizes, widths, share_planes, num_classes, drop_path_rate, ...).
    """

    def __init__(
            self,
            layers: Sequence[int] = (3, 3, 4, 6, 3),
            kernel_conv: int = 3,
            conv_inputs: str = 'phi_psi_beta',
            **kwargs,
    ):
        super().__init__(
            layers, block_layer=ACmixSelfAttentionBottleneck,
            block_kwargs=dict(kernel_conv=kernel_conv, conv_inputs=conv_inputs), **kwargs)


@register_notrace_module  # full-map conv path next to the token attention: a leaf for torch.fx
class SpatialReductionAttentionACmix(ACmixConvPathMixin, SpatialReductionAttention):
    """PVT's spatial-reduction attention plus an ACmix conv path on full-resolution projections.

    ``rate1 * proj(attention) + rate2 * dep_conv(fc(maps))`` then proj_drop (as the official ACmix-Swin),
    maps: the m = heads (``'q'``) or 3 * heads (``'qkv'``: q and ``kv`` applied to the un-reduced tokens) maps
    of each channel c < head_dim; fc: m -> k^2 (no bias), dep_conv grouped by channel (shift init), zero
    padding. A prefix token (PVT's class token) has no grid position: its conv-path output is 0.

    Args:
        dim, num_heads, *args, **kwargs: ``SpatialReductionAttention``'s (sr_ratio, qkv_bias, attn_drop, proj_drop,
            device, dtype).
        kernel_conv: conv-path kernel (official ACmix 3).
        conv_inputs: 'q' or 'qkv' (chosen by us).
    """

    def __init__(self, dim: int, num_heads: int, *args, kernel_conv: int = 3, conv_inputs: str = 'q', **kwargs):
        if conv_inputs not in ACMIX_PVT_CONV_INPUTS:
            raise ValueError(f'conv_inputs must be one of {ACMIX_PVT_CONV_INPUTS}, got {conv_inputs!r}')
        super().__init__(dim, num_heads, *args, **kwargs)
        self.conv_inputs = conv_inputs
        self.num_maps = num_heads * (3 if conv_inputs == 'qkv' else 1)
        self.init_conv_path(self.num_maps, self.head_dim, dim, kernel_conv,
                            device=kwargs.get('device'), dtype=kwargs.get('dtype'))

    def conv_path(self, q: torch.Tensor, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """rate2 * dep_conv(fc(maps)) as tokens (B, N, C) for q = self.q(x) and the attention input x."""
        B, N, C = q.shape
        prefix = N - h * w
        maps = q[:, prefix:]
        if self.conv_inputs == 'qkv':
            maps = torch.cat([maps, self.kv(x[:, prefix:])], dim=-1)  # channel t * C + head * d + c
        # (B, H*W, m, d) -> (B, d * m, H, W): the grouped conv's channel c * m + j
        maps = maps.reshape(B, h, w, self.num_maps, self.head_dim).permute(0, 4, 3, 1, 2)
        maps = maps.reshape(B, self.head_dim * self.num_maps, h, w)
        out = F.conv2d(maps, self.fused_conv_weight(maps.dtype), None, 1, self.kernel_conv // 2, 1, self.head_dim)
        out = out.flatten(2).transpose(1, 2)  # (B, H*W, C)
        if prefix > 0:
            out = torch.cat([out.new_zeros(B, prefix, C), out], dim=1)
        return out

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        q = self.q(x)
        y = self.proj(self.attend(q, x, h, w))
        return self.proj_drop(torch.addcmul(self.conv_path(q, x, h, w), y, self.rate1.to(y.dtype)))


class ACmixPvt(PyramidVisionTransformer):
    """PVT v1 whose attention in the ``conv_stages`` is ``SpatialReductionAttentionACmix``.

    Args:
        depths: blocks per stage (tiny (2, 2, 2, 2), small (3, 4, 6, 3)).
        kernel_conv: conv-path kernel (3, the official ACmix value).
        conv_inputs: 'q' (default) or 'qkv' (chosen by us; see ``SpatialReductionAttentionACmix``).
        conv_stages: per stage, whether its blocks get the conv path (default: the three stages with spatial
            reduction; chosen by us).
        **kwargs: ``PyramidVisionTransformer`` arguments.
    """

    def __init__(
            self,
            depths: Tuple[int, ...] = (2, 2, 2, 2),
            kernel_conv: int = 3,
            conv_inputs: str = 'q',
            conv_stages: Sequence[bool] = (True, True, True, False),
            device=None,
            dtype=None,
            **kwargs,
    ):
        super().__init__(depths=depths, device=device, dtype=dtype, **kwargs)
        if len(conv_stages) != len(self.stages):
            raise ValueError(f'conv_stages needs one value per stage ({len(self.stages)}), got {conv_stages!r}')
        self.conv_stages = tuple(bool(c) for c in conv_stages)
        for stage, use in zip(self.stages, self.conv_stages):
            if not use:
                continue
            for block in stage.blocks:
                old = block.attn
                block.attn = SpatialReductionAttentionACmix(
                    old.q.in_features, old.num_heads, 1 if old.sr is None else old.sr.stride[0],
                    qkv_bias=old.q.bias is not None, attn_drop=old.attn_drop.p, proj_drop=old.proj_drop.p,
                    kernel_conv=kernel_conv, conv_inputs=conv_inputs, device=device, dtype=dtype)
        self.init_weights()  # the official init for the new attention modules' Linear layers


def _create_acmix_san(variant: str, pretrained: bool = False, **kwargs) -> ACmixSAN:
    return build_model(
        ACmixSAN, variant, pretrained,
        feature_cfg=dict(out_indices=(0, 1, 2, 3, 4), flatten_sequential=True),
        **cfg_kwargs(model_cfgs[variant], kwargs),
    )


def _create_acmix_pvt(variant: str, pretrained: bool = False, **kwargs) -> ACmixPvt:
    return build_model(
        ACmixPvt, variant, pretrained,
        feature_cfg=dict(feature_cls='getter', out_indices=(0, 1, 2, 3)),
        **cfg_kwargs(model_cfgs[variant], kwargs),
    )


def _cfg(**kwargs) -> Dict[str, Any]:
    # no weights were released (official README: SAN / PVT numbers only): nothing but this code, the project's license
    return base_cfg(**{
        'license': 'apache-2.0', 'paper_ids': 'arXiv:2111.14556',
        'paper_name': 'On the Integration of Self-Attention and Convolution',
        'origin_url': 'https://github.com/LeapLabTHU/ACmix', **kwargs})


def _san_cfg(name: str) -> Dict[str, Any]:
    return _cfg(min_input_size=(3, 128, 128), first_conv='stem.conv', classifier='head.fc', notes=card.NOTES[name])


def _pvt_cfg(name: str) -> Dict[str, Any]:
    return _cfg(min_input_size=(3, _pvt.MIN_INPUT_SIZE, _pvt.MIN_INPUT_SIZE), interpolation='bicubic',
                first_conv='stages.0.patch_embed.proj', classifier='head', notes=card.NOTES[name])


default_cfgs = generate_default_cfgs({
    **{name: _san_cfg(name) for name in ('acmix_san10', 'acmix_san15', 'acmix_san19')},
    **{name: _pvt_cfg(name) for name in ('acmix_pvt_tiny', 'acmix_pvt_small')},
})


@register_model
def acmix_san10(pretrained: bool = False, **kwargs) -> ACmixSAN:
    """ACmix SAN-10 (patchwise), 12.00M params (paper 12.1M)."""
    return _create_acmix_san('acmix_san10', pretrained=pretrained, **kwargs)


@register_model
def acmix_san15(pretrained: bool = False, **kwargs) -> ACmixSAN:
    """ACmix SAN-15 (patchwise), 16.41M params (paper 16.6M)."""
    return _create_acmix_san('acmix_san15', pretrained=pretrained, **kwargs)


@register_model
def acmix_san19(pretrained: bool = False, **kwargs) -> ACmixSAN:
    """ACmix SAN-19 (patchwise), 20.83M params (paper 21.2M)."""
    return _create_acmix_san('acmix_san19', pretrained=pretrained, **kwargs)


@register_model
def acmix_pvt_tiny(pretrained: bool = False, **kwargs) -> ACmixPvt:
    """ACmix PVT-Tiny (depths 2-2-2-2), 13.31M params (paper 13M)."""
    return _create_acmix_pvt('acmix_pvt_tiny', pretrained=pretrained, **kwargs)


@register_model
def acmix_pvt_small(pretrained: bool = False, **kwargs) -> ACmixPvt:
    """ACmix PVT-Small (depths 3-4-6-3), 24.70M params (paper 25M)."""
    return _create_acmix_pvt('acmix_pvt_small', pretrained=pretrained, **kwargs)
