"""SAN: self-attention networks with pairwise and patchwise attention.

Paper: "Exploring Self-attention for Image Recognition", Hengshuang Zhao, Jiaya Jia, Vladlen Koltun,
CVPR 2020, https://arxiv.org/abs/2004.13621
Official code (MIT): https://github.com/hszhao/SAN (``model/san.py``; its ops are CUDA-only CuPy
kernels). This is the same network in plain PyTorch, so it runs on CPU and GPU, in fp16 / bf16,
under autograd, TorchScript and torch.compile, and loads the official ``model_best.pth`` files.

Network (official ``SAN(sa_type, Bottleneck, layers, kernels, num_classes)``):
    stem:   1x1 conv 3->64 (no bias) at full resolution, BN, ReLU (no 7x7 conv)
    stage i (i = 0..4): MaxPool 2x2 -> 1x1 transition conv (no bias) -> blocks -> BN -> ReLU
            (stage 0's max-pool is the last layer of ``stem`` here; it has no parameters)
    head:   global average pool -> fc
Stage widths 64, 256, 512, 1024, 2048; footprints 3, 7, 7, 7, 7; every block has stride 1 (all
downsampling is the max-pools). The block is pre-activation:
    out = conv1x1(relu(bn2(SAM(relu(bn1(x)))))) + x
with the SAM's phi / psi projecting to width / 16, beta to width / 4, and share_planes = 8.

Official key names and ours (``checkpoint_filter_fn`` converts): conv_in/bn_in -> stem.conv/bn,
conv{i}/bn{i} -> stages.{i}.conv/norm, layer{i}.{j} -> stages.{i}.blocks.{j} with bn1 -> norm1,
sam -> attn, bn2 -> norm2 (see ``timm_attn.layers.san.san_attention`` for the SAM's own keys), fc -> head.fc.
"""
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.fx
from torch import nn

from timm.layers import ClassifierHead, DropPath, calculate_drop_path_rates, register_notrace_function, \
    register_notrace_module
from timm.models import checkpoint_seq, generate_default_cfgs, register_model

from ..card_data import san as card
from ..hub import hub_id
from ..layers._ops import MaxPool2x2, PointwiseConv2d, batch_norm_train, is_plain_batchnorm, max_pool_2x2, \
    pointwise_bn_relu_inference, recompute_in_backward
from ..layers.san import PairwiseSelfAttention, PatchwiseSelfAttention, neighbourhood_padding
from ._builder import base_cfg, build_model, cfg_kwargs
from ._stages import StageNet
from ._checkpoint import check_state_dict, unwrap_state_dict

__all__ = ['SAN', 'SANCfg', 'SANStem', 'SelfAttentionBottleneck', 'SANStage', 'san_min_input_size']

_IntOrSeq = Union[int, Sequence[int]]


@dataclass(frozen=True)
class SANCfg:
    """One SAN variant (paper Table 1): blocks per stage and the attention type; the other ``SAN`` arguments
    keep the official defaults."""
    layers: Tuple[int, ...]
    attn_type: str


model_cfgs = dict(
    san10_pairwise=SANCfg(layers=(2, 1, 2, 4, 1), attn_type='pairwise'),
    san10_patchwise=SANCfg(layers=(2, 1, 2, 4, 1), attn_type='patchwise'),
    san15_pairwise=SANCfg(layers=(3, 2, 3, 5, 2), attn_type='pairwise'),
    san15_patchwise=SANCfg(layers=(3, 2, 3, 5, 2), attn_type='patchwise'),
    san19_pairwise=SANCfg(layers=(3, 3, 4, 6, 3), attn_type='pairwise'),
    san19_patchwise=SANCfg(layers=(3, 3, 4, 6, 3), attn_type='patchwise'),
)


def _per_stage(value: _IntOrSeq, name: str, num_stages: int) -> Tuple[int, ...]:
    values = (value,) * num_stages if isinstance(value, int) else tuple(value)
    if len(values) != num_stages:
        raise ValueError(f'{name} needs one value per stage ({num_stages}), got {value!r}')
    return values


def san_min_input_size(kernel_sizes: Sequence[int], dilations: Sequence[int]) -> int:
    """Smallest input side: stage i works at floor(H / 2^(i+1)) and its reflection padding needs
    that to exceed the padding (k=7 at stride 32 -> 128 px for the official networks)."""
    return max((neighbourhood_padding(k, d) + 1) * 2 ** (i + 1)
               for i, (k, d) in enumerate(zip(kernel_sizes, dilations)))


@register_notrace_function
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
def check_san_input(x: torch.Tensor, in_chans: int, min_size: int) -> None:
    if x.dim() != 4:
        raise ValueError('SAN expects a batch of images (N, C, H, W), got a tensor of shape {}'.format(list(x.shape)))
    if x.shape[1] != in_chans:
        raise ValueError('SAN was built for {} input channels (in_chans), got an input with {}'.format(
            in_chans, x.shape[1]))
    if x.shape[2] < min_size or x.shape[3] < min_size:
        raise ValueError('SAN needs inputs of at least {}x{} pixels (reflection padding of the last stage), '
                         'got {}x{}'.format(min_size, min_size, x.shape[2], x.shape[3]))


@register_notrace_module  # eval / recompute paths branch on the mode: a leaf for torch.fx
class SANStem(nn.Module):
    """1x1 conv (no bias) -> BN -> ReLU at full resolution (official conv_in, bn_in), then the first
    2x2 max-pool (official: the pool that opens stage 0; here it closes the stem, as in timm's ResNets).

    In eval mode without autograd the BN is folded into the conv and the batch runs in chunks
    (``pointwise_bn_relu_inference``), so the full-resolution map (64 x 224 x 224 per image, the largest
    of the network) is never allocated for the whole batch. In training (``recompute=True``) that map is
    recomputed in backward.
    """

    def __init__(self, in_chs: int, out_chs: int, recompute: bool = True, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.recompute = recompute
        self.conv = PointwiseConv2d(in_chs, out_chs, bias=False, **dd)
        self.bn = nn.BatchNorm2d(out_chs, **dd)
        self.act = nn.ReLU(inplace=True)
        self.pool = MaxPool2x2()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and not torch.is_grad_enabled() and not torch.jit.is_scripting() and self._bn_folds():
            return pointwise_bn_relu_inference(x, self.conv, self.bn, max_pool_2x2)
        if self.training and self.recompute and torch.is_grad_enabled() and not torch.jit.is_scripting():
            return self._forward_recomputed(x)
        return self.pool(self.act(self.bn(self.conv(x))))

    @torch.jit.unused
    def _bn_folds(self) -> bool:
        """The eval path folds the BN: only a plain one (``is_plain_batchnorm``), else it is called."""
        return is_plain_batchnorm(self.bn)

    @torch.jit.unused
    def _forward_recomputed(self, x: torch.Tensor) -> torch.Tensor:
        """Training without storing the two full-resolution maps (conv and BN outputs, 2 x 205 MB at
        batch 16): they are recomputed in backward, with the same values, gradients and BN statistics."""
        return recompute_in_backward(
            lambda update_stats, x: self.pool(batch_norm_train(self.bn, self.conv(x), update_stats).relu_()), x,
            norms=(self.bn,))


@register_notrace_module
class SelfAttentionBottleneck(nn.Module):
    """Official SAN ``Bottleneck``: pre-activation, SAM in place of the 3x3 conv, 1x1 conv with bias,
    identity shortcut, no BN after the last conv."""

    def __init__(
            self,
            dim: int,
            attn_type: str = 'patchwise',
            kernel_size: int = 7,
            dilation: int = 1,
            share_planes: int = 8,
            relation: Optional[str] = None,
            pos_embed: bool = True,
            drop_path: float = 0.,
            recompute: bool = True,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        mid_chs, rel_chs = dim // 4, dim // 16
        self.recompute = recompute
        self.norm1 = nn.BatchNorm2d(dim, **dd)
        self.act1 = nn.ReLU(inplace=True)
        if attn_type == 'pairwise':
            self.attn = PairwiseSelfAttention(
                dim, rel_chs, mid_chs, share_planes, kernel_size, dilation=dilation,
                relation=relation or 'subtraction', pos_embed=pos_embed, recompute_weights=False, **dd)
        elif attn_type == 'patchwise':
            self.attn = PatchwiseSelfAttention(
                dim, rel_chs, mid_chs, share_planes, kernel_size, dilation=dilation,
                relation=relation or 'concatenation', recompute_weights=False, **dd)
        else:
            raise ValueError(f"attn_type must be 'pairwise' or 'patchwise', got {attn_type!r}")
        self.norm2 = nn.BatchNorm2d(mid_chs, **dd)
        self.act2 = nn.ReLU(inplace=True)
        self.conv = PointwiseConv2d(mid_chs, dim, **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.training and self.recompute and torch.is_grad_enabled() and not torch.jit.is_scripting():
            x = self._attention_recomputed(x)
        else:
            x = self.attn(self.act1(self.norm1(x)))
        x = self.conv(self.act2(self.norm2(x)))
        return self.drop_path(x).add_(shortcut)  # x is this block's own fresh tensor

    @torch.jit.unused
    def _attention_recomputed(self, x: torch.Tensor) -> torch.Tensor:
        """Training without storing relu(norm1(x)), phi / psi and the relation tensors: only the block
        input, the attention weights and beta(.) are kept; the rest is recomputed in backward (same
        values, gradients and BN statistics as the plain path)."""
        def weights_and_values(update_stats: bool, x: torch.Tensor):
            return self.attn.weights_and_values(batch_norm_train(self.norm1, x, update_stats).relu_(), update_stats)
        w, v = recompute_in_backward(
            weights_and_values, x, norms=(self.norm1, self.attn.gamma.norm1, self.attn.gamma.norm2))
        return self.attn.aggregate(v, w)


class SANStage(nn.Module):
    """MaxPool 2x2 (stage 0: in the stem) -> 1x1 transition conv (no bias) -> self-attention blocks -> BN -> ReLU."""

    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            depth: int,
            drop_path_rates: Sequence[float],
            pool: bool = True,
            block_layer: Optional[type] = None,
            **block_kwargs,
    ):
        dd = {'device': block_kwargs.get('device'), 'dtype': block_kwargs.get('dtype')}
        super().__init__()
        self.grad_checkpointing = False
        self.pool = MaxPool2x2() if pool else nn.Identity()
        self.conv = PointwiseConv2d(in_chs, out_chs, bias=False, **dd)
        block_layer = block_layer or SelfAttentionBottleneck
        self.blocks = nn.Sequential(*[
            block_layer(out_chs, drop_path=drop_path_rates[i], **block_kwargs) for i in range(depth)])
        self.norm = nn.BatchNorm2d(out_chs, **dd)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pool(x))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.blocks, x)
        else:
            x = self.blocks(x)
        return self.act(self.norm(x))


class SAN(StageNet):
    """SAN classifier (official defaults: five stages, footprints 3-7-7-7-7, share_planes 8).

    Args:
        layers: blocks per stage; san10 (2, 1, 2, 4, 1), san15 (3, 2, 3, 5, 2), san19 (3, 3, 4, 6, 3).
        attn_type: 'pairwise' or 'patchwise'.
        kernel_sizes: footprint per stage (int for all); the paper's ablation uses 3..11.
        dilations: footprint dilation per stage (int for all).
        widths: output channels per stage.
        stem_chs: channels of the 1x1 stem conv.
        share_planes: output channels that share one attention weight channel.
        relation: relation function; None = official (subtraction / concatenation). Pairwise:
            summation, subtraction, concatenation, hadamard, dot. Patchwise: star, clique, concatenation.
        pos_embed: relative position encoding in pairwise attention (patchwise has none: no effect there).
        num_classes, in_chans, global_pool, drop_rate, drop_path_rate: as in timm.
        block_layer, block_kwargs: the block class (default ``SelfAttentionBottleneck``) and extra arguments for it.

    Weights use PyTorch's default initialisation, as the official code.
    """
    # parameter groups of a stage: the transition conv with the first block, each block, the closing BN
    stage_groups = ((r'conv', (0,)), (r'blocks\.(\d+)', None), (r'norm', (99999,)))

    def __init__(
            self,
            layers: Sequence[int] = (3, 3, 4, 6, 3),
            attn_type: str = 'patchwise',
            kernel_sizes: _IntOrSeq = (3, 7, 7, 7, 7),
            dilations: _IntOrSeq = 1,
            widths: Sequence[int] = (64, 256, 512, 1024, 2048),
            stem_chs: int = 64,
            share_planes: int = 8,
            relation: Optional[str] = None,
            pos_embed: bool = True,
            num_classes: int = 1000,
            in_chans: int = 3,
            global_pool: str = 'avg',
            drop_rate: float = 0.,
            drop_path_rate: float = 0.,
            block_layer: Optional[type] = None,
            block_kwargs: Optional[Dict[str, Any]] = None,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        num_stages = len(layers)
        if len(widths) != num_stages:
            raise ValueError(f'widths needs one value per stage ({num_stages}), got {widths!r}')
        kernel_sizes = _per_stage(kernel_sizes, 'kernel_sizes', num_stages)
        dilations = _per_stage(dilations, 'dilations', num_stages)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.attn_type = attn_type
        self.min_input_size = san_min_input_size(kernel_sizes, dilations)
        self.grad_checkpointing = False

        self.stem = SANStem(in_chans, stem_chs, **dd)

        dpr = calculate_drop_path_rates(drop_path_rate, list(layers), stagewise=True)  # per block, split by stage
        stages, self.feature_info = [], []
        prev_chs = stem_chs
        for i in range(num_stages):
            stages.append(SANStage(
                prev_chs, widths[i], layers[i], dpr[i],
                pool=i > 0,
                attn_type=attn_type,
                kernel_size=kernel_sizes[i],
                dilation=dilations[i],
                share_planes=share_planes,
                relation=relation,
                pos_embed=pos_embed,
                block_layer=block_layer,
                **(block_kwargs or {}),
                **dd,
            ))
            prev_chs = widths[i]
            self.feature_info.append(dict(num_chs=prev_chs, reduction=2 ** (i + 1), module=f'stages.{i}'))
        self.stages = nn.Sequential(*stages)

        self.norm = nn.Identity()  # every stage ends in its own BN + ReLU
        self.num_features = self.head_hidden_size = prev_chs
        self.head = ClassifierHead(prev_chs, num_classes, pool_type=global_pool, drop_rate=drop_rate, **dd)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        check_san_input(x, self.in_chans, self.min_input_size)
        return self.stem(x)


# official block sub-modules -> ours (the SAM's in timm_attn.layers.san.san_attention)
_OFFICIAL_BLOCK_KEYS = {
    'bn1': 'norm1', 'bn2': 'norm2', 'conv': 'conv',
    'sam.conv1': 'attn.phi', 'sam.conv2': 'attn.psi', 'sam.conv3': 'attn.beta', 'sam.conv_p': 'attn.pos_proj',
    'sam.conv_w.0': 'attn.gamma.norm1', 'sam.conv_w.2': 'attn.gamma.conv1',
    'sam.conv_w.3': 'attn.gamma.norm2', 'sam.conv_w.5': 'attn.gamma.conv2',
}
_OFFICIAL_KEYS = [
    (r'^conv_in\.', 'stem.conv.'),
    (r'^bn_in\.', 'stem.bn.'),
    (r'^conv(\d)\.', r'stages.\1.conv.'),
    (r'^bn(\d)\.', r'stages.\1.norm.'),
    *[(rf'^layer(\d)\.(\d+)\.{re.escape(official)}\.', rf'stages.\1.blocks.\2.{ours}.')
      for official, ours in _OFFICIAL_BLOCK_KEYS.items()],
    (r'^fc\.', 'head.fc.'),
]


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: SAN) -> Dict[str, torch.Tensor]:
    """Convert an official SAN checkpoint (``tool/train.py``'s ``model_best.pth``) to this model.

    Accepts the whole training checkpoint or its 'state_dict', with or without the 'module.'
    prefix of (Distributed)DataParallel and with or without BatchNorm ``num_batches_tracked``
    (absent in some PyTorch 1.4-era files; filled with the model's own). A checkpoint already in
    this model's layout passes through. Raises ``CheckpointMismatchError`` naming the first
    mismatched keys and shapes when the checkpoint belongs to another variant.
    """
    state_dict = unwrap_state_dict(state_dict)
    if 'conv_in.weight' in state_dict:
        converted = {}
        for k, v in state_dict.items():
            for pattern, repl in _OFFICIAL_KEYS:
                k, n = re.subn(pattern, repl, k)
                if n:
                    break
            converted[k] = v
        state_dict = converted
    own = model.state_dict()
    for k, v in own.items():
        if k.endswith('num_batches_tracked') and k not in state_dict:
            state_dict[k] = v.clone()
    # timm adapts these after the filter (num_classes / in_chans different from the checkpoint's)
    adaptable = ('head.fc.weight', 'head.fc.bias', 'stem.conv.weight')
    return check_state_dict(
        state_dict, model, f'{type(model).__name__} ({model.attn_type}, {len(model.stages)} stages)',
        adaptable=adaptable)


def _create_san(variant: str, pretrained: bool = False, **kwargs) -> SAN:
    return build_model(
        SAN, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3, 4), flatten_sequential=True),
        **cfg_kwargs(model_cfgs[variant], kwargs),
    )


def _cfg(**kwargs) -> Dict[str, Any]:
    return base_cfg(
        min_input_size=(3, 128, 128), first_conv='stem.conv', classifier='head.fc', license='mit',
        paper_ids='arXiv:2004.13621', paper_name='Exploring Self-attention for Image Recognition',
        origin_url='https://github.com/hszhao/SAN', **kwargs)


# weights converted from the official checkpoints; the paper's numbers are card data
default_cfgs = generate_default_cfgs({
    name_tag: _cfg(hf_hub_id=hub_id(name_tag), hf_hub_filename='model.safetensors', notes=card.NOTES[name_tag])
    for name_tag in ('san10_pairwise.in1k', 'san10_patchwise.in1k', 'san15_pairwise.in1k', 'san15_patchwise.in1k',
                     'san19_pairwise.in1k', 'san19_patchwise.in1k')
})



@register_model
def san10_pairwise(pretrained: bool = False, **kwargs) -> SAN:
    """SAN10 with pairwise (subtraction) attention, 10.5M params."""
    return _create_san('san10_pairwise', pretrained=pretrained, **kwargs)


@register_model
def san10_patchwise(pretrained: bool = False, **kwargs) -> SAN:
    """SAN10 with patchwise (concatenation) attention, 11.8M params."""
    return _create_san('san10_patchwise', pretrained=pretrained, **kwargs)


@register_model
def san15_pairwise(pretrained: bool = False, **kwargs) -> SAN:
    """SAN15 with pairwise (subtraction) attention, 14.1M params."""
    return _create_san('san15_pairwise', pretrained=pretrained, **kwargs)


@register_model
def san15_patchwise(pretrained: bool = False, **kwargs) -> SAN:
    """SAN15 with patchwise (concatenation) attention, 16.2M params."""
    return _create_san('san15_patchwise', pretrained=pretrained, **kwargs)


@register_model
def san19_pairwise(pretrained: bool = False, **kwargs) -> SAN:
    """SAN19 with pairwise (subtraction) attention, 17.6M params."""
    return _create_san('san19_pairwise', pretrained=pretrained, **kwargs)


@register_model
def san19_patchwise(pretrained: bool = False, **kwargs) -> SAN:
    """SAN19 with patchwise (concatenation) attention, 20.5M params."""
    return _create_san('san19_patchwise', pretrained=pretrained, **kwargs)
