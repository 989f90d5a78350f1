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

Training memory: each GSA module recomputes its interior in backward (``recompute=True``), keeping
only its input; the whole-axis logits, B x heads x H x W x max(H, W) per axis, are the network's
largest tensors at 56 x 56.
"""
import functools
import math
from typing import Any, Dict, Optional, Sequence, Tuple, Type, Union

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import create_attn, register_notrace_module, to_2tuple
from timm.models import generate_default_cfgs, register_model
from timm.models.resnet import ResNet

from ..card_data import gsa as card
from ..hub import hub_id
from ..layers.global_self_attention import GlobalSelfAttention
from ..layers.pointwise import AvgPool2x2, batchnorm_affine, pointwise_conv
from ._builder import build_model
from ._checkpoint import check_state_dict, unwrap_state_dict

__all__ = ['GSAResNet', 'GSABottleneck']

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


@register_notrace_module  # eval fast path (folded BatchNorms): a leaf for torch.fx, so traced graphs match eager
class GSABottleneck(nn.Module):
    """timm's ``Bottleneck`` with the 3x3 conv replaced by a GSA module (stride: 2x2 average pooling
    after it). Takes timm ``make_blocks``' arguments; ``max_size``: the side of this stage's OUTPUT map at
    the model's img_size (a downsampling block attends over a map twice that)."""
    expansion = 4

    def __init__(
            self,
            inplanes: int,
            planes: int,
            stride: int = 1,
            downsample: Optional[nn.Module] = None,
            cardinality: int = 1,
            base_width: int = 64,
            reduce_first: int = 1,
            dilation: int = 1,
            first_dilation: Optional[int] = None,
            act_layer: Type[nn.Module] = nn.ReLU,
            norm_layer: Type[nn.Module] = nn.BatchNorm2d,
            attn_layer: Optional[Type[nn.Module]] = None,
            aa_layer: Optional[Type[nn.Module]] = None,
            drop_block: Optional[Type[nn.Module]] = None,
            drop_path: Optional[nn.Module] = None,
            num_heads: int = 8,
            key_ratio: float = 1.,
            rel_pos_length: Optional[int] = None,
            max_size: int = 56,
            pos_softmax: bool = False,
            shared_pos_embed: bool = True,
            out_proj: bool = False,
            norm_queries: bool = False,
            recompute: bool = True,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if cardinality != 1 or aa_layer is not None:
            raise ValueError('GSABottleneck has no grouped convolution (cardinality) or anti-aliased stride (aa_layer)')
        width = int(math.floor(planes * (base_width / 64)))
        first_planes = width // reduce_first
        outplanes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, first_planes, kernel_size=1, bias=False, **dd)
        self.bn1 = norm_layer(first_planes, **dd)
        self.act1 = act_layer(inplace=True)
        self.attn = GlobalSelfAttention(
            first_planes, width, num_heads=num_heads, dim_key=int(width * key_ratio), rel_pos_length=rel_pos_length,
            max_size=max_size * stride, pos_softmax=pos_softmax, shared_pos_embed=shared_pos_embed,
            out_proj=out_proj, norm_queries=norm_queries, recompute=recompute, **dd)
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
        self._folded_cache = None  # eval: BN-folded 1x1 weights (not in state_dict)

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
        if self.downsample is not None and not _foldable_shortcut(self.downsample):
            return False
        return all(_foldable_bn(bn) for bn in (self.bn1, self.bn3))

    @torch.jit.unused
    def _folded(self) -> Tuple[Any, ...]:
        """(w1, b1, w3, b3, w_down, b_down): conv1 / conv3 / the shortcut conv with their BatchNorms folded in,
        as (out, in) matrices and biases. Cached; rebuilt when any source tensor changes (its storage or its
        version counter: optimizer steps, load_state_dict, .to())."""
        pairs = [(self.conv1, self.bn1), (self.conv3, self.bn3)]
        if self.downsample is not None:
            pairs.append((self.downsample[-2], self.downsample[-1]))
        sources = [t for conv, bn in pairs for t in (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
                   if t is not None]
        if any(t.is_inference() for t in sources):  # no version counter: no cache
            return _fold_pairs(pairs)
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in sources)
        if self._folded_cache is None or self._folded_cache[0] != key:
            self._folded_cache = (key, _fold_pairs(pairs))
        return self._folded_cache[1]

    @torch.jit.unused
    def _forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        """Eval forward with conv1 + bn1, conv3 + bn3 and the shortcut's conv + BN each one 1x1 conv with bias
        (a batched matmul on the CPU for maps of 28 x 28 and more, see ``_conv1x1``); the same function as
        ``forward`` up to float rounding."""
        w1, b1, w3, b3, wd, bd = self._folded()
        shortcut = x
        if self.downsample is not None:
            shortcut = _conv1x1(self.downsample[0](x), wd, bd)
        x = self.act1(_conv1x1(x, w1, b1))
        x = self.pool(self.attn(x))
        x = self.act2(self.drop_block(self.bn2(x)))
        x = _conv1x1(x, w3, b3)
        if self.se is not None:
            x = self.se(x)
        if self.drop_path is not None:
            x = self.drop_path(x)
        return self.act3(x.add_(shortcut))


def _is_avg_down_pool(pool: nn.Module) -> bool:
    """timm's ``avg_down`` shortcut pooling: ``nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)``."""
    return type(pool) is nn.AvgPool2d and pool.kernel_size in (2, (2, 2)) and pool.stride in (2, (2, 2)) \
        and pool.padding in (0, (0, 0)) and pool.ceil_mode and not pool.count_include_pad \
        and pool.divisor_override is None


def _foldable_bn(bn: nn.Module) -> bool:
    return type(bn) is nn.BatchNorm2d and bn.running_var is not None and bn.running_mean is not None


def _foldable_shortcut(down: nn.Module) -> bool:
    """timm's ``downsample_avg`` / ``downsample_conv`` with a 1x1 stride-1 conv: [pool,] conv, BatchNorm."""
    if not isinstance(down, nn.Sequential) or len(down) not in (2, 3) or not _foldable_bn(down[-1]):
        return False
    conv = down[-2]
    if len(down) == 3 and not isinstance(down[0], (nn.Identity, nn.AvgPool2d)):
        return False
    return type(conv) is nn.Conv2d and conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.groups == 1 \
        and conv.padding == (0, 0)


def _fold_pairs(pairs: Sequence[Tuple[nn.Conv2d, nn.BatchNorm2d]]) -> Tuple[Any, ...]:
    out: list = []
    for conv, bn in pairs:
        scale, shift = batchnorm_affine(bn)
        weight = conv.weight.flatten(1) * scale.view(-1, 1)
        if conv.bias is not None:
            shift = shift + conv.bias * scale
        out += [weight.detach(), shift.detach()]
    return tuple(out) + (None,) * (6 - len(out))


def _conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """1x1 conv with bias: ``pointwise_conv`` (batched matmul) on maps of 28 x 28 and more, where it beats
    oneDNN's 1x1 conv on the CPU (2 threads, batch 8, 64 -> 256 channels at 56 x 56: 24 ms against 99 ms on
    a busy machine; about 2x on one thread); oneDNN on smaller maps, where it was as fast or faster."""
    if x.device.type == 'cpu' and x.shape[-1] * x.shape[-2] < 784:
        return F.conv2d(x, weight[:, :, None, None], bias)
    return pointwise_conv(x, weight, bias)


@register_notrace_module  # branches on the device, mode and map size: a leaf for torch.fx
class StemMaxPool(nn.Module):
    """``nn.MaxPool2d(3, 2, 1)`` of the stem; in eval without autograd on the CPU with even sides, the maxima
    of strided views, rows then columns (same values; at 8 x 64 x 112 x 112 several times faster than
    ``F.max_pool2d``). Elsewhere (and whenever gradients are needed: ties are routed differently) the
    stock kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
        recompute: GSA interiors recomputed in backward during training (memory; default True).
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
            recompute: bool = True,
            avg_down: bool = True,
            in_chans: int = 3,
            device=None,
            dtype=None,
            **kwargs,
    ):
        dd = {'device': device, 'dtype': dtype}
        side = max(to_2tuple(img_size))
        stem_reduction = 1 if cifar_stem else 4
        block_args = dict(
            num_heads=num_heads, key_ratio=key_ratio, rel_pos_length=rel_pos_length, pos_softmax=pos_softmax,
            shared_pos_embed=shared_pos_embed, out_proj=out_proj, norm_queries=norm_queries, recompute=recompute)
        # stage i's output map at img_size: side / (stem_reduction * 2^i), rounded up as the pools do
        blocks = tuple(
            _stage_block(max(1, math.ceil(side / (stem_reduction * 2 ** i))), **block_args) for i in range(4))
        super().__init__(blocks, list(layers), in_chans=in_chans, avg_down=avg_down, **dd, **kwargs)
        self.img_size = to_2tuple(img_size)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                down = block.downsample
                if isinstance(down, nn.Sequential) and _is_avg_down_pool(down[0]):
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
    check_state_dict(
        state_dict, model, f'{type(model).__name__} (blocks {depth}, img_size {model.img_size})', adaptable=adaptable)
    return state_dict


def _create_gsa(variant: str, pretrained: bool = False, **kwargs) -> GSAResNet:
    return build_model(
        GSAResNet, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        **kwargs,
    )


def _cfg(**kwargs) -> Dict[str, Any]:
    return {
        'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7),
        'crop_pct': 0.875, 'interpolation': 'bilinear', 'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'conv1', 'classifier': 'fc', 'license': 'apache-2.0',
        'paper_ids': 'arXiv:2010.03019', 'paper_name': 'Global Self-Attention Networks for Image Recognition',
        'origin_url': 'https://arxiv.org/abs/2010.03019',  # no official code
        **kwargs,
    }


def _cifar_cfg(**kwargs) -> Dict[str, Any]:
    return _cfg(num_classes=100, input_size=(3, 32, 32), pool_size=(4, 4), crop_pct=1.0,
                mean=CIFAR100_MEAN, std=CIFAR100_STD, **kwargs)


_DEPTHS = {'gsa_resnet26': (1, 2, 4, 1), 'gsa_resnet38': (2, 3, 5, 2), 'gsa_resnet50': (3, 4, 6, 3),
           'gsa_resnet101': (3, 4, 23, 3)}

# weights to be trained here (no official code or weights): the project's license; the notes are card data
default_cfgs = generate_default_cfgs({
    **{f'{name}.in1k': _cfg(
        hf_hub_id=hub_id(f'{name}.in1k'), hf_hub_filename='model.safetensors', notes=card.NOTES['in1k'])
       for name in _DEPTHS},
    **{f'{name}_cifar.cifar100': _cifar_cfg(
        hf_hub_id=hub_id(f'{name}_cifar.cifar100'), hf_hub_filename='model.safetensors', notes=card.NOTES['cifar100'])
       for name in _DEPTHS},
})


def _gsa(name: str, pretrained: bool, cifar: bool = False, **kwargs) -> GSAResNet:
    model_args = dict(layers=_DEPTHS[name])
    if cifar:
        model_args.update(cifar_stem=True, img_size=32, num_classes=100)
        name = f'{name}_cifar'
    return _create_gsa(name, pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def gsa_resnet26(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-26 [1, 2, 4, 1]."""
    return _gsa('gsa_resnet26', pretrained, **kwargs)


@register_model
def gsa_resnet38(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-38 [2, 3, 5, 2]."""
    return _gsa('gsa_resnet38', pretrained, **kwargs)


@register_model
def gsa_resnet50(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-50 [3, 4, 6, 3]."""
    return _gsa('gsa_resnet50', pretrained, **kwargs)


@register_model
def gsa_resnet101(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-101 [3, 4, 23, 3]."""
    return _gsa('gsa_resnet101', pretrained, **kwargs)


@register_model
def gsa_resnet26_cifar(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-26 for 32x32 inputs (3x3 stride-1 stem, no stem pooling), 100 classes."""
    return _gsa('gsa_resnet26', pretrained, cifar=True, **kwargs)


@register_model
def gsa_resnet38_cifar(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-38 for 32x32 inputs (3x3 stride-1 stem, no stem pooling), 100 classes."""
    return _gsa('gsa_resnet38', pretrained, cifar=True, **kwargs)


@register_model
def gsa_resnet50_cifar(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-50 for 32x32 inputs (3x3 stride-1 stem, no stem pooling), 100 classes."""
    return _gsa('gsa_resnet50', pretrained, cifar=True, **kwargs)


@register_model
def gsa_resnet101_cifar(pretrained: bool = False, **kwargs) -> GSAResNet:
    """GSA-ResNet-101 for 32x32 inputs (3x3 stride-1 stem, no stem pooling), 100 classes."""
    return _gsa('gsa_resnet101', pretrained, cifar=True, **kwargs)
