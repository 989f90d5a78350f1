"""Residual Attention Network (Attention-56, Attention-92) for ImageNet.

Paper: "Residual Attention Network for Image Classification", Fei Wang, Mengqing Jiang, Chen Qian, Shuo Yang,
Cheng Li, Honggang Zhang, Xiaogang Wang, Xiaoou Tang, CVPR 2017, https://arxiv.org/abs/1704.06904.
Official code (Caffe prototxts): https://github.com/fwang91/residual-attention-network. Layer layout as the
widely used PyTorch port (tengshaofeng/ResidualAttentionNetwork-pytorch, ``ResidualAttentionModel_56/92``).

Network (paper Table 2; pre-activation bottleneck units, ``timm_attn.layers.residual_attention``):
    stem:    7x7 conv 64 stride 2, BN, ReLU, 3x3 max-pool stride 2                         56 x 56
    stage 0: unit 64 -> 256,            n0 attention modules (soft mask depth 3)           56 x 56
    stage 1: unit 256 -> 512 stride 2,  n1 attention modules (depth 2)                     28 x 28
    stage 2: unit 512 -> 1024 stride 2, n2 attention modules (depth 1)                     14 x 14
    stage 3: unit 1024 -> 2048 stride 2, 2 units 2048                                       7 x 7
    head:    BN, ReLU, global average pool, fc
Attention-56: (n0, n1, n2) = (1, 1, 1); Attention-92: (1, 2, 3). Each attention module is
H(x) = (1 + M(x)) * T(x) with p = 1, t = 2, r = 1.

Any input size from 1x1 (the mask branch interpolates to the size of each map it is added to). The
paper reports 31.9M params / 6.2 GFLOPs (Attention-56) and 51.3M / 10.4 GFLOPs (Attention-92); this
implementation has 31.81M / 6.27 GMACs and 52.47M / 10.53 GMACs at 224 (tests/test_attention_resnet.py).
Attention-92 has 1.2M (2.3%) more parameters than the paper's table with the layout of the port; the
difference is not explained by the paper's text (the Caffe prototxt was not available to check).
"""
from dataclasses import dataclass
from typing import Any, Dict, Sequence, Tuple

import torch
from torch import nn

from timm.layers import BatchNormAct2d, ClassifierHead
from timm.models import checkpoint_seq, generate_default_cfgs, register_model

from ..card_data import resattnet as card
from ..layers.residual_attention import PreActBottleneck, ResidualAttentionModule
from ._builder import base_cfg, build_model, cfg_kwargs
from ._stages import StageNet

__all__ = ['ResidualAttentionNet', 'ResidualAttentionNetCfg', 'ResidualAttentionStage']


@dataclass(frozen=True)
class ResidualAttentionNetCfg:
    """One Residual Attention Network: attention modules in stages 0, 1, 2 (paper Table 2)."""
    attn_modules: Tuple[int, int, int]


model_cfgs = dict(
    resattnet56=ResidualAttentionNetCfg(attn_modules=(1, 1, 1)),
    resattnet92=ResidualAttentionNetCfg(attn_modules=(1, 2, 3)),
)


class ResidualAttentionStage(nn.Sequential):
    """The units and attention modules of one stage, in order (keys ``<j>.*``); with ``grad_checkpointing``
    each is recomputed in backward."""

    def __init__(self, *blocks: nn.Module):
        super().__init__(*blocks)
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self, x)
        for block in self:
            x = block(x)
        return x



class ResidualAttentionNet(StageNet):
    """Residual Attention Network.

    Args:
        attn_modules: attention modules in stages 0, 1, 2 (Attention-56: (1, 1, 1), Attention-92: (1, 2, 3)).
        mask_depths: down-samplings of each stage's soft mask branch (paper at 224: 3, 2, 1).
        widths: output channels of the four stages.
        stem_chs: channels of the 7x7 stem conv.
        num_classes, in_chans, global_pool, drop_rate: as in timm.
    """
    stage_groups = ((r'(\d+)', None),)  # a stage is its sequence of units / attention modules

    def __init__(
            self,
            attn_modules: Sequence[int] = (1, 1, 1),
            mask_depths: Sequence[int] = (3, 2, 1),
            widths: Sequence[int] = (256, 512, 1024, 2048),
            stem_chs: int = 64,
            num_classes: int = 1000,
            in_chans: int = 3,
            global_pool: str = 'avg',
            drop_rate: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if len(attn_modules) != 3 or len(mask_depths) != 3 or len(widths) != 4:
            raise ValueError(f'attn_modules and mask_depths need 3 values (stages 0-2), widths 4; got '
                             f'{attn_modules!r}, {mask_depths!r}, {widths!r}')
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        self.stem = nn.Sequential()
        self.stem.add_module('conv', nn.Conv2d(in_chans, stem_chs, 7, stride=2, padding=3, bias=False, **dd))
        self.stem.add_module('norm', nn.BatchNorm2d(stem_chs, **dd))
        self.stem.add_module('act', nn.ReLU(inplace=True))
        self.stem.add_module('pool', nn.MaxPool2d(3, stride=2, padding=1))
        stages, self.feature_info = [], []
        prev = stem_chs
        for i, width in enumerate(widths):
            blocks = [PreActBottleneck(prev, width, stride=1 if i == 0 else 2, **dd)]
            if i < 3:
                blocks += [ResidualAttentionModule(width, mask_depths[i], **dd) for _ in range(attn_modules[i])]
            else:
                blocks += [PreActBottleneck(width, width, **dd) for _ in range(2)]
            stages.append(ResidualAttentionStage(*blocks))
            prev = width
            self.feature_info.append(dict(num_chs=width, reduction=4 * 2 ** i, module=f'stages.{i}'))
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = prev
        # pre-activation network: the last unit's output is normalised here (BN -> ReLU)
        self.norm = BatchNormAct2d(prev, act_layer=nn.ReLU, **dd)
        self.head = ClassifierHead(prev, num_classes, pool_type=global_pool, drop_rate=drop_rate, **dd)
        self.init_weights()

    @torch.jit.ignore
    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')


def _create_resattnet(variant: str, pretrained: bool = False, **kwargs) -> ResidualAttentionNet:
    return build_model(
        ResidualAttentionNet, variant, pretrained,
        feature_cfg=dict(out_indices=(0, 1, 2, 3), flatten_sequential=True),
        **cfg_kwargs(model_cfgs[variant], kwargs),
    )


def _cfg(**kwargs) -> Dict[str, Any]:
    return base_cfg(
        first_conv='stem.conv', classifier='head.fc', license='apache-2.0', paper_ids='arXiv:1704.06904',
        paper_name='Residual Attention Network for Image Classification',
        origin_url='https://github.com/fwang91/residual-attention-network', **kwargs)


# no pretrained weights (the official release is Caffe, Attention-92 only): untagged cfgs
default_cfgs = generate_default_cfgs({
    name: _cfg(notes=card.NOTES[name]) for name in ('resattnet56', 'resattnet92')
})


@register_model
def resattnet56(pretrained: bool = False, **kwargs) -> ResidualAttentionNet:
    """Attention-56: one attention module per stage (stages 0-2)."""
    return _create_resattnet('resattnet56', pretrained=pretrained, **kwargs)


@register_model
def resattnet92(pretrained: bool = False, **kwargs) -> ResidualAttentionNet:
    """Attention-92: 1, 2 and 3 attention modules in stages 0-2."""
    return _create_resattnet('resattnet92', pretrained=pretrained, **kwargs)
