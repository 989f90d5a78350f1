"""ResNet-50 with attention modules: one timm ``ResNet``, the module placed where its paper puts it.

Every model here is ``timm.models.resnet.ResNet`` (Bottleneck, layers 3-4-6-3, 7x7 stem: timm's
``resnet50``) with an attention layer given through ``block_args=dict(attn_layer=...)`` (applied after the
last BN of every bottleneck, before the residual add), or, for modules that sit elsewhere, added by
``AttentionResNet`` after timm has built the network. The backbone's keys stay those of timm's ``resnet50``:
its weights load with ``strict=False`` and only the attention modules' keys missing.

| model            | module (paper)                                 | placement                                  |
|------------------|------------------------------------------------|--------------------------------------------|
| ge_resnet50      | GE-theta-plus, global extent (arXiv:1810.12348)| every bottleneck (paper)                   |
| spa_resnet50     | SPA (ICME 2020)                                | every bottleneck (official SPANet)         |
| cbam_resnet50    | CBAM (arXiv:1807.06521)                        | every bottleneck (paper)                   |
| bam_resnet50     | BAM (arXiv:1807.06514)                         | after stages 1, 2, 3 (paper)               |
| scse_resnet50    | scSE (arXiv:1803.02579)                        | every bottleneck                           |
| fca_resnet50     | FcaNet top-16 (arXiv:2012.11879)               | every bottleneck (official FcaNet)         |
| gsop_resnet50    | GSoP-Net1 (arXiv:1811.12006)                   | last bottleneck of each stage (official)   |
| eca_resnet50     | ECA, timm's EcaModule (arXiv:1910.03151)       | every bottleneck, k = 3/5/5/7 (official)   |
| gc_resnet50      | GC, timm's GlobalContext (arXiv:1904.11492)    | every bottleneck, add fusion, r = 16       |

How they differ from timm's own attention ResNets: timm's ``seresnet50`` is this same backbone with SE (no
separate model here: use it); ``ecaresnet50d`` and ``gcresnet50t`` use a deep / tiered stem and average-pool
downsampling (ResNet-D/T), and ``gcresnet50t`` uses GC with r = 1/8; ``skresnet50`` replaces the 3x3 conv by a
selective-kernel conv (it is not an after-BN module; the SKNet paper's numbers are for ResNeXt-50).

Deviation: the official GSoP-Net1 runs stage 4 at stride 16 (no down-sampling, 14x14 output). Here every
model keeps timm's ResNet-50 strides, so parameters are the same but GSoP's FLOPs are lower than the paper's.
"""
from functools import partial
from typing import Any, Callable, Dict, Optional, Union

from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import EcaModule, GlobalContext
from timm.models import generate_default_cfgs, register_model
from timm.models.resnet import Bottleneck, ResNet

from ..layers.create_attn import get_attn
from ._builder import build_model

__all__ = ['AttentionResNet']

_AttnArg = Union[str, Callable[..., nn.Module], None]


class AttentionResNet(ResNet):
    """timm's ``ResNet`` with attention layers given by name or class, in the blocks or between stages.

    Args:
        attn_layer: module applied in every bottleneck after the last BN (name from
            ``timm_attn.layers.get_attn``, class or partial); also accepted as ``block_args['attn_layer']``.
        attn_last_block_only: put ``attn_layer`` only in the last bottleneck of each stage (GSoP-Net).
        stage_attn_layer: module appended to the end of every stage but the last (BAM), same key prefix
            as the stage (``layer1.3`` for ResNet-50's first stage).
        **kwargs: timm ``ResNet`` arguments (block, layers, num_classes, ...).
    """

    def __init__(
            self,
            attn_layer: _AttnArg = None,
            attn_last_block_only: bool = False,
            stage_attn_layer: _AttnArg = None,
            block_args: Optional[Dict[str, Any]] = None,
            zero_init_last: bool = True,
            device=None,
            dtype=None,
            **kwargs,
    ):
        dd = {'device': device, 'dtype': dtype}
        block_args = dict(block_args or {})
        if attn_layer is None:
            attn_layer = block_args.pop('attn_layer', None)
        else:
            block_args.pop('attn_layer', None)
        attn_cls = get_attn(attn_layer)  # plugin names -> classes (timm's factory only knows its own)
        if not attn_last_block_only:
            block_args['attn_layer'] = attn_cls
        super().__init__(block_args=block_args, zero_init_last=zero_init_last, **dd, **kwargs)
        stages = [self.layer1, self.layer2, self.layer3, self.layer4]
        if attn_last_block_only and attn_cls is not None:
            for stage in stages:
                block = stage[-1]
                block.se = attn_cls(block.conv3.out_channels, **dd)  # timm's Bottleneck applies `se` after bn3
        stage_cls = get_attn(stage_attn_layer)
        if stage_cls is not None:
            for stage, info in zip(stages[:-1], self.feature_info[1:-1]):
                stage.append(stage_cls(info['num_chs'], **dd))
        if attn_last_block_only or stage_cls is not None:
            self.init_weights(zero_init_last=zero_init_last)  # timm's init for the modules added above


def _create_attention_resnet(variant: str, pretrained: bool = False, **kwargs) -> AttentionResNet:
    model_args = dict(block=Bottleneck, layers=(3, 4, 6, 3))
    return build_model(AttentionResNet, variant, pretrained, **dict(model_args, **kwargs))


def _cfg(**kwargs) -> Dict[str, Any]:
    return {
        'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7), 'crop_pct': 0.875,
        'interpolation': 'bilinear', 'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'conv1', 'classifier': 'fc', 'license': 'apache-2.0',
        **kwargs,
    }


# no pretrained weights: one untagged cfg per model (timm lists them as untrained); the notes give the paper's
# ImageNet-1k numbers for the module on ResNet-50
default_cfgs = generate_default_cfgs({
    'ge_resnet50': _cfg(
        paper_ids='arXiv:1810.12348', paper_name='Gather-Excite: Exploiting Feature Context in CNNs',
        origin_url='https://github.com/hujie-frank/GENet',
        notes=('paper: GE-theta-plus ResNet-50 outperforms ResNet-101 (no released numbers)',)),
    'spa_resnet50': _cfg(
        paper_name='SPANet: Spatial Pyramid Attention Network for Enhanced Image Recognition (ICME 2020)',
        origin_url='https://github.com/ma-xu/SPANet',
        notes=('paper abstract: +1.6% top-1 over ResNet-50 on ImageNet',)),
    'cbam_resnet50': _cfg(
        paper_ids='arXiv:1807.06521', paper_name='CBAM: Convolutional Block Attention Module',
        origin_url='https://github.com/Jongchan/attention-module',
        notes=('official README: top-1 77.622 (ImageNet-1k val)',)),
    'bam_resnet50': _cfg(
        paper_ids='arXiv:1807.06514', paper_name='BAM: Bottleneck Attention Module',
        origin_url='https://github.com/Jongchan/attention-module',
        notes=('official README: top-1 76.860 (ImageNet-1k val)',)),
    'scse_resnet50': _cfg(
        paper_ids='arXiv:1803.02579',
        paper_name="Concurrent Spatial and Channel 'Squeeze & Excitation' in Fully Convolutional Networks",
        notes=('paper: segmentation only (no ImageNet numbers)',)),
    'fca_resnet50': _cfg(
        paper_ids='arXiv:2012.11879', paper_name='FcaNet: Frequency Channel Attention Networks',
        origin_url='https://github.com/cfzd/FcaNet',
        notes=('official README: top-1 78.52 (re-evaluated 78.57)',)),
    'gsop_resnet50': _cfg(
        paper_ids='arXiv:1811.12006', paper_name='Global Second-order Pooling Convolutional Networks',
        origin_url='https://github.com/ZilinGao/Global-Second-order-Pooling-Convolutional-Networks',
        notes=('official README: GSoP-Net1 top-1 error 22.02 (top-1 77.98), stage 4 at stride 16',)),
    'eca_resnet50': _cfg(
        paper_ids='arXiv:1910.03151', paper_name='ECA-Net: Efficient Channel Attention for Deep CNNs',
        origin_url='https://github.com/BangguWu/ECANet',
        notes=('official README: ECA-Net50 top-1 77.42 (paper 77.48)',)),
    'gc_resnet50': _cfg(
        paper_ids='arXiv:1904.11492',
        paper_name='GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond',
        origin_url='https://github.com/xvjiarui/GCNet'),
})

# the paper's GC block: context modelling + bottleneck transform with LayerNorm, fusion by addition, r = 16
# the official ECA-Net50 (BangguWu/ECANet, `main.py -a eca_resnet50 --ksize 3557`): kernel 3 / 5 / 5 / 7 per stage,
# i.e. 3 * 3 + 4 * 5 + 6 * 5 + 3 * 7 = the paper's 80 added parameters (the adaptive rule alone gives 5, 5, 5, 7)
_ECA_KERNEL_BY_WIDTH = {256: 3, 512: 5, 1024: 5, 2048: 7}


def eca_official(channels: int, **kwargs) -> EcaModule:
    """ECA with the official ECA-Net50 kernel size of the stage (by block width; adaptive rule otherwise).
    timm's EcaModule ignores ``kernel_size`` when given ``channels``, so a fixed size goes without them."""
    kernel_size = _ECA_KERNEL_BY_WIDTH.get(channels)
    if kernel_size is None:
        return EcaModule(channels, **kwargs)
    return EcaModule(None, kernel_size=kernel_size, **kwargs)


_GC_PAPER = partial(GlobalContext, fuse_add=True, fuse_scale=False, rd_ratio=1. / 16)


def _attn_resnet(variant: str, pretrained: bool, attn: Dict[str, Any], **kwargs) -> AttentionResNet:
    if 'attn_layer' in (kwargs.get('block_args') or {}):  # the caller's block_args choose the block's module
        attn = {k: v for k, v in attn.items() if k != 'attn_layer'}
    return _create_attention_resnet(variant, pretrained, **dict(attn, **kwargs))


@register_model
def ge_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + GE-theta-plus (global extent), the paper's best variant, in every bottleneck."""
    return _attn_resnet('ge_resnet50', pretrained, dict(attn_layer='ge_theta_plus'), **kwargs)


@register_model
def spa_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + spatial pyramid attention (1, 2, 4 bins) in every bottleneck."""
    return _attn_resnet('spa_resnet50', pretrained, dict(attn_layer='spa'), **kwargs)


@register_model
def cbam_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + CBAM (channel then 7x7 spatial) in every bottleneck."""
    return _attn_resnet('cbam_resnet50', pretrained, dict(attn_layer='cbam'), **kwargs)


@register_model
def bam_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + BAM after stages 1, 2 and 3."""
    return _attn_resnet('bam_resnet50', pretrained, dict(stage_attn_layer='bam'), **kwargs)


@register_model
def scse_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + scSE (r = 16, additive aggregation) in every bottleneck."""
    return _attn_resnet('scse_resnet50', pretrained, dict(attn_layer='scse'), **kwargs)


@register_model
def fca_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """FcaNet-50: ResNet-50 + multi-spectral channel attention (top-16 frequencies) in every bottleneck."""
    return _attn_resnet('fca_resnet50', pretrained, dict(attn_layer='fca'), **kwargs)


@register_model
def gsop_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """GSoP-Net1 on ResNet-50: a GSoP block in the last bottleneck of each stage, global average pooling."""
    return _attn_resnet('gsop_resnet50', pretrained, dict(attn_layer='gsop', attn_last_block_only=True), **kwargs)


@register_model
def eca_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ECA-Net50: ResNet-50 + ECA (adaptive kernel size) in every bottleneck, on timm's plain ResNet-50."""
    return _attn_resnet('eca_resnet50', pretrained, dict(attn_layer=eca_official), **kwargs)


@register_model
def gc_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + GC block (add fusion, r = 16) in every bottleneck, on timm's plain ResNet-50."""
    return _attn_resnet('gc_resnet50', pretrained, dict(attn_layer=_GC_PAPER), **kwargs)
