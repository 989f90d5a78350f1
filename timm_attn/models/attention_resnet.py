"""ResNet-50 with attention modules: timm's ``ResNet``, each module placed where its paper puts it.

Every model here is ``timm.models.resnet.ResNet`` (Bottleneck, layers 3-4-6-3, 7x7 stem: timm's ``resnet50``,
no copy of its code) plus one attention module, placed by one table, ``ZOO_RESNET50`` (model -> module, where,
its arguments, paper). The backbone's keys stay those of timm's ``resnet50``: its weights load with
``strict=False`` and only the attention modules' keys missing. Four placements:

    every block      after the last BN of every bottleneck, before the residual add (timm's ``Bottleneck.se``
                     slot, filled through ``block_args=dict(attn_layer=...)``)
    last blocks      the same slot, in the last bottleneck of each stage only (GSoP-Net)
    after stages     appended to the end of every stage but the last (BAM), same key prefix as the stage
                     (``layer1.3`` for ResNet-50's first stage)
    after blocks     a context module inserted after some blocks of a stage as ``'{block}_{kind}'``
                     (``layer3.1_nl``; block -1 = the last one): ``ContextResNet``

| model         | module (paper)                                    | placement                                      |
|---------------|---------------------------------------------------|------------------------------------------------|
| ge_resnet50   | GE-theta-plus, global extent (arXiv:1810.12348)   | every bottleneck (paper)                       |
| spa_resnet50  | SPA (ICME 2020)                                   | every bottleneck (official SPANet)             |
| cbam_resnet50 | CBAM (arXiv:1807.06521)                           | every bottleneck (paper)                       |
| bam_resnet50  | BAM (arXiv:1807.06514)                            | after stages 1, 2, 3 (paper)                   |
| scse_resnet50 | scSE (arXiv:1803.02579)                           | every bottleneck                               |
| fca_resnet50  | FcaNet top-16 (arXiv:2012.11879)                  | every bottleneck (official FcaNet)             |
| gsop_resnet50 | GSoP-Net1 (arXiv:1811.12006)                      | last bottleneck of each stage (official)       |
| gsop2_resnet50| GSoP-Net2 (arXiv:1811.12006)                      | last bottleneck of stages 1-3, iSQRT-COV head  |
| eca_resnet50  | ECA, timm's EcaModule (arXiv:1910.03151)          | every bottleneck, k = 3/5/5/7 (official)       |
| gc_resnet50   | GC, timm's GlobalContext (arXiv:1904.11492)       | every bottleneck, add fusion, r = 16           |
| nl_resnet50   | Non-local, timm's NonLocalAttn (arXiv:1711.07971) | after blocks 1, 3 of layer2, 1, 3, 5 of layer3 |
| a2_resnet50   | A2 double attention (arXiv:1810.11579)            | the same 5 places                              |
| da_resnet50   | DANet PAM + CAM, summed (arXiv:1809.02983)        | after layer4                                   |
| cc_resnet50   | criss-cross attention, R = 2 (arXiv:1811.11721)   | after layer4                                   |
| apnb_resnet50 | APNB (arXiv:1908.07678)                           | after layer4                                   |
| afnb_resnet50 | AFNB (arXiv:1908.07678)                           | after layer4, fusing layer3's output           |
| ocr_resnet50  | OCR (arXiv:1909.11065)                            | after layer4                                   |
| iau_resnet50  | IAU (arXiv:2009.01035)                            | after layer2 and layer3 (official IAUnet)      |
| rga_resnet50  | RGA-S + RGA-C (arXiv:1904.02998)                  | after every stage (official RGA)               |

What a module needs to know about where it sits (its stage's feature size, its stage index, the stage's input
width) comes from the model's ``feature_info`` (``Stage``) through ``STAGE_ARGS``, never from a channel count:
FcaNet's DCT size and GE's gather kernel are the stage's side at ``img_size`` (224: 56, 28, 14, 7 on
ResNet-50 and on ResNet-18/34 alike), GSoP's reduction conv has stride 2 in the first stage (the official
``planes == 64``), ECA-Net50's kernels are 3/5/5/7 by stage (official ``--ksize 3557``: 3 * 3 + 4 * 5 + 6 * 5
+ 3 * 7 = the paper's 80 added parameters; the adaptive rule alone gives 5, 5, 5, 7), RGA's relation grid is
the stage's size, AFNB's low-level input is the stage's input.

``ZOO_DEEPER``: eca_resnet101 (ECA-Net101, official kernels 3/3/5/7), fca_resnet101 (FcaNet-101). GC's
LayerNorm has the official eps, 1e-5 (``gc_official``; timm's LayerNorm2d: 1e-6).

Official checkpoints (``.in1k`` tags; docs/zoo.md): cbam_resnet50, bam_resnet50 (Jongchan/attention-module),
eca_resnet50 / 101 (BangguWu/ECANet), fca_resnet50 / 101 (cfzd/FcaNet) load their published files through
``checkpoint_filter_fn`` (torchvision-style backbone keys, which timm's ResNet shares; the attention modules
renamed). A tag builds the official network where it differs from the registered model (``TAG_ARGS``):
``bam_resnet50.in1k`` multiplies BAM's branches as the official code (the paper, and plain ``bam_resnet50``,
sums them). ``checkpoint_filter_fn`` also renames the GSoP blocks of a checkpoint written by the official
GSoP-Net code (whose README links no file: no tag), for ``gsop_resnet50(last_stage_stride=1)``.

Notes on the context models:
    nl:   embedded Gaussian, inner C/2, scaled dot product; the 5-block ResNet-50 of Wang et al. (CVPR 2018,
          sec. 4.1: "3 to res4 and 2 to res3, to every other residual block", as the official
          video-nonlocal-net); no max-pool subsampling of phi / g. The A2 paper reports ResNet-50 + A2 on
          ImageNet without a released placement: A2 (m = n = C/4) takes the same 5 places.
    afnb: queries from layer4's output, keys / values from layer3's output (layer4's input), Ck = Cv = 256
          as the official AFNB(1024, 2048, 2048, 256, 256).
    ocr:  in a classifier the soft object regions are K learned regions, K = ``ocr_regions`` (default
          num_classes): the aux head is a per-position classifier; ``forward_with_regions`` returns
          (logits, region_logits (B, K, H, W)), and the OCR recipe's auxiliary loss becomes
          ``CE(logits, y) + 0.4 * CE(region_logits.mean((2, 3)), y)``. ``forward`` returns the class logits
          only (timm's train.py trains it without the aux loss).
    rga:  relation grids of the stage sizes at ``img_size``, where the modules equal the official ones;
          other input sizes pool the relation vectors (see ``timm_attn.layers.context.rga``).
The DANet / CCNet / ANN / OCR segmentation heads' 3x3 channel-reduction convs are left out: the modules act
on the backbone's C = 2048 features directly. Every context module is a residual block that starts as the
identity (a zero-initialised last BN / gamma / W), except RGA, whose sigmoid gates multiply the features.

How they differ from timm's own attention ResNets: timm's ``seresnet50`` is this same backbone with SE (no
separate model here: use it); ``ecaresnet50d`` and ``gcresnet50t`` use a deep / tiered stem and average-pool
downsampling (ResNet-D/T), and ``gcresnet50t`` uses GC with r = 1/8; ``skresnet50`` replaces the 3x3 conv by a
selective-kernel conv (it is not an after-BN module; the SKNet paper's numbers are for ResNeXt-50).

GSoP: the official GSoP-Net1 runs stage 4 at stride 1 (``last_stage_stride=1``: no down-sampling and no
dilation, output stride 16, 14x14 at 224 px, the official head ``nn.AvgPool2d(14)``); plain ``gsop_resnet50``
keeps timm's ResNet-50 strides (same parameters, a quarter of stage 4's FLOPs). The other
official attention modes are ``GSoPAttention(mode=...)``: ``attn_layer=partial(GSoPAttention, mode='position')``.
``gsop2_resnet50`` is the official GSoP-Net2 (``SecondOrderResNet``): no GSoP block in stage 4, stage 4 at stride
1, and second-order pooling (``SecondOrderPool``) instead of the average pool.
"""
import re
from collections import OrderedDict
from functools import partial
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import EcaModule, GlobalContext, NonLocalAttn
from timm.models import generate_default_cfgs, register_model
from timm.models._builder import resolve_pretrained_cfg
from timm.models.resnet import Bottleneck, ResNet

from ..card_data import attention_resnet as card
from ..layers.context.asymmetric_nonlocal import FusionNonLocal
from ..layers.context.object_context import ObjectContext
from ..layers.context.rga import RelationAwareAttention
from ..layers.create_attn import get_attn
from ..layers.gates.fca import MultiSpectralAttention
from ..layers.gates.gather_excite import GatherExcite
from ..layers.gates.gsop import GSoPAttention, SecondOrderPool
from ..hub import hub_id
from ._builder import build_model
from ._checkpoint import check_state_dict, map_official_resnet

__all__ = ['AttentionResNet', 'ContextResNet', 'ContextStage', 'FusionStage', 'Placement', 'SecondOrderResNet', 'Stage',
           'STAGE_ARGS', 'TAG_ARGS', 'ZOO_DEEPER', 'ZOO_RESNET50', 'checkpoint_filter_fn']

_AttnArg = Union[str, Callable[..., nn.Module], None]
_STAGES = ('layer1', 'layer2', 'layer3', 'layer4')


class Stage(NamedTuple):
    """What a module may need to know about the stage it is built in, from the model's ``feature_info``."""
    index: int  # 0 for layer1
    in_chs: int  # channels entering the stage
    num_chs: int  # channels leaving it (every block's output)
    reduction: int  # the stage's stride w.r.t. the input
    feat_size: int  # side of its feature map for an img_size x img_size input
    num_classes: int


def eca_official(channels: int, kernel_size: Optional[int] = None, stage_index: int = 0,
                 kernel_sizes: Tuple[int, ...] = (3, 5, 5, 7), **kwargs) -> EcaModule:
    """ECA with a fixed kernel size (timm's EcaModule ignores ``kernel_size`` when given ``channels``):
    ``kernel_size``, else ``kernel_sizes[stage_index]`` (the official ``--ksize``: 3557 for ECA-Net50,
    3357 for ECA-Net101)."""
    k = kernel_size or kernel_sizes[min(stage_index, len(kernel_sizes) - 1)]
    return EcaModule(None, kernel_size=k, **kwargs)


def gc_official(channels: int, **kwargs) -> GlobalContext:
    """timm's GlobalContext with the official GCNet's LayerNorm epsilon (``nn.LayerNorm([planes, 1, 1])``:
    1e-5; timm's LayerNorm2d defaults to 1e-6)."""
    module = GlobalContext(channels, **kwargs)
    for m in module.modules():
        if isinstance(m, nn.LayerNorm):
            m.eps = 1e-5
    return module


# what a layer's constructor takes from its stage, by layer class (however the layer was chosen: by a table
# row, by name or by class); arguments the caller already bound in a partial are kept
STAGE_ARGS: Dict[Callable[..., nn.Module], Callable[[Stage], Dict[str, Any]]] = {
    MultiSpectralAttention: lambda s: dict(dct_size=s.feat_size),  # official: the stage's side at 224
    GatherExcite: lambda s: dict(feat_size=s.feat_size),  # global extent: a kernel over the whole map
    GSoPAttention: lambda s: dict(reduce_stride=2 if s.index == 0 else 1),  # official: `planes == 64`
    eca_official: lambda s: dict(stage_index=s.index),  # official --ksize by stage (eca_official's kernel_sizes)
    RelationAwareAttention: lambda s: dict(spatial_size=s.feat_size),
    FusionNonLocal: lambda s: dict(low_channels=s.in_chs),
    ObjectContext: lambda s: dict(num_regions=s.num_classes or 1000),
}


def _at_stage(layer: Callable[..., nn.Module], stage: Stage) -> Callable[..., nn.Module]:
    """``layer`` with the arguments ``STAGE_ARGS`` gives it for ``stage``."""
    rule = STAGE_ARGS.get(getattr(layer, 'func', layer))
    if rule is None:
        return layer
    bound = getattr(layer, 'keywords', {})
    return partial(layer, **{k: v for k, v in rule(stage).items() if k not in bound})


class AttentionResNet(ResNet):
    """timm's ``ResNet`` with attention layers given by name or class, in the blocks or after the stages.

    Args:
        attn_layer: module applied in every block after the last BN (name from
            ``timm_attn.layers.get_attn``, class or partial); also accepted as ``block_args['attn_layer']``.
        attn_last_block_only: put ``attn_layer`` only in the last block of each stage (GSoP-Net).
        attn_stages: indices of the stages that get ``attn_layer`` (default: all; GSoP-Net2: 0, 1, 2).
        stage_attn_layer: module appended to the end of every stage but the last (BAM), same key prefix
            as the stage (``layer1.3`` for ResNet-50's first stage).
        img_size: input side the size-dependent modules are built for (FcaNet's DCT, GE's kernel, RGA's
            grid); other sizes work (adaptive pooling), the modules equal the official ones at this one.
        last_stage_stride: 2 (timm's ResNet) or 1: the last stage without down-sampling and without dilation
            (the official GSoP-Net: output stride 16), its first block's strided convs set to stride 1.
        **kwargs: timm ``ResNet`` arguments (block, layers, num_classes, ...).
    """

    def __init__(
            self,
            attn_layer: _AttnArg = None,
            attn_last_block_only: bool = False,
            attn_stages: Optional[Sequence[int]] = None,
            stage_attn_layer: _AttnArg = None,
            img_size: int = 224,
            last_stage_stride: int = 2,
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
        stage_cls = get_attn(stage_attn_layer)
        if attn_stages is not None and any(i not in range(len(_STAGES)) for i in attn_stages):
            raise ValueError(f'attn_stages must be stage indices 0-{len(_STAGES) - 1}, got {tuple(attn_stages)}')
        every_block = attn_cls is not None and not attn_last_block_only and attn_stages is None
        # timm builds the blocks with an empty `se` slot (timm's key order), filled below once feature_info
        # gives each stage
        block_args['attn_layer'] = nn.Identity if every_block else None
        super().__init__(block_args=block_args, zero_init_last=zero_init_last, **dd, **kwargs)
        self.img_size = img_size
        if last_stage_stride != 2:
            self._undo_last_downsample(last_stage_stride)
        for stage, blocks in zip(self.stage_info(), self._stage_modules()):
            if attn_cls is not None and (attn_stages is None or stage.index in attn_stages):
                layer = _at_stage(attn_cls, stage)
                for block in blocks[-1:] if attn_last_block_only else blocks:
                    block.se = layer(stage.num_chs, **dd)  # timm's blocks apply `se` after their last BN
            if stage_cls is not None and stage.index < len(_STAGES) - 1:
                blocks.append(_at_stage(stage_cls, stage)(stage.num_chs, **dd))
        if attn_cls is not None or stage_cls is not None:
            self.init_weights(zero_init_last=zero_init_last)  # timm's init for the modules added above

    def _stage_modules(self) -> List[nn.Sequential]:
        return [getattr(self, name) for name in _STAGES]

    def _undo_last_downsample(self, stride: int) -> None:
        """``last_stage_stride=1``: the last stage's first block (3x3 conv, shortcut conv) at stride 1, as the
        official GSoP-Net's ``layer4`` (timm's ``output_stride=16`` dilates the stage instead)."""
        if stride != 1:
            raise ValueError(f'last_stage_stride must be 1 or 2, got {stride}')
        first, info = self._stage_modules()[-1][0], self.feature_info[-1]
        strided = [m for m in first.modules() if m is not first and getattr(m, 'stride', 1) not in (1, (1, 1))]
        if info['reduction'] != 32 or not strided or any(not isinstance(m, nn.Conv2d) for m in strided):
            raise ValueError('last_stage_stride=1 needs a stride-32 ResNet whose last stage down-samples by '
                             f'strided convs only (no output_stride, avg_down or aa_layer), found {strided}')
        for m in strided:
            m.stride = (1, 1)
        first.stride = 1  # timm's block records its stride (not used in forward)
        info['reduction'] = 16

    def stage_info(self) -> List[Stage]:
        """Every stage's ``Stage``, from timm's ``feature_info`` (entry 0 is the stem)."""
        info = self.feature_info
        return [
            Stage(i, int(prev['num_chs']), int(cur['num_chs']), int(cur['reduction']),
                  self.img_size // int(cur['reduction']), self.num_classes)
            for i, (prev, cur) in enumerate(zip(info[:-1], info[1:]))
        ]


class SecondOrderResNet(AttentionResNet):
    """``AttentionResNet`` whose global average pool is global second-order pooling (``SecondOrderPool``:
    iSQRT-COV, the official GSoP-Net2 head): ``global_pool`` 'isqrt' (default) or '' (no pooling: the unpooled
    features, with ``num_classes=0``).

    ``num_features`` stays the last stage's width (``forward_features``); ``head_hidden_size`` is the pooled
    width, dim * (dim + 1) / 2 (32,896 for dim 256), which the classifier ``fc`` takes.

    Args:
        isqrt_dim: channels of the pooling's reduction conv (official ``isqrt_dim``: 256).
        isqrt_iterations: Newton-Schulz iterations (official: 3).
        **kwargs: ``AttentionResNet`` / timm ``ResNet`` arguments.
    """

    def __init__(self, num_classes: int = 1000, global_pool: str = 'isqrt', isqrt_dim: int = 256,
                 isqrt_iterations: int = 3, device=None, dtype=None, **kwargs):
        _check_second_order_pool(num_classes, global_pool)
        super().__init__(num_classes=num_classes, device=device, dtype=dtype, **kwargs)  # timm's avg pool, replaced
        self.isqrt_dim, self.isqrt_iterations = isqrt_dim, isqrt_iterations
        self._set_head(num_classes, global_pool, device=device, dtype=dtype)

    def _set_head(self, num_classes: int, global_pool: str, device=None, dtype=None) -> None:
        dd = {'device': device, 'dtype': dtype}
        if global_pool == 'isqrt':
            self.global_pool = SecondOrderPool(self.num_features, self.isqrt_dim, self.isqrt_iterations, **dd)
            nn.init.kaiming_normal_(self.global_pool.reduce.weight, mode='fan_out', nonlinearity='relu')
            self.head_hidden_size = self.global_pool.num_features
        else:
            self.global_pool = nn.Identity()
            self.head_hidden_size = self.num_features
        self._set_fc(num_classes, **dd)

    def _set_fc(self, num_classes: int, device=None, dtype=None) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.head_hidden_size, num_classes, device=device, dtype=dtype) if num_classes \
            else nn.Identity()

    @torch.jit.ignore
    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """A new classifier. ``global_pool`` None keeps the current pooling (and its trained reduction conv), or
        builds a new second-order pooling where a classifier follows unpooled features ('')."""
        current = 'isqrt' if isinstance(self.global_pool, SecondOrderPool) else ''
        if global_pool is None:
            global_pool = 'isqrt' if num_classes else current
        _check_second_order_pool(num_classes, global_pool)
        ref = self.conv1.weight
        if global_pool == current:
            self._set_fc(num_classes, device=ref.device, dtype=ref.dtype)
        else:
            self._set_head(num_classes, global_pool, device=ref.device, dtype=ref.dtype)
        self.global_pool.train(self.training)
        self.fc.train(self.training)


def _check_second_order_pool(num_classes: int, global_pool: str) -> None:
    if global_pool not in ('isqrt', ''):
        raise ValueError(f"global_pool must be 'isqrt' (second-order pooling) or '' (none), got {global_pool!r}")
    if global_pool == '' and num_classes:
        raise ValueError("global_pool='' (unpooled features) needs num_classes=0: the classifier takes the "
                         f'second-order pooled features, got num_classes={num_classes}')


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


class ContextResNet(AttentionResNet):
    """``AttentionResNet`` with the context modules of ``ZOO_RESNET50[f'{context}_resnet50']`` inserted
    after blocks of its stages (``ContextStage``).

    Args:
        context: 'nl', 'a2', 'da', 'cc', 'apnb', 'afnb', 'ocr', 'iau' or 'rga'.
        ocr_regions: K for 'ocr' (default: num_classes, or 1000 when num_classes is 0).
        context_args: keyword arguments of the context module, e.g. ``dict(scale=2)`` for APNB / OCR (the
            official attention-block down-sampling) or ``dict(gather_scale=2.)`` for OCR.
        **kwargs: ``AttentionResNet`` / timm ``ResNet`` arguments (block, layers, num_classes, img_size, ...).
    """

    def __init__(self, context: str, ocr_regions: Optional[int] = None, context_args: Optional[Dict[str, Any]] = None,
                 device=None, dtype=None, **kwargs):
        place = ZOO_RESNET50.get(f'{context}_resnet50')
        if place is None or not isinstance(place.where, dict):
            kinds = sorted(n.split('_')[0] for n, p in ZOO_RESNET50.items() if isinstance(p.where, dict))
            raise ValueError(f'unknown context module {context!r}, expected one of {kinds}')
        super().__init__(device=device, dtype=dtype, **kwargs)
        dd = {'device': device, 'dtype': dtype}
        self.context = context
        layer = place.layer_fn()
        if ocr_regions and context == 'ocr':
            layer = partial(layer, num_regions=ocr_regions)
        if context_args:
            layer = partial(layer, **context_args)
        for stage, name in zip(self.stage_info(), _STAGES):
            blocks = getattr(self, name)
            inserts = {i % len(blocks): (context, _at_stage(layer, stage)(stage.num_chs, **dd))
                       for i in place.where.get(stage.index, ())}
            stage_cls = FusionStage if context == 'afnb' and inserts else ContextStage
            setattr(self, name, stage_cls(blocks, inserts))

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        # the stages checkpoint their own modules (see ContextStage.forward_checkpointed)
        for layer in self._stage_modules():
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


EVERY_BLOCK, LAST_BLOCKS, AFTER_STAGES = 'every block', 'last blocks', 'after stages'


class Placement(NamedTuple):
    """One row of ``ZOO_RESNET50``: a module, where it goes, its arguments and its paper.

    ``where``: ``EVERY_BLOCK``, ``LAST_BLOCKS``, ``AFTER_STAGES`` or {stage index: blocks after which a
    context module goes (-1: the last)}. ``paper``: the citation (arXiv id, else the venue); titles, official
    code and the paper's numbers are card data (``timm_attn.card_data.attention_resnet``)."""
    layer: Union[str, Callable[..., nn.Module]]
    where: Union[str, Dict[int, Tuple[int, ...]]]
    args: Dict[str, Any]
    paper: str

    def layer_fn(self) -> Callable[..., nn.Module]:
        layer = get_attn(self.layer)
        return partial(layer, **self.args) if self.args else layer


_NL_PLACES = {1: (1, 3), 2: (1, 3, 5)}  # 2 in res3, 3 in res4: every other block
_AFTER_LAYER4 = {3: (-1,)}

ZOO_RESNET50: Dict[str, Placement] = {
    'ge_resnet50': Placement('ge_theta_plus', EVERY_BLOCK, {}, 'arXiv:1810.12348'),
    'spa_resnet50': Placement('spa', EVERY_BLOCK, {}, 'ICME 2020'),
    'cbam_resnet50': Placement('cbam', EVERY_BLOCK, {}, 'arXiv:1807.06521'),
    'bam_resnet50': Placement('bam', AFTER_STAGES, {}, 'arXiv:1807.06514'),
    'scse_resnet50': Placement('scse', EVERY_BLOCK, {}, 'arXiv:1803.02579'),
    'fca_resnet50': Placement('fca', EVERY_BLOCK, {}, 'arXiv:2012.11879'),
    'gsop_resnet50': Placement('gsop', LAST_BLOCKS, {}, 'arXiv:1811.12006'),
    'gsop2_resnet50': Placement('gsop', LAST_BLOCKS, {}, 'arXiv:1811.12006'),
    'eca_resnet50': Placement(eca_official, EVERY_BLOCK, {}, 'arXiv:1910.03151'),
    'gc_resnet50': Placement(gc_official, EVERY_BLOCK, dict(fuse_add=True, fuse_scale=False, rd_ratio=1. / 16),
                             'arXiv:1904.11492'),
    'nl_resnet50': Placement(NonLocalAttn, _NL_PLACES, dict(use_scale=True, rd_ratio=1 / 2), 'arXiv:1711.07971'),
    'a2_resnet50': Placement('a2', _NL_PLACES, {}, 'arXiv:1810.11579'),
    'da_resnet50': Placement('da', _AFTER_LAYER4, {}, 'arXiv:1809.02983'),
    'cc_resnet50': Placement('cc', _AFTER_LAYER4, {}, 'arXiv:1811.11721'),  # registered default: R = 2
    'apnb_resnet50': Placement('apnb', _AFTER_LAYER4, {}, 'arXiv:1908.07678'),
    'afnb_resnet50': Placement(FusionNonLocal, _AFTER_LAYER4, dict(key_channels=256, value_channels=256),
                               'arXiv:1908.07678'),
    'ocr_resnet50': Placement(ObjectContext, _AFTER_LAYER4, {}, 'arXiv:1909.11065'),
    'iau_resnet50': Placement('iau', {1: (-1,), 2: (-1,)}, {}, 'arXiv:2009.01035'),
    'rga_resnet50': Placement('rga', {0: (-1,), 1: (-1,), 2: (-1,), 3: (-1,)}, {}, 'arXiv:1904.02998'),
}

# deeper networks of the zoo, for their official checkpoints: model -> (placement, blocks per stage)
ZOO_DEEPER: Dict[str, Tuple[Placement, Tuple[int, ...]]] = {
    'eca_resnet101': (Placement(partial(eca_official, kernel_sizes=(3, 3, 5, 7)), EVERY_BLOCK, {}, 'arXiv:1910.03151'),
                      (3, 4, 23, 3)),  # official eca_resnet101_k3357
    'fca_resnet101': (Placement('fca', EVERY_BLOCK, {}, 'arXiv:2012.11879'), (3, 4, 23, 3)),  # official fcanet101
}

# pretrained tags whose official network differs from the registered model (the official code is the
# reference for its weights): the module arguments the tag builds
TAG_ARGS: Dict[str, Dict[str, Any]] = {
    'bam_resnet50.in1k': dict(combine='product'),  # official BAM: sigmoid(M_c * M_s), the paper sums
}

_PLACEMENT_ARG = {EVERY_BLOCK: 'attn_layer', LAST_BLOCKS: 'attn_layer', AFTER_STAGES: 'stage_attn_layer'}

# models that are more than a placement on timm's ResNet: their class and its arguments (the official GSoP-Net2:
# GSoP blocks in stages 1-3, stage 4 at stride 1, second-order pooling)
_NETWORKS: Dict[str, Tuple[type, Dict[str, Any]]] = {
    'gsop2_resnet50': (SecondOrderResNet, dict(attn_stages=(0, 1, 2), last_stage_stride=1)),
}


def _create_attention_resnet(variant: str, pretrained: bool = False, **kwargs) -> AttentionResNet:
    place, layers = ZOO_DEEPER.get(variant) or (ZOO_RESNET50[variant], (3, 4, 6, 3))
    # the tag named ('bam_resnet50.in1k'), else the default tag where weights are loaded: the official
    # network wherever its weights go; plain bam_resnet50 without weights stays the paper's
    tag = kwargs.get('pretrained_cfg') if isinstance(kwargs.get('pretrained_cfg'), str) else None
    if tag is None and pretrained:
        tag = resolve_pretrained_cfg(variant, kwargs.get('pretrained_cfg')).tag
    if f'{variant}.{tag}' in TAG_ARGS:
        place = place._replace(args={**place.args, **TAG_ARGS[f'{variant}.{tag}']})
    model_args: Dict[str, Any] = dict(block=Bottleneck, layers=layers)
    if isinstance(place.where, dict):
        model_cls, feature_cfg = ContextResNet, dict(flatten_sequential=False)
        model_args['context'] = variant.split('_')[0]
    else:
        model_cls, network_args = _NETWORKS.get(variant, (AttentionResNet, {}))
        feature_cfg = None
        model_args.update(network_args)
        model_args[_PLACEMENT_ARG[place.where]] = place.layer_fn()
        model_args['attn_last_block_only'] = place.where == LAST_BLOCKS
        if 'attn_layer' in (kwargs.get('block_args') or {}):  # the caller's block_args choose the block's module
            model_args.pop('attn_layer', None)
    return build_model(model_cls, variant, pretrained, feature_cfg=feature_cfg,
                       pretrained_filter_fn=checkpoint_filter_fn, **dict(model_args, **kwargs))


def _official_rules(model: AttentionResNet) -> List[Tuple[str, Any]]:
    """(pattern, repl) renaming the attention modules of the official checkpoints (see ``checkpoint_filter_fn``)."""
    def bam_prefix(m: re.Match) -> str:  # official bam{i} follows layer{i}; here the stage's last module
        return f'layer{m.group(1)}.{len(getattr(model, "layer" + m.group(1))) - 1}.'

    return [
        # CBAM (Jongchan/attention-module MODELS/cbam.py): block.cbam.{ChannelGate.mlp.1|3, SpatialGate.spatial.conv|bn}
        (r'\.cbam\.ChannelGate\.mlp\.1\.', '.se.channel.fc1.'),
        (r'\.cbam\.ChannelGate\.mlp\.3\.', '.se.channel.fc2.'),
        (r'\.cbam\.SpatialGate\.spatial\.conv\.', '.se.spatial.conv.'),
        (r'\.cbam\.SpatialGate\.spatial\.bn\.', '.se.spatial.norm.'),
        # SPA (ma-xu/SPANet models/spp_se_resnet.py): block.se = SPPSELayer, fc = Sequential(Linear, ReLU, Linear,
        # Sigmoid); the official repository has CIFAR networks only: an ImageNet ResNet-50 with that layer
        (r'\.se\.fc\.0\.', '.se.fc1.'),
        (r'\.se\.fc\.2\.', '.se.fc2.'),
        # BAM (MODELS/bam.py): bam{1,2,3}.{channel_att.gate_c.*, spatial_att.gate_s.*}
        (r'^bam(\d)\.', bam_prefix),
        (r'channel_att\.gate_c\.gate_c_fc_0\.', 'channel_fc1.'),
        (r'channel_att\.gate_c\.gate_c_bn_1\.', 'channel_norm.'),
        (r'channel_att\.gate_c\.gate_c_fc_final\.', 'channel_fc2.'),
        (r'spatial_att\.gate_s\.gate_s_(conv|bn)_reduce0\.', lambda m: f'spatial.{int(m.group(1) == "bn")}.'),
        (r'spatial_att\.gate_s\.gate_s_(conv|bn)_di_(\d+)\.',
         lambda m: f'spatial.{3 + 3 * int(m.group(2)) + int(m.group(1) == "bn")}.'),
        (r'spatial_att\.gate_s\.gate_s_conv_final\.', lambda m: f'spatial.{len(model.layer1[-1].spatial) - 1}.'),
        # ECA (BangguWu/ECANet models/eca_resnet.py): block.eca.conv
        (r'\.eca\.conv\.', '.se.conv.'),
        # FcaNet (cfzd/FcaNet model/fcanet.py, layer.py): block.att.fc.0 / .2 (the DCT filter: dropped)
        (r'\.att\.fc\.0\.', '.se.fc1.'),
        (r'\.att\.fc\.2\.', '.se.fc2.'),
        # GSoP (ZilinGao/Global-Second-order-Pooling-Convolutional-Networks torchvision/models/resnet.py): the
        # Bottleneck's own attributes, in the last block of each stage; channel, position and concat-fusion parts
        (r'\.(conv_for_DR|bn_for_DR|row_bn|row_conv_group|fc_adapt_channels)(_spatial|_for_spatial)?\.',
         lambda m: '.se.' + ('pos_' if m.group(2) else '') + _GSOP_NAMES[m.group(1)] + '.'),
        (r'\.dilate_conv_for_concat([12])\.', r'.se.concat_conv\1.'),
        (r'\.bn_for_concat\.', '.se.concat_norm.'),
        # GSoP-Net2's second-order pooling (the model's layer_reduce, layer_reduce_bn): SecondOrderPool
        (r'^layer_reduce\.', 'global_pool.reduce.'),
        (r'^layer_reduce_bn\.', 'global_pool.reduce_norm.'),
    ]


_GSOP_NAMES = {'conv_for_DR': 'reduce', 'bn_for_DR': 'reduce_norm', 'row_bn': 'row_norm', 'row_conv_group': 'row_conv',
               'fc_adapt_channels': 'fc'}


# official buffers that are a function of the architecture (FcaNet's C x H x W DCT filters: here two small
# non-persistent bases, recomputed)
_OFFICIAL_DROP = (r'\.att\.dct_layer\.weight$',)


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: AttentionResNet) -> Dict[str, torch.Tensor]:
    """Convert an official checkpoint (CBAM / BAM: Jongchan/attention-module; ECA-Net: BangguWu/ECANet; FcaNet:
    cfzd/FcaNet; GSoP-Net1 and GSoP-Net2, checkpoints of the training script of
    ZilinGao/Global-Second-order-Pooling-Convolutional-Networks; as
    published: ``{'state_dict': ...}`` of a DataParallel model, or bare) to this model; the backbone keys are
    torchvision's, which timm's ResNet shares, only the attention modules are renamed
    (``_checkpoint.map_official_resnet``). A checkpoint in this model's layout passes through, and so does one
    whose keys are all the model's (timm's ``resnet50`` weights for the backbone: its missing attention keys
    are left to timm's ``pretrained_strict``, docs/zoo.md). Raises ``CheckpointMismatchError`` naming the first
    mismatched keys for another network."""
    state_dict = map_official_resnet(state_dict, _official_rules(model), drop=_OFFICIAL_DROP)
    adaptable = ('fc.weight', 'fc.bias', 'conv1.weight')
    expected = model.state_dict()
    if any(k not in expected and k not in adaptable for k in state_dict):
        check_state_dict(state_dict, model, f'{type(model).__name__} ({model.pretrained_cfg.get("architecture")})',
                         adaptable=adaptable)
    return state_dict


def _cfg(paper: str, **kwargs) -> Dict[str, Any]:
    title, origin = card.PAPERS[paper]
    return {
        'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7), 'crop_pct': 0.875,
        'interpolation': 'bilinear', 'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'conv1', 'classifier': 'fc', 'license': 'apache-2.0',
        'paper_ids': paper if paper.startswith('arXiv:') else None, 'paper_name': title, 'origin_url': origin,
        **kwargs,
    }


def _official_cfg(name_tag: str, paper: str) -> Dict[str, Any]:
    """A tag of weights converted from an official checkpoint: the official code's license (card data)."""
    return _cfg(paper, hf_hub_id=hub_id(name_tag), hf_hub_filename='model.safetensors',
                license=card.OFFICIAL_CODE[name_tag.split('.')[0]][1], notes=card.NOTES[name_tag])


_CFG_ARGS = {'gsop2_resnet50': dict(pool_size=(14, 14))}  # stage 4 at stride 1

# weights converted from the official checkpoints: an '.in1k' tag for card.OFFICIAL_CODE's models, one untagged
# cfg for every other model (timm lists it as untrained); the paper's numbers in the notes
_PAPER_OF = {**{n: p.paper for n, p in ZOO_RESNET50.items()}, **{n: p.paper for n, (p, _) in ZOO_DEEPER.items()}}
default_cfgs = generate_default_cfgs({
    **{name: _cfg(paper, notes=card.NOTES.get(name), **_CFG_ARGS.get(name, {})) for name, paper in _PAPER_OF.items()
       if name not in card.OFFICIAL_CODE},
    **{f'{name}.in1k': _official_cfg(f'{name}.in1k', _PAPER_OF[name]) for name in card.OFFICIAL_CODE},
})


@register_model
def ge_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + GE-theta-plus (global extent), the paper's best variant, in every bottleneck."""
    return _create_attention_resnet('ge_resnet50', pretrained, **kwargs)


@register_model
def spa_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + spatial pyramid attention (1, 2, 4 bins) in every bottleneck."""
    return _create_attention_resnet('spa_resnet50', pretrained, **kwargs)


@register_model
def cbam_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + CBAM (channel then 7x7 spatial) in every bottleneck."""
    return _create_attention_resnet('cbam_resnet50', pretrained, **kwargs)


@register_model
def bam_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + BAM after stages 1, 2 and 3."""
    return _create_attention_resnet('bam_resnet50', pretrained, **kwargs)


@register_model
def scse_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + scSE (r = 16, additive aggregation) in every bottleneck."""
    return _create_attention_resnet('scse_resnet50', pretrained, **kwargs)


@register_model
def fca_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """FcaNet-50: ResNet-50 + multi-spectral channel attention (top-16 frequencies) in every bottleneck."""
    return _create_attention_resnet('fca_resnet50', pretrained, **kwargs)


@register_model
def gsop_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """GSoP-Net1 on ResNet-50: a GSoP block in the last bottleneck of each stage, global average pooling
    (timm's strides; ``last_stage_stride=1``: the official network, stage 4 at stride 1)."""
    return _create_attention_resnet('gsop_resnet50', pretrained, **kwargs)


@register_model
def gsop2_resnet50(pretrained: bool = False, **kwargs) -> SecondOrderResNet:
    """GSoP-Net2 on ResNet-50, the official network: GSoP blocks in the last bottleneck of stages 1-3, stage 4 at
    stride 1, global second-order pooling (iSQRT-COV, 256 channels) to the classifier."""
    return _create_attention_resnet('gsop2_resnet50', pretrained, **kwargs)


@register_model
def eca_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ECA-Net50: ResNet-50 + ECA (official kernels 3/5/5/7 by stage) in every bottleneck."""
    return _create_attention_resnet('eca_resnet50', pretrained, **kwargs)


@register_model
def eca_resnet101(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ECA-Net101: ResNet-101 + ECA (official kernels 3/3/5/7 by stage) in every bottleneck."""
    return _create_attention_resnet('eca_resnet101', pretrained, **kwargs)


@register_model
def fca_resnet101(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """FcaNet-101: ResNet-101 + multi-spectral channel attention (top-16 frequencies) in every bottleneck."""
    return _create_attention_resnet('fca_resnet101', pretrained, **kwargs)


@register_model
def gc_resnet50(pretrained: bool = False, **kwargs) -> AttentionResNet:
    """ResNet-50 + GC block (add fusion, r = 16) in every bottleneck, on timm's plain ResNet-50."""
    return _create_attention_resnet('gc_resnet50', pretrained, **kwargs)


@register_model
def nl_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with 5 Non-local blocks (2 in layer2, 3 in layer3)."""
    return _create_attention_resnet('nl_resnet50', pretrained, **kwargs)


@register_model
def a2_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with 5 A2 double attention blocks (2 in layer2, 3 in layer3)."""
    return _create_attention_resnet('a2_resnet50', pretrained, **kwargs)


@register_model
def da_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with DANet position + channel attention after layer4."""
    return _create_attention_resnet('da_resnet50', pretrained, **kwargs)


@register_model
def cc_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with recurrent criss-cross attention (R = 2) after layer4."""
    return _create_attention_resnet('cc_resnet50', pretrained, **kwargs)


@register_model
def apnb_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with an asymmetric pyramid non-local block after layer4."""
    return _create_attention_resnet('apnb_resnet50', pretrained, **kwargs)


@register_model
def afnb_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with an asymmetric fusion non-local block fusing layer3 into layer4."""
    return _create_attention_resnet('afnb_resnet50', pretrained, **kwargs)


@register_model
def ocr_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with an OCR block (K soft regions from an auxiliary head) after layer4."""
    return _create_attention_resnet('ocr_resnet50', pretrained, **kwargs)


@register_model
def iau_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with IAU blocks after layer2 and layer3."""
    return _create_attention_resnet('iau_resnet50', pretrained, **kwargs)


@register_model
def rga_resnet50(pretrained: bool = False, **kwargs) -> ContextResNet:
    """ResNet-50 with RGA-S + RGA-C after every stage."""
    return _create_attention_resnet('rga_resnet50', pretrained, **kwargs)
