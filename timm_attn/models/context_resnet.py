"""ResNet-50 classifiers with global-context modules (Non-local, A2, DANet, CCNet, ANL, OCR, IAU, RGA).

Built on timm's own ``timm.models.resnet.ResNet`` (no copy of its code): the modules are inserted into
the stage ``nn.Sequential``s after ``super().__init__()`` under names ``'{block}_{kind}'`` (e.g.
``layer3.1_nl``), so every backbone key stays timm's ``resnet50`` key and timm's resnet50 weights load
with ``strict=False`` with only the new modules missing. Stage outputs (``feature_info``,
``features_only``, ``forward_intermediates``) are the outputs of the stages with their modules.
Every module is a residual block that starts as the identity (a zero-initialised last BN / gamma / W),
except RGA, whose sigmoid gates multiply the features.

Placement (C = channels at that point; layerN = timm's stage, res(N+1) in the papers):
    nl_resnet50:   Non-local (timm ``NonLocalAttn``, embedded Gaussian, inner C/2, scaled dot product) after
                   blocks 1, 3 of layer2 and 1, 3, 5 of layer3: the 5-block ResNet-50 of Wang et al.
                   (CVPR 2018, sec. 4.1: "3 to res4 and 2 to res3, to every other residual block", as in
                   the official video-nonlocal-net); no max-pool subsampling of phi / g.
    a2_resnet50:   A2 double attention (m = n = C/4) at the same 5 places (2 in res3, 3 in res4); the
                   A2 paper reports ResNet-50 + A2 on ImageNet without a released placement.
    da_resnet50:   DANet PAM + CAM (summed) after layer4.
    cc_resnet50:   criss-cross attention, R = 2 (shared weights), after layer4.
    apnb_resnet50: APNB (Ck = Cv = C/2, pyramid 1, 3, 6, 8) after layer4.
    afnb_resnet50: AFNB after layer4: queries from layer4's output, keys / values from layer3's output
                   (layer4's input), Ck = Cv = 256 as the official AFNB(1024, 2048, 2048, 256, 256).
    ocr_resnet50:  OCR after layer4 with K soft object regions from an auxiliary 1x1 head. In a classifier
                   the regions are K learned regions, K = ``ocr_regions`` (default num_classes): the aux
                   head is a per-position classifier; ``forward_with_regions`` returns
                   (logits, region_logits (B, K, H, W)), and the OCR recipe's auxiliary loss becomes
                   ``CE(logits, y) + 0.4 * CE(region_logits.mean((2, 3)), y)``. ``forward`` returns the
                   class logits only (timm's train.py trains it without the aux loss).
    iau_resnet50:  IAU (CIAU then SIAU, 4 parts) after layer2 and layer3, as the official IAUnet.
    rga_resnet50:  RGA-S + RGA-C after each of layer1..layer4, as the official RGA ReID network; their
                   relation grids are the stage sizes at 224 px (56, 28, 14, 7), where the modules equal
                   the official ones; other input sizes pool the relation vectors (see
                   ``timm_attn.layers.context.rga``).
The DANet / CCNet / ANN / OCR segmentation heads' 3x3 channel-reduction convs are left out: the modules
act on the backbone's C = 2048 features directly.
"""
from collections import OrderedDict
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import NonLocalAttn
from timm.models import generate_default_cfgs, register_model
from timm.models.resnet import Bottleneck, ResNet

from ..layers.context.asymmetric_nonlocal import FusionNonLocal
from ..layers.create_attn import get_attn
from ..layers.context.object_context import ObjectContext
from ..layers.context.rga import RelationAwareAttention
from ._builder import build_model

__all__ = ['ContextResNet', 'ContextStage', 'FusionStage', 'CONTEXT_PLACEMENT']

_STAGES = ('layer1', 'layer2', 'layer3', 'layer4')

# kind -> {stage index: blocks after which a module goes (-1: after the last block)}
CONTEXT_PLACEMENT: Dict[str, Dict[int, Tuple[int, ...]]] = {
    'nl': {1: (1, 3), 2: (1, 3, 5)},
    'a2': {1: (1, 3), 2: (1, 3, 5)},
    'da': {3: (-1,)},
    'cc': {3: (-1,)},
    'apnb': {3: (-1,)},
    'afnb': {3: (-1,)},
    'ocr': {3: (-1,)},
    'iau': {1: (-1,), 2: (-1,)},
    'rga': {0: (-1,), 1: (-1,), 2: (-1,), 3: (-1,)},
}


def _make_context(
        kind: str,
        stage_chs: Tuple[int, ...],
        stage_sizes: Tuple[int, ...],
        stage: int,
        num_regions: int,
        dd,
) -> nn.Module:
    """The ``kind`` module for stage ``stage`` (``stage_chs`` / ``stage_sizes``: every stage's output channels and
    side at 224 px, from the model's ``feature_info``)."""
    chs = stage_chs[stage]
    if kind in ('a2', 'da', 'cc', 'apnb', 'iau'):
        return get_attn(kind)(chs, **dd)  # the registered defaults are the placement's (cc: R = 2)
    if kind == 'nl':
        return NonLocalAttn(chs, use_scale=True, rd_ratio=1 / 2, **dd)
    if kind == 'afnb':
        return FusionNonLocal(chs, stage_chs[stage - 1], key_channels=256, value_channels=256, **dd)
    if kind == 'ocr':
        return ObjectContext(chs, num_regions, **dd)
    if kind == 'rga':
        return RelationAwareAttention(chs, stage_sizes[stage], **dd)
    raise ValueError(f'unknown context module {kind!r}, expected one of {sorted(CONTEXT_PLACEMENT)}')


class ContextStage(nn.Sequential):
    """A timm ResNet stage (its blocks keep the keys '0', '1', ...) with context modules inserted after
    some blocks as '{block}_{kind}'."""

    def __init__(self, blocks: nn.Sequential, inserts: Optional[Dict[int, Tuple[str, nn.Module]]] = None):
        inserts = inserts or {}
        modules = []
        for i, block in enumerate(blocks):
            modules.append((str(i), block))
            if i in inserts:
                name, module = inserts[i]
                modules.append((f'{i}_{name}', module))
        super().__init__(OrderedDict(modules))
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return self.forward_checkpointed(x)
        for m in self:
            x = m(x)
        return x

    @torch.jit.unused
    def forward_checkpointed(self, x: torch.Tensor) -> torch.Tensor:
        """Per-module activation checkpointing."""
        for m in self:
            x = checkpoint(m, x, use_reentrant=False)
        return x


class FusionStage(ContextStage):
    """A ``ContextStage`` whose ``FusionNonLocal`` gets (stage input, current features). A class of its own:
    TorchScript resolves the isinstance below only where a FusionNonLocal exists in the model."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return self.forward_checkpointed(x)
        low = x
        for m in self:
            if isinstance(m, FusionNonLocal):
                x = m(low, x)
            else:
                x = m(x)
        return x

    @torch.jit.unused
    def forward_checkpointed(self, x: torch.Tensor) -> torch.Tensor:
        """Per-module activation checkpointing, the FusionNonLocal getting (stage input, current features)."""
        low = x
        for m in self:
            if isinstance(m, FusionNonLocal):
                x = checkpoint(m, low, x, use_reentrant=False)
            else:
                x = checkpoint(m, x, use_reentrant=False)
        return x


class ContextResNet(ResNet):
    """timm's ResNet with context modules (``CONTEXT_PLACEMENT[context]``) inserted into its stages.

    Args:
        context: 'nl', 'a2', 'da', 'cc', 'apnb', 'afnb', 'ocr', 'iau' or 'rga'.
        ocr_regions: K for 'ocr' (default: num_classes, or 1000 when num_classes is 0).
        **kwargs: timm ``ResNet`` arguments (block, layers, num_classes, in_chans, drop_rate, ...).
    """

    def __init__(self, context: str, ocr_regions: Optional[int] = None, device=None, dtype=None, **kwargs):
        if context not in CONTEXT_PLACEMENT:
            raise ValueError(f'unknown context module {context!r}, expected one of {sorted(CONTEXT_PLACEMENT)}')
        super().__init__(device=device, dtype=dtype, **kwargs)
        dd = {'device': device, 'dtype': dtype}
        self.context = context
        num_regions = ocr_regions or self.num_classes or 1000
        placement = CONTEXT_PLACEMENT[context]
        # every stage's channels and side at 224 px from timm's feature_info (entry 0 is the stem), so `block` /
        # `layers` / `output_stride` overrides build modules of the right width
        stage_info = self.feature_info[1:]
        stage_chs = tuple(int(info['num_chs']) for info in stage_info)
        stage_sizes = tuple(224 // int(info['reduction']) for info in stage_info)
        for s, name in enumerate(_STAGES):
            blocks = getattr(self, name)
            inserts = {}
            for i in placement.get(s, ()):
                i = i % len(blocks)
                inserts[i] = (context, _make_context(context, stage_chs, stage_sizes, s, num_regions, dd))
            stage_cls = FusionStage if context == 'afnb' and inserts else ContextStage
            setattr(self, name, stage_cls(blocks, inserts))

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        # the stages checkpoint their own modules (see ContextStage.forward_checkpointed)
        for name in _STAGES:
            layer = getattr(self, name)
            if isinstance(layer, ContextStage):
                layer.grad_checkpointing = enable

    @torch.jit.ignore
    def forward_with_regions(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """ocr_resnet50: (class logits, auxiliary region logits (B, K, H, W))."""
        if self.context != 'ocr':
            raise ValueError(f'forward_with_regions needs the OCR model, this one has {self.context!r} modules')
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        regions = x
        for m in self.layer4:
            if isinstance(m, ObjectContext):
                x, regions = m.forward_with_regions(x)
            else:
                x = m(x)
        return self.forward_head(x), regions


def _create_context_resnet(variant: str, context: str, pretrained: bool = False, **kwargs) -> ContextResNet:
    model_args = dict(block=Bottleneck, layers=(3, 4, 6, 3), context=context)
    return build_model(
        ContextResNet, variant, pretrained,
        feature_cfg=dict(flatten_sequential=False),
        **dict(model_args, **kwargs),
    )


def _cfg(**kwargs) -> Dict[str, Any]:
    return {
        'url': '', 'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7),
        'crop_pct': 0.875, 'interpolation': 'bilinear', 'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'conv1', 'classifier': 'fc', 'license': 'apache-2.0',
        **kwargs,
    }


_PAPERS = {
    'nl_resnet50': ('arXiv:1711.07971', 'Non-local Neural Networks',
                    'https://github.com/facebookresearch/video-nonlocal-net'),
    'a2_resnet50': ('arXiv:1810.11579', 'A^2-Nets: Double Attention Networks', ''),
    'da_resnet50': ('arXiv:1809.02983', 'Dual Attention Network for Scene Segmentation',
                    'https://github.com/junfu1115/DANet'),
    'cc_resnet50': ('arXiv:1811.11721', 'CCNet: Criss-Cross Attention for Semantic Segmentation',
                    'https://github.com/speedinghzl/CCNet'),
    'apnb_resnet50': ('arXiv:1908.07678', 'Asymmetric Non-local Neural Networks for Semantic Segmentation',
                      'https://github.com/MendelXu/ANN'),
    'afnb_resnet50': ('arXiv:1908.07678', 'Asymmetric Non-local Neural Networks for Semantic Segmentation',
                      'https://github.com/MendelXu/ANN'),
    'ocr_resnet50': ('arXiv:1909.11065', 'Object-Contextual Representations for Semantic Segmentation',
                     'https://github.com/HRNet/HRNet-Semantic-Segmentation'),
    'iau_resnet50': ('arXiv:2009.01035',
                     'IAUnet: Global Context-Aware Feature Learning for Person Re-Identification',
                     'https://github.com/blue-blue272/ImgReID-IAnet'),
    'rga_resnet50': ('arXiv:1904.02998', 'Relation-Aware Global Attention for Person Re-identification',
                     'https://github.com/microsoft/Relation-Aware-Global-Attention-Networks'),
}

# no weights are published for these: untagged cfgs without a source (no pretrained tag, no card)
default_cfgs = generate_default_cfgs({
    name: _cfg(paper_ids=paper_id, paper_name=paper_name, origin_url=origin)
    for name, (paper_id, paper_name, origin) in _PAPERS.items()
})


@register_model
def nl_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with 5 Non-local blocks (2 in layer2, 3 in layer3)."""
    return _create_context_resnet('nl_resnet50', 'nl', pretrained, **kwargs)


@register_model
def a2_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with 5 A2 double attention blocks (2 in layer2, 3 in layer3)."""
    return _create_context_resnet('a2_resnet50', 'a2', pretrained, **kwargs)


@register_model
def da_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with DANet position + channel attention after layer4."""
    return _create_context_resnet('da_resnet50', 'da', pretrained, **kwargs)


@register_model
def cc_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with recurrent criss-cross attention (R = 2) after layer4."""
    return _create_context_resnet('cc_resnet50', 'cc', pretrained, **kwargs)


@register_model
def apnb_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with an asymmetric pyramid non-local block after layer4."""
    return _create_context_resnet('apnb_resnet50', 'apnb', pretrained, **kwargs)


@register_model
def afnb_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with an asymmetric fusion non-local block fusing layer3 into layer4."""
    return _create_context_resnet('afnb_resnet50', 'afnb', pretrained, **kwargs)


@register_model
def ocr_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with an OCR block (K soft regions from an auxiliary head) after layer4."""
    return _create_context_resnet('ocr_resnet50', 'ocr', pretrained, **kwargs)


@register_model
def iau_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with IAU blocks after layer2 and layer3."""
    return _create_context_resnet('iau_resnet50', 'iau', pretrained, **kwargs)


@register_model
def rga_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with RGA-S + RGA-C after every stage."""
    return _create_context_resnet('rga_resnet50', 'rga', pretrained, **kwargs)
