"""GSA-Net: bottleneck ResNets whose spatial convolutions are global self-attention (GSA) modules.

Paper: "Global Self-Attention Networks for Image Recognition", Zhuoran Shen, Irwan Bello, Raviteja
Vemulapalli, Xuhui Jia, Ching-Hui Chen, 2020, https://arxiv.org/abs/2010.03019
No official code or weights. The module is ``timm_attn.layers.global_self_attention``; the network is
timm's ``ResNet`` with ``GSABottleneck`` blocks.

Network:
    stem:    convolutional (the paper keeps it): timm's ResNet stem, 7x7 conv stride 2 -> BN -> ReLU ->
             3x3 max-pool stride 2 (``stem_type='deep'`` etc. pass through to timm). CIFAR variants:
             3x3 conv stride 1 -> BN -> ReLU, no pooling (no 4x downsampling for 32x32 inputs).
    stages:  widths 64 / 128 / 256 / 512 (x4 out), blocks GSA-ResNet-26 [1, 2, 4, 1], -38 [2, 3, 5, 2],
             -50 [3, 4, 6, 3], -101 [3, 4, 23, 3] (the stand-alone self-attention convention).
    block:   1x1 conv -> BN -> ReLU -> GSA -> [2x2 avg-pool, stride 2] -> BN -> ReLU -> 1x1 conv -> BN
             (+ shortcut) -> ReLU: the bottleneck's 3x3 conv is the GSA module.
    head:    global average pool -> fc (timm's).

What the paper states (from the abstract / Figure 1 / the spec): GSA modules replace all spatial
convolutions of the backbone except the stem; a GSA module is content attention plus column-only ->
BN -> row-only positional attention, summed; no output projection in Figure 1.

Choices made here (the paper's tables were not available), all constructor arguments:
    * stride 2 by 2x2 average pooling after the GSA module (``AvgPool2d(2, 2, ceil_mode=True)``), and
      the shortcut of a downsampling block as timm's ``avg_down``: 2x2 average pool -> 1x1 conv -> BN
      (the usual stand-alone attention ResNet layout; the same pooling on both paths, so odd map sizes
      line up).
    * 8 heads, d_k = d_v = the block's width (``num_heads``, ``key_ratio``): q / k / v projections cost
      3 w^2 weights instead of the 9 w^2 of the 3x3 conv.
    * positional attention over the whole axis (``rel_pos_length=None``; an odd int gives an
      L-neighbourhood), no softmax over its logits (``pos_softmax``), embeddings shared by the heads
      (``shared_pos_embed``), no output projection (``out_proj``), queries not normalised (``norm_queries``).
    * embedding tables sized for each block's map at ``img_size`` (224; 32 for CIFAR): whole-axis
      tables hold 2 * side - 1 offsets; a larger input reuses the outermost embedding for farther
      offsets, so any input size works (non-square, odd, smaller or larger than img_size).

Params (M) / GMACs (multiply-adds of convolutions and matmuls, one image; ImageNet variants at 224,
CIFAR variants at 32 with 100 classes), against the same-depth bottleneck ResNets (timm ``resnet50`` /
``resnet101``; for 26 / 38 ``timm_attn.bench``'s ``resnet26_paper`` / ``resnet38_paper``, timm
``ResNet(Bottleneck, [1, 2, 4, 1] / [2, 3, 5, 2])``; CIFAR baselines: the same ResNets with the same
3x3 stride-1 stem):
    gsa_resnet26   10.35 / 2.31   vs 13.70 / 2.34  (0.76x / 0.99x)    _cifar   8.49 / 0.69  vs 11.84 / 0.73
    gsa_resnet38   14.20 / 2.95   vs 19.63 / 3.22  (0.72x / 0.92x)    _cifar  12.34 / 0.89  vs 17.78 / 1.01
    gsa_resnet50   18.05 / 3.58   vs 25.56 / 4.09  (0.71x / 0.88x)    _cifar  16.19 / 1.09  vs 23.71 / 1.30
    gsa_resnet101  30.40 / 6.09   vs 44.55 / 7.80  (0.68x / 0.78x)    _cifar  28.52 / 1.90  vs 42.70 / 2.51
(The secondary source's "50% of the parameters, 70% of the FLOPs" for GSA-ResNet-50 is not reached with
these choices; the paper's own table was not available to check the choices against.)

Training memory: the whole-axis logits, B x heads x H x W x max(H, W) per axis, would be the network's
largest tensors at 56 x 56; the positional passes never store them (they are remade in backward, see
``timm_attn.layers.global_self_attention``). The GSA modules of the first two stages, whose maps are the
largest, also recompute their interior in backward, keeping only their input (``recompute``, per stage).
"""
import functools
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple, Type, Union

import torch
from torch import nn

from timm.layers import create_attn, register_notrace_module, to_2tuple
from timm.models import generate_default_cfgs, register_model
from timm.models.resnet import ResNet

from ..card_data import gsa as card
from ..hub import hub_id
from ..layers.global_self_attention import GlobalSelfAttention
from ..layers._ops import AvgPool2x2, ConvBnFoldCache, StemMaxPool, is_avg_down_pool, is_foldable_bn, \
    is_foldable_shortcut, pointwise_conv_by_size
from ._builder import base_cfg, build_model, cfg_kwargs
from ._checkpoint import check_state_dict, unwrap_state_dict
from ._resnet_blocks import check_bottleneck_args

__all__ = ['GSAResNet', 'GSAResNetCfg', 'GSABottleneck']

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


@dataclass(frozen=True)
class GSAResNetCfg:
    """One GSA-ResNet: blocks per stage; CIFAR variants (32x32 inputs) have the 3x3 stride-1 stem without
    pooling and positional tables sized for 32x32 (100 classes: their pretrained cfg's)."""
    layers: Tuple[int, int, int, int]
    cifar_stem: bool = False
    img_size: int = 224


model_cfgs = dict(
    gsa_resnet26=GSAResNetCfg(layers=(1, 2, 4, 1)),
    gsa_resnet38=GSAResNetCfg(layers=(2, 3, 5, 2)),
    gsa_resnet50=GSAResNetCfg(layers=(3, 4, 6, 3)),
    gsa_resnet101=GSAResNetCfg(layers=(3, 4, 23, 3)),
    gsa_resnet26_cifar=GSAResNetCfg(layers=(1, 2, 4, 1), cifar_stem=True, img_size=32),
    gsa_resnet38_cifar=GSAResNetCfg(layers=(2, 3, 5, 2), cifar_stem=True, img_size=32),
    gsa_resnet50_cifar=GSAResNetCfg(layers=(3, 4, 6, 3), cifar_stem=True, img_size=32),
    gsa_resnet101_cifar=GSAResNetCfg(layers=(3, 4, 23, 3), cifar_stem=True, img_size=32),
)
_IMAGENET_NAMES = [name for name, cfg in model_cfgs.items() if not cfg.cifar_stem]


@register_notrace_module  # eval fast path (folded BatchNorms): a leaf for torch.fx, so traced graphs match eager
class GSABottleneck(nn.Module):
    """timm's ``Bottleneck`` with the 3x3 conv replaced by a GSA module (stride: 2x2 average pooling
    after it). Takes timm ``make_blocks``' arguments; ``max_size``: the side of this stage's OUTPUT map at
    the model's img_size (a downsampling block attends over a map twice that); ``key_ratio``: d_k / d_v;
    ``gsa_args``: the other ``GlobalSelfAttention`` options (num_heads, rel_pos_length, ...)."""
    expansion = 4

    def __init__(
            self,
            inplanes: int,
            planes: int,
            stride: int = 1,
            downsample: Optional[nn.Module] = None,
            base_width: int = 64,
            reduce_first: int = 1,
            act_layer: Type[nn.Module] = nn.ReLU,
            norm_layer: Type[nn.Module] = nn.BatchNorm2d,
            attn_layer: Optional[Type[nn.Module]] = None,
            drop_block: Optional[Type[nn.Module]] = None,
            drop_path: Optional[nn.Module] = None,
            max_size: int = 56,
            key_ratio: float = 1.,
            gsa_args: Optional[Dict[str, Any]] = None,
            device=None,
            dtype=None,
            **kwargs,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        check_bottleneck_args(type(self).__name__, allow_dilation=True, **kwargs)
        width = int(math.floor(planes * (base_width / 64)))
        first_planes = width // reduce_first
        outplanes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, first_planes, kernel_size=1, bias=False, **dd)
        self.bn1 = norm_layer(first_planes, **dd)
        self.act1 = act_layer(inplace=True)
        self.attn = GlobalSelfAttention(
            first_planes, width, dim_key=int(width * key_ratio), max_size=max_size * stride, **(gsa_args or {}), **dd)
        # same pooling as timm's avg_down shortcut (GSAResNet swaps that one for an AvgPool2x2 too), so that odd
        # sizes round alike on both paths
        self.pool = AvgPool2x2() if stride > 1 else nn.Identity()
        self.bn2 = norm_layer(width, **dd)
        self.drop_block = drop_block() if drop_block is not None else nn.Identity()
        self.act2 = act_layer(inplace=True)
        self.conv3 = nn.Conv2d(width, outplanes, kernel_size=1, bias=False, **dd)
        self.bn3 = norm_layer(outplanes, **dd)
        self.se = create_attn(attn_layer, outplanes, **dd)
        self.act3 = act_layer(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.drop_path = drop_path
        self._fold_cache = ConvBnFoldCache()  # eval: BN-folded 1x1 weights (not in state_dict)

    def zero_init_last(self) -> None:
        if getattr(self.bn3, 'weight', None) is not None:
            nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and self._use_inference_path(x):
            return self._forward_inference(x)
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.pool(self.attn(x))
        x = self.act2(self.drop_block(self.bn2(x)))
        x = self.bn3(self.conv3(x))
        if self.se is not None:
            x = self.se(x)
        if self.drop_path is not None:
            x = self.drop_path(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return self.act3(x + shortcut)

    @torch.jit.unused
    def _use_inference_path(self, x: torch.Tensor) -> bool:
        """Eval mode without autograd (not while torch.fx traces or torch.compile compiles), BatchNorms with
        running statistics after conv1, conv3 and the shortcut's conv."""
        if self.training or torch.is_grad_enabled() or isinstance(x, torch.fx.Proxy) \
                or torch.compiler.is_compiling():
            return False
        if self.downsample is not None and not is_foldable_shortcut(self.downsample):
            return False
        return all(is_foldable_bn(bn) for bn in (self.bn1, self.bn3))

    @torch.jit.unused
    def _folded(self) -> Tuple[Any, ...]:
        """(w1, b1, w3, b3, w_down, b_down): conv1 / conv3 / the shortcut conv with their BatchNorms folded in,
        as (out, in) matrices and biases (cached)."""
        pairs = [(self.conv1, self.bn1), (self.conv3, self.bn3)]
        if self.downsample is not None:
            pairs.append((self.downsample[-2], self.downsample[-1]))
        folded = self._fold_cache(pairs)
        return tuple(folded) + (None,) * (6 - len(folded))

    @torch.jit.unused
    def _forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        """Eval forward with conv1 + bn1, conv3 + bn3 and the shortcut's conv + BN each one 1x1 conv with bias
        (``pointwise_conv_by_size``); the same function as ``forward`` up to float rounding."""
        w1, b1, w3, b3, wd, bd = self._folded()
        shortcut = x
        if self.downsample is not None:
            shortcut = pointwise_conv_by_size(self.downsample[0](x), wd, bd)
        x = self.act1(pointwise_conv_by_size(x, w1, b1))
        x = self.pool(self.attn(x))
        x = self.act2(self.drop_block(self.bn2(x)))
        x = pointwise_conv_by_size(x, w3, b3)
        if self.se is not None:
            x = self.se(x)
        if self.drop_path is not None:
            x = self.drop_path(x)
        return self.act3(x.add_(shortcut))


def _stage_block(max_size: int, **block_args) -> Any:
    """GSABottleneck with the stage's table size bound (timm's make_blocks reads ``.expansion``)."""
    fn = functools.partial(GSABottleneck, max_size=max_size, **block_args)
    fn.expansion = GSABottleneck.expansion
    return fn


class GSAResNet(ResNet):
    """GSA-ResNet classifier: timm ``ResNet`` with ``GSABottleneck`` blocks (see the module docstring).

    Args:
        layers: blocks per stage.
        img_size: input size the positional tables are sized for (any other size still works).
        cifar_stem: 3x3 conv stride 1 stem without pooling (32x32 inputs) instead of the 7x7 / max-pool stem.
        num_heads, key_ratio (d_k / d_v), rel_pos_length (odd L or None = whole axis), pos_softmax,
            shared_pos_embed, out_proj, norm_queries: the GSA modules' options
            (``timm_attn.layers.GlobalSelfAttention``).
        recompute: GSA interiors recomputed in backward during training: one flag for every stage, or one per
            stage (default: the first two stages, the 56 x 56 and 28 x 28 maps at 224 px).
        avg_down: shortcut of downsampling blocks as 2x2 average pool -> 1x1 conv (default) or strided 1x1 conv.
        **kwargs: timm ``ResNet`` arguments (num_classes, in_chans, stem_type, global_pool, drop_rate,
            drop_path_rate, zero_init_last, ...).
    """

    def __init__(
            self,
            layers: Sequence[int] = (3, 4, 6, 3),
            img_size: Union[int, Tuple[int, int]] = 224,
            cifar_stem: bool = False,
            num_heads: int = 8,
            key_ratio: float = 1.,
            rel_pos_length: Optional[int] = None,
            pos_softmax: bool = False,
            shared_pos_embed: bool = True,
            out_proj: bool = False,
            norm_queries: bool = False,
            recompute: Union[bool, Sequence[bool]] = (True, True, False, False),
            avg_down: bool = True,
            in_chans: int = 3,
            device=None,
            dtype=None,
            **kwargs,
    ):
        dd = {'device': device, 'dtype': dtype}
        side = max(to_2tuple(img_size))
        stem_reduction = 1 if cifar_stem else 4
        recompute = (recompute,) * 4 if isinstance(recompute, bool) else tuple(recompute)
        if len(recompute) != 4:
            raise ValueError(f'recompute: one flag or one per stage (4), got {len(recompute)}')
        gsa_args = dict(
            num_heads=num_heads, rel_pos_length=rel_pos_length, pos_softmax=pos_softmax,
            shared_pos_embed=shared_pos_embed, out_proj=out_proj, norm_queries=norm_queries)
        # stage i's output map at img_size: side / (stem_reduction * 2^i), rounded up as the pools do
        blocks = tuple(
            _stage_block(
                max(1, math.ceil(side / (stem_reduction * 2 ** i))), key_ratio=key_ratio,
                gsa_args=dict(gsa_args, recompute=bool(recompute[i])))
            for i in range(4))
        super().__init__(blocks, list(layers), in_chans=in_chans, avg_down=avg_down, **dd, **kwargs)
        self.img_size = to_2tuple(img_size)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                down = block.downsample
                if isinstance(down, nn.Sequential) and is_avg_down_pool(down[0]):
                    down[0] = AvgPool2x2()  # the same pooling; strided sums in eval on the CPU
        mp = self.maxpool
        if type(mp) is nn.MaxPool2d and (mp.kernel_size, mp.stride, mp.padding, mp.dilation, mp.ceil_mode) in (
                (3, 2, 1, 1, False), ((3, 3), (2, 2), (1, 1), (1, 1), False)):
            self.maxpool = StemMaxPool()
        self.cifar_stem = cifar_stem
        if cifar_stem:
            stem_chs = self.conv1.out_channels if isinstance(self.conv1, nn.Conv2d) else self.bn1.num_features
            self.conv1 = nn.Conv2d(in_chans, stem_chs, kernel_size=3, stride=1, padding=1, bias=False, **dd)
            nn.init.kaiming_normal_(self.conv1.weight, mode='fan_out', nonlinearity='relu')
            self.maxpool = nn.Identity()
            for info in self.feature_info:
                info['reduction'] //= 4 if info['module'] != 'act1' else 2

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        """The relative position embeddings (as timm does for position embeddings / bias tables)."""
        return {n for n, _ in self.named_parameters() if n.endswith(('rel_pos_col', 'rel_pos_row'))}


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: GSAResNet) -> Dict[str, torch.Tensor]:
    """Unwrap a training checkpoint ('state_dict' / 'model', 'module.' prefixes) and check it fits
    ``model``; raises ``CheckpointMismatchError`` naming the mismatched keys (e.g. tables sized for
    another img_size: build the model with the checkpoint's img_size)."""
    state_dict = unwrap_state_dict(state_dict)
    adaptable = ('fc.weight', 'fc.bias', 'conv1.weight')
    depth = [len(s) for s in (model.layer1, model.layer2, model.layer3, model.layer4)]
    return check_state_dict(
        state_dict, model, f'{type(model).__name__} (blocks {depth}, img_size {model.img_size})', adaptable=adaptable)


def _create_gsa(variant: str, pretrained: bool = False, **kwargs) -> GSAResNet:
    return build_model(
        GSAResNet, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        **cfg_kwargs(model_cfgs[variant], kwargs),
    )


def _cfg(**kwargs) -> Dict[str, Any]:
    return base_cfg(
        first_conv='conv1', classifier='fc', license='apache-2.0', paper_ids='arXiv:2010.03019',
        paper_name='Global Self-Attention Networks for Image Recognition',
        origin_url='https://arxiv.org/abs/2010.03019', **kwargs)


def _cifar_cfg(**kwargs) -> Dict[str, Any]:
    return _cfg(num_classes=100, input_size=(3, 32, 32), pool_size=(4, 4), crop_pct=1.0,
                mean=CIFAR100_MEAN, std=CIFAR100_STD, **kwargs)


# weights to be trained here (no official code or weights): the project's license; the notes are card data
default_cfgs = generate_default_cfgs({
    **{f'{name}.in1k': _cfg(
        hf_hub_id=hub_id(f'{name}.in1k'), hf_hub_filename='model.safetensors', notes=card.NOTES['in1k'])
       for name in _IMAGENET_NAMES},
    **{f'{name}_cifar.cifar100': _cifar_cfg(
        hf_hub_id=hub_id(f'{name}_cifar.cifar100'), hf_hub_filename='model.safetensors',
        notes=card.NOTES['cifar100'])
       for name in _IMAGENET_NAMES},
})


@register_model
def gsa_resnet26(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-26 [1, 2, 4, 1]."""
    return _create_gsa('gsa_resnet26', pretrained=pretrained, **kwargs)


@register_model
def gsa_resnet38(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-38 [2, 3, 5, 2]."""
    return _create_gsa('gsa_resnet38', pretrained=pretrained, **kwargs)


@register_model
def gsa_resnet50(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-50 [3, 4, 6, 3]."""
    return _create_gsa('gsa_resnet50', pretrained=pretrained, **kwargs)


@register_model
def gsa_resnet101(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-101 [3, 4, 23, 3]."""
    return _create_gsa('gsa_resnet101', pretrained=pretrained, **kwargs)


@register_model
def gsa_resnet26_cifar(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-26 for 32x32 inputs (3x3 stride-1 stem, no stem pooling), 100 classes."""
    return _create_gsa('gsa_resnet26_cifar', pretrained=pretrained, **kwargs)


@register_model
def gsa_resnet38_cifar(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-38 for 32x32 inputs (3x3 stride-1 stem, no stem pooling), 100 classes."""
    return _create_gsa('gsa_resnet38_cifar', pretrained=pretrained, **kwargs)


@register_model
def gsa_resnet50_cifar(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-50 for 32x32 inputs (3x3 stride-1 stem, no stem pooling), 100 classes."""
    return _create_gsa('gsa_resnet50_cifar', pretrained=pretrained, **kwargs)


@register_model
def gsa_resnet101_cifar(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-101 for 32x32 inputs (3x3 stride-1 stem, no stem pooling), 100 classes."""
    return _create_gsa('gsa_resnet101_cifar', pretrained=pretrained, **kwargs)
