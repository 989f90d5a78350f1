"""ACmix: ResNet and Swin Transformer with mixed self-attention / convolution modules.

Paper: "On the Integration of Self-Attention and Convolution", Xuran Pan, Chunjiang Ge, Rui Lu, Shiji Song,
Guanfang Chen, Zeyi Huang, Gao Huang, CVPR 2022, https://arxiv.org/abs/2111.14556
Official code: https://github.com/LeapLabTHU/ACmix (``ResNet/ResNet_ImageNet.py``,
``Swin-Transformer/models/swin_transformer_acmix.py``; no license file).

ACmix-ResNet (``acmix_resnet26/38/50``): torchvision's ResNet v1.5 bottleneck network (timm's ``ResNet``)
with each bottleneck's 3x3 conv replaced by ``timm_attn.layers.ACmix(width, width, 7, 4, 3, stride)``.
Key names are torchvision's (conv1, bn1, layer1.0.conv2.conv1, ..., fc), the official layout.

ACmix-Swin (``acmix_swin_tiny/small_patch4_window7_224``): timm's Swin Transformer whose window
attention also feeds its qkv projection to a convolution path: ``fc`` (1x1 conv with bias over the
3 * heads maps of each channel) -> ``dep_conv`` (grouped 3x3 conv, zero padding, no bias) on the full,
cyclically shifted map; ``x = rate1 * proj(window_attention) + rate2 * conv_path`` before proj_drop.
Official Swin checkpoints (``{'model': ...}``, original Swin key names) are converted by timm's own
Swin filter; the ACmix keys (``attn.fc``, ``attn.dep_conv``, ``attn.rate1/2``) keep their names.
"""
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from timm.layers import calculate_drop_path_rates, register_notrace_module
from timm.models import generate_default_cfgs, register_model
from timm.models.resnet import Bottleneck, ResNet
from timm.models.swin_transformer import SwinTransformer, SwinTransformerBlock, WindowAttention, \
    checkpoint_filter_fn as swin_checkpoint_filter_fn, window_partition, window_reverse

from ..card_data import acmix as card
from ..hub import hub_id
from ..layers.acmix import ACmix, ACmixConvPathMixin
from ._builder import base_cfg, build_model, cfg_kwargs
from ._checkpoint import check_state_dict, unwrap_state_dict
from ._resnet_blocks import check_bottleneck_args

__all__ = ['ACmixBottleneck', 'ACmixResNet', 'ACmixResNetCfg', 'WindowAttentionACmix', 'ACmixSwinTransformerBlock',
           'ACmixSwinTransformer', 'ACmixSwinCfg']


@dataclass(frozen=True)
class ACmixResNetCfg:
    """One ACmix-ResNet: bottlenecks per stage."""
    layers: Tuple[int, int, int, int]


@dataclass(frozen=True)
class ACmixSwinCfg:
    """One ACmix Swin Transformer (Swin-T / Swin-S with the official drop-path rates)."""
    depths: Tuple[int, ...]
    drop_path_rate: float
    num_heads: Tuple[int, ...] = (3, 6, 12, 24)
    embed_dim: int = 96
    patch_size: int = 4
    window_size: int = 7


model_cfgs = dict(
    acmix_resnet26=ACmixResNetCfg(layers=(1, 2, 4, 1)),
    acmix_resnet38=ACmixResNetCfg(layers=(2, 3, 5, 2)),
    acmix_resnet50=ACmixResNetCfg(layers=(3, 4, 6, 3)),
    acmix_swin_tiny_patch4_window7_224=ACmixSwinCfg(depths=(2, 2, 6, 2), drop_path_rate=0.2),
    acmix_swin_small_patch4_window7_224=ACmixSwinCfg(depths=(2, 2, 18, 2), drop_path_rate=0.3),
)


class ACmixBottleneck(Bottleneck):
    """timm's (torchvision v1.5) bottleneck with ``conv2`` = ACmix(width, width, kernel_att, head, kernel_conv,
    stride)."""

    def __init__(
            self,
            inplanes: int,
            planes: int,
            stride: int = 1,
            downsample: Optional[nn.Module] = None,
            kernel_att: int = 7,
            head: int = 4,
            kernel_conv: int = 3,
            cardinality: int = 1,
            aa_layer: Optional[type] = None,
            dilation: int = 1,
            first_dilation: Optional[int] = None,
            **kwargs,
    ):
        check_bottleneck_args(type(self).__name__, cardinality, aa_layer, dilation, first_dilation)
        super().__init__(inplanes, planes, stride=stride, downsample=downsample, **kwargs)
        self.conv2 = ACmix(
            self.conv2.in_channels, self.conv2.out_channels, kernel_att, head, kernel_conv, stride=stride,
            device=kwargs.get('device'), dtype=kwargs.get('dtype'))


class ACmixResNet(ResNet):
    """timm's ``ResNet`` built from ``ACmixBottleneck`` (official: no zero-init of the last BN).

    Args:
        layers: bottlenecks per stage (R26 (1, 2, 4, 1), R38 (2, 3, 5, 2), R50 (3, 4, 6, 3)).
        kernel_att, head, kernel_conv: ACmix window, heads and conv-path kernel (official 7, 4, 3).
        **kwargs: timm ``ResNet`` arguments (num_classes, in_chans, drop_rate, drop_path_rate, ...).
    """

    def __init__(
            self,
            layers: Sequence[int] = (3, 4, 6, 3),
            kernel_att: int = 7,
            head: int = 4,
            kernel_conv: int = 3,
            zero_init_last: bool = False,
            **kwargs,
    ):
        block_args = dict(kernel_att=kernel_att, head=head, kernel_conv=kernel_conv, **kwargs.pop('block_args', {}))
        super().__init__(
            block=ACmixBottleneck, layers=list(layers), zero_init_last=zero_init_last, block_args=block_args, **kwargs)


@register_notrace_module  # full-map conv path next to the windows: a leaf for torch.fx
class WindowAttentionACmix(ACmixConvPathMixin, WindowAttention):
    """Swin window attention plus the ACmix convolution path on the same qkv projection.

    ``forward`` takes the whole (shifted, window-padded) map (B, Hp, Wp, C) and the unpadded size
    (H, W), and returns (B, H, W, C): ``rate1 * proj(attention) + rate2 * dep_conv(fc(qkv))``, then proj_drop.
    """

    def __init__(
            self,
            dim: int,
            num_heads: int,
            head_dim: Optional[int] = None,
            window_size: Any = 7,
            qkv_bias: bool = True,
            attn_drop: float = 0.,
            proj_drop: float = 0.,
            kernel_conv: int = 3,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__(
            dim, num_heads, head_dim=head_dim, window_size=window_size, qkv_bias=qkv_bias,
            attn_drop=attn_drop, proj_drop=proj_drop, **dd)
        self.head_dim = self.qkv.out_features // (3 * num_heads)
        self.init_conv_path(3 * num_heads, self.head_dim, dim, kernel_conv, fc_bias=True, **dd)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if hasattr(self, 'dep_conv'):  # WindowAttention.__init__ calls this before the ACmix layers exist
            self.reset_acmix_parameters()

    def conv_path(self, qkv: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3 * C) qkv -> (B, H, W, C) ``dep_conv(fc(qkv))``."""
        b, h, w, _ = qkv.shape
        kk = self.kernel_conv * self.kernel_conv
        nh, hd = self.num_heads, self.head_dim
        # fc over the 3 * heads maps of each channel c: (kk, 3 * heads) @ (B, H*W, 3 * heads, hd) -> (B, H*W, kk, hd)
        f = torch.matmul(self.fc.weight.view(kk, 3 * nh), qkv.reshape(b, h * w, 3 * nh, hd))
        fc_bias = self.fc.bias
        assert fc_bias is not None  # for TorchScript (Optional)
        f = f + fc_bias.view(kk, 1)
        # official channel order for dep_conv's groups: c * kk + i (NCHW view of channels-last memory)
        f = f.transpose(-1, -2).reshape(b, h, w, hd * kk).permute(0, 3, 1, 2)
        return self.dep_conv(f).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor, feat_size: Tuple[int, int], mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, hp, wp, c = x.shape
        h, w = feat_size
        qkv = self.qkv(x)  # (B, Hp, Wp, 3 * C)
        out_conv = self.conv_path(qkv[:, :h, :w])

        win_h, win_w = self.window_size
        n = win_h * win_w
        qkv = window_partition(qkv, self.window_size).view(-1, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (nW*B, heads, N, hd)
        b_ = q.shape[0]
        if self.fused_attn:
            attn_mask = self._get_rel_pos_bias()
            if mask is not None:
                num_win = mask.shape[0]
                mask = mask.view(1, num_win, 1, n, n).expand(b_ // num_win, -1, self.num_heads, -1, -1)
                attn_mask = attn_mask + mask.reshape(-1, self.num_heads, n, n)
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop.p if self.training else 0.)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = attn + self._get_rel_pos_bias()
            if mask is not None:
                num_win = mask.shape[0]
                attn = attn.view(-1, num_win, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.num_heads, n, n)
            attn = self.attn_drop(self.softmax(attn))
            out = attn @ v
        out = self.proj(out.transpose(1, 2).reshape(b_, n, -1))
        out = window_reverse(out.view(-1, win_h, win_w, c), self.window_size, hp, wp)[:, :h, :w]
        return self.proj_drop(self.rate1 * out + self.rate2 * out_conv)


class ACmixSwinTransformerBlock(SwinTransformerBlock):
    """timm's Swin block with ``WindowAttentionACmix``: the attention module sees the whole shifted map."""

    def __init__(self, dim: int, input_resolution: Tuple[int, int], num_heads: int = 4,
                 head_dim: Optional[int] = None, qkv_bias: bool = True, proj_drop: float = 0.,
                 attn_drop: float = 0., device=None, dtype=None, **kwargs):
        super().__init__(
            dim, input_resolution, num_heads=num_heads, head_dim=head_dim, qkv_bias=qkv_bias,
            proj_drop=proj_drop, attn_drop=attn_drop, device=device, dtype=dtype, **kwargs)
        self.attn = WindowAttentionACmix(
            dim, num_heads, head_dim=head_dim, window_size=self.window_size, qkv_bias=qkv_bias,
            attn_drop=attn_drop, proj_drop=proj_drop, device=device, dtype=dtype)

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        _, h, w, _ = x.shape
        has_shift = any(self.shift_size)
        if has_shift:
            x = torch.roll(x, shifts=(-self.shift_size[0], -self.shift_size[1]), dims=(1, 2))
        # pad for sizes not divisible by the window (the conv path crops the padding away again)
        pad_h = (self.window_size[0] - h % self.window_size[0]) % self.window_size[0]
        pad_w = (self.window_size[1] - w % self.window_size[1]) % self.window_size[1]
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        attn_mask = self.get_attn_mask(x) if self.dynamic_mask else self.attn_mask
        x = self.attn(x, (h, w), attn_mask)
        if has_shift:
            x = torch.roll(x, shifts=self.shift_size, dims=(1, 2))
        return x


class ACmixSwinTransformer(SwinTransformer):
    """timm's ``SwinTransformer`` with ``ACmixSwinTransformerBlock`` blocks; arguments as timm's.

    timm's stages build their blocks themselves, so the model is built with empty stages (patch
    embedding, patch merging, norm and head as in timm) and the ACmix blocks are added per stage with
    the arguments timm would give (window / shift per stage, stochastic depth linear over all blocks).
    """

    def __init__(
            self,
            depths: Tuple[int, ...] = (2, 2, 6, 2),
            num_heads: Tuple[int, ...] = (3, 6, 12, 24),
            head_dim: Optional[int] = None,
            mlp_ratio: float = 4.,
            qkv_bias: bool = True,
            proj_drop_rate: float = 0.,
            attn_drop_rate: float = 0.,
            drop_path_rate: float = 0.1,
            norm_layer: type = nn.LayerNorm,
            always_partition: bool = False,
            weight_init: str = '',
            device=None,
            dtype=None,
            **kwargs,
    ):
        if not isinstance(mlp_ratio, (int, float)) or head_dim is not None and not isinstance(head_dim, int):
            raise ValueError('ACmixSwinTransformer takes one mlp_ratio and head_dim for all stages')
        super().__init__(
            depths=(0,) * len(depths), num_heads=num_heads, head_dim=head_dim, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
            proj_drop_rate=proj_drop_rate, attn_drop_rate=attn_drop_rate, drop_path_rate=0., norm_layer=norm_layer,
            always_partition=always_partition, weight_init='skip', device=device, dtype=dtype, **kwargs)
        dpr = calculate_drop_path_rates(drop_path_rate, list(depths), stagewise=True)  # per block, split by stage
        for i, stage in enumerate(self.layers):
            window_size = self._ref_window_sizes[i]
            stage.depth = depths[i]
            stage.blocks = nn.Sequential(*[ACmixSwinTransformerBlock(
                dim=self.feature_info[i]['num_chs'],
                input_resolution=stage.output_resolution,
                num_heads=num_heads[i],
                head_dim=head_dim,
                window_size=window_size,
                shift_size=0 if j % 2 == 0 else tuple(w // 2 for w in window_size),
                always_partition=always_partition,
                dynamic_mask=self.dynamic_img_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                proj_drop=proj_drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=dpr[i][j],
                norm_layer=norm_layer,
                device=device,
                dtype=dtype,
            ) for j in range(depths[i])])
        self.weight_init_mode = 'reset' if weight_init == 'skip' else weight_init
        if weight_init != 'skip':
            self.init_weights(needs_reset=False)


def _resnet_filter_fn(state_dict: Dict[str, Any], model: ACmixResNet) -> Dict[str, torch.Tensor]:
    """Official ``ResNet_ImageNet.py`` checkpoint (torchvision names; whole training checkpoint or its
    'state_dict', with or without 'module.') -> this model (same names)."""
    state_dict = unwrap_state_dict(state_dict)
    adaptable = ('fc.weight', 'fc.bias', 'conv1.weight')
    depths = tuple(len(getattr(model, f'layer{i}')) for i in range(1, 5))
    return check_state_dict(state_dict, model, f'ACmix-ResNet {depths}', adaptable=adaptable)


def _swin_filter_fn(state_dict: Dict[str, Any], model: ACmixSwinTransformer) -> Dict[str, torch.Tensor]:
    """Official ACmix-Swin checkpoint (``{'model': ...}``, original Swin names) -> this model, by timm's
    own Swin filter (downsample moved to the next stage, head -> head.fc, buffers dropped); the ACmix
    keys (attn.fc, attn.dep_conv, attn.rate1, attn.rate2) have the same names in both."""
    state_dict = swin_checkpoint_filter_fn(unwrap_state_dict(state_dict), model)
    adaptable = ('head.fc.weight', 'head.fc.bias', 'patch_embed.proj.weight')
    depths = tuple(len(s.blocks) for s in model.layers)
    return check_state_dict(state_dict, model, f'ACmix-Swin depths {depths}', adaptable=adaptable)


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: nn.Module) -> Dict[str, torch.Tensor]:
    """Convert an official ACmix checkpoint (ResNet or Swin layout) for ``model``; a checkpoint already in
    this model's layout passes through. Raises ``CheckpointMismatchError`` naming mismatched keys."""
    if isinstance(model, ACmixSwinTransformer):
        return _swin_filter_fn(state_dict, model)
    return _resnet_filter_fn(state_dict, model)


def _create_acmix_resnet(variant: str, pretrained: bool = False, **kwargs) -> ACmixResNet:
    return build_model(
        ACmixResNet, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        **cfg_kwargs(model_cfgs[variant], kwargs),
    )


def _create_acmix_swin(variant: str, pretrained: bool = False, **kwargs) -> ACmixSwinTransformer:
    kwargs = cfg_kwargs(model_cfgs[variant], kwargs)
    out_indices = kwargs.pop('out_indices', tuple(range(len(kwargs['depths']))))
    return build_model(
        ACmixSwinTransformer, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(flatten_sequential=True, out_indices=out_indices),
        **kwargs,
    )


def _cfg(**kwargs) -> Dict[str, Any]:
    return base_cfg(**{
        'first_conv': 'conv1', 'classifier': 'fc',
        'license': 'unknown',  # converted official weights: the official repo has no license file
        'paper_ids': 'arXiv:2111.14556', 'paper_name': 'On the Integration of Self-Attention and Convolution',
        'origin_url': 'https://github.com/LeapLabTHU/ACmix', **kwargs})


def _swin_cfg(**kwargs) -> Dict[str, Any]:
    return _cfg(crop_pct=0.9, interpolation='bicubic', fixed_input_size=True,
                first_conv='patch_embed.proj', classifier='head.fc', **kwargs)


default_cfgs = generate_default_cfgs({
    # no ResNet weights were released (official issues #3, #4, #11): nothing but this code, the project's license
    'acmix_resnet26': _cfg(license='apache-2.0'),
    'acmix_resnet38': _cfg(license='apache-2.0'),
    'acmix_resnet50': _cfg(license='apache-2.0'),
    **{name_tag: _swin_cfg(hf_hub_id=hub_id(name_tag), hf_hub_filename='model.safetensors', notes=card.NOTES[name_tag])
       for name_tag in ('acmix_swin_tiny_patch4_window7_224.in1k', 'acmix_swin_small_patch4_window7_224.in1k')},
})


@register_model
def acmix_resnet26(pretrained: bool = False, **kwargs) -> ACmixResNet:
    """ACmix-ResNet-26 ([1, 2, 4, 1] bottlenecks), 10.49M params."""
    return _create_acmix_resnet('acmix_resnet26', pretrained=pretrained, **kwargs)


@register_model
def acmix_resnet38(pretrained: bool = False, **kwargs) -> ACmixResNet:
    """ACmix-ResNet-38 ([2, 3, 5, 2] bottlenecks), 14.41M params."""
    return _create_acmix_resnet('acmix_resnet38', pretrained=pretrained, **kwargs)


@register_model
def acmix_resnet50(pretrained: bool = False, **kwargs) -> ACmixResNet:
    """ACmix-ResNet-50 ([3, 4, 6, 3] bottlenecks), 18.33M params."""
    return _create_acmix_resnet('acmix_resnet50', pretrained=pretrained, **kwargs)


@register_model
def acmix_swin_tiny_patch4_window7_224(pretrained: bool = False, **kwargs) -> ACmixSwinTransformer:
    """ACmix Swin-T @ 224, 28.65M params (official drop_path 0.2)."""
    return _create_acmix_swin('acmix_swin_tiny_patch4_window7_224', pretrained=pretrained, **kwargs)


@register_model
def acmix_swin_small_patch4_window7_224(pretrained: bool = False, **kwargs) -> ACmixSwinTransformer:
    """ACmix Swin-S @ 224, 50.35M params (official drop_path 0.3)."""
    return _create_acmix_swin('acmix_swin_small_patch4_window7_224', pretrained=pretrained, **kwargs)
