"""CoAtNet: convolution (MBConv) stages followed by relative-attention Transformer stages.

Paper: "CoAtNet: Marrying Convolution and Attention for All Data Sizes", Zihang Dai, Hanxiao Liu,
Quoc V. Le, Mingxing Tan, NeurIPS 2021, https://arxiv.org/abs/2106.04803
No official code or weights were released; this follows the paper (Tables 3, 11, 12, Eq. 3-5).

Network (layout C-C-T-T, S0 at 1/2 ... S4 at 1/32):
    S0 stem:  3x3 conv stride 2 -> BN -> GELU -> 3x3 conv (no norm after it: the next block is pre-norm)
    S1, S2:   MBConv blocks  x <- x + Conv1x1(SE(DWConv3x3(Conv1x1(BN(x)))))   (BN + GELU inside)
    S3, S4:   Transformer blocks  x <- x + Attention(LN(x));  x <- x + FFN(LN(x))   (FFN ratio 4, GELU)
    head:     global average pool -> LayerNorm -> fc
The first block of every stage downsamples:
    MBConv:      x <- Proj(Pool(x)) + Conv1x1(SE(DWConv(Conv1x1(BN(x), stride=2))))   (paper Eq. 5)
                 (``stride_placement='dwconv'`` puts the stride in the depthwise conv, Table 9's variant)
    Transformer: x <- Proj(Pool(x)) + Attention(Pool(LN(x)))
with 2x2 max pooling (``pool_type='avg'`` for average) and Proj a 1x1 conv / linear with bias.

Choices the paper leaves open, picked so that parameters and FLOPs match its Table 3 / Table 4
(checked by ``tests/test_coatnet.py``):
    * MBConv expansion 4 of the block's OUTPUT width (in Eq. 5 the expanding conv already maps to the
      new width), SE on the expanded channels with reduction to 0.25 of the block's INPUT width
      (EfficientNet's convention), GELU inside SE. (SE reduced from the expanded width instead puts
      CoAtNet-3 at 170.4M, 1.4% above the paper.)
    * The attention of a widening block maps D_in -> D_out (q, k, v from the pooled, normalised input).
    * Head: global average pool -> LayerNorm -> D x D Linear + tanh -> fc. The blocks are pre-norm, so
      the residual stream after the last block is never normalised; the LayerNorm is the final norm a
      pre-norm network needs. The paper's text says "global average pooling, then the classifier", but
      its parameter counts include the tanh pre-logits layer: Google's own code for this block family
      (google-research/maxvit, ``maxvit/models/maxvit.py``: pool -> ``final_layer_norm`` ->
      ``inner_dense`` of width ``cls_hsize=-1`` = the last width -> tanh -> ``logit_dense``) builds it by
      default, and with it CoAtNet-0..4 have 24.99 / 42.18 / 74.64 / 166.86 / 275.32M, within 0.7% of
      the paper's 25 / 42 / 75 / 168 / 275M; without it (``head_hidden=False``) they have 24.40 / 41.59 /
      73.59 / 164.50 / 272.95M, 0.4-2.4% below. timm's coatnet_*_224 has the same head.
    * Padding of the 3x3 convs is symmetric (PyTorch's), not TensorFlow's 'SAME'.

Parameters (M) / GMACs at 224 of this implementation (paper: params, FLOPs at 224):
    coatnet_0   24.99 /   4.14  (25M, 4.2B)       coatnet_4  275.32 /  60.35  (275M)
    coatnet_1   42.18 /   8.24  (42M, 8.4B)       coatnet_5  686.76 / 142.18  (688M)
    coatnet_2   74.64 /  15.55  (75M, 15.7B)      coatnet_6 1347.74 / 259.60  (paper 1.47B)
    coatnet_3  166.86 /  34.49  (168M, 34.7B)     coatnet_7 2440.63 / 457.87  (2.44B)
(bias tables grow with the input: coatnet_4 at its default 384 has 276.34M.) CoAtNet-6 follows Table 12
as read in the spec (S3: 8 MBConv at 768 + 42 Transformer blocks at 1536, S4: 2 x 2048, head size 128)
and comes out 8% below the 1.47B the paper states; CoAtNet-7 (same layout, wider) matches. With S4 at
3072 (CoAtNet-7's S4 width) CoAtNet-6 would have 1470.43M, the paper's 1.47B to 0.03%, so the table or the
count likely has a typo; we follow the table.

Input sizes: any multiple of 32, fixed at construction (``img_size``), because the relative-bias
tables of S3 / S4 are built for the S3 / S4 grids. ``checkpoint_filter_fn`` resizes the tables of a
checkpoint trained at another size bilinearly (the paper's fine-tuning at 384 / 512).
"""
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.fx
from torch import nn

from timm.layers import DropPath, Mlp, NormMlpClassifierHead, SEModule, calculate_drop_path_rates, \
    register_notrace_function, to_2tuple, trunc_normal_
from timm.models import generate_default_cfgs, register_model
from timm.models._manipulate import checkpoint

from ..card_data import coatnet as card
from ..hub import hub_id
from ..layers._ops import PointwiseConv2d, pool_2x2_nchw, pool_2x2_nhwc
from ..layers.rel_attention import RelativeSelfAttention, resize_relative_position_bias_table
from ._builder import base_cfg, build_model
from ._checkpoint import check_state_dict, unwrap_state_dict
from ._stages import StageNet

__all__ = ['CoAtNet', 'CoAtNetCfg', 'CoAtNetStem', 'MBConvBlock', 'TransformerBlock', 'CoAtNetStage']

BLOCK_LAYOUTS = ('CCTT', 'CCCT', 'CTTT', 'CCCC')


@dataclass(frozen=True)
class CoAtNetCfg:
    """One CoAtNet size: blocks and widths of S1..S4 (paper Table 3), stem width (S0), head size.

    ``s3_conv``: (blocks, width) of MBConv blocks that open S3 before its Transformer blocks
    (CoAtNet-6/7, Table 12); (0, 0) for the others.
    """
    depths: Tuple[int, int, int, int]
    widths: Tuple[int, int, int, int]
    stem_width: int = 64
    head_dim: int = 32
    s3_conv: Tuple[int, int] = (0, 0)


model_cfgs = dict(
    coatnet_0=CoAtNetCfg(depths=(2, 3, 5, 2), widths=(96, 192, 384, 768), stem_width=64),
    coatnet_1=CoAtNetCfg(depths=(2, 6, 14, 2), widths=(96, 192, 384, 768), stem_width=64),
    coatnet_2=CoAtNetCfg(depths=(2, 6, 14, 2), widths=(128, 256, 512, 1024), stem_width=128),
    coatnet_3=CoAtNetCfg(depths=(2, 6, 14, 2), widths=(192, 384, 768, 1536), stem_width=192),
    coatnet_4=CoAtNetCfg(depths=(2, 12, 28, 2), widths=(192, 384, 768, 1536), stem_width=192),
    coatnet_5=CoAtNetCfg(depths=(2, 12, 28, 2), widths=(256, 512, 1280, 2048), stem_width=192, head_dim=64),
    coatnet_6=CoAtNetCfg(
        depths=(2, 4, 42, 2), widths=(192, 384, 1536, 2048), stem_width=192, head_dim=128, s3_conv=(8, 768)),
    coatnet_7=CoAtNetCfg(
        depths=(2, 4, 42, 2), widths=(256, 512, 2048, 3072), stem_width=192, head_dim=128, s3_conv=(8, 1024)),
)


@register_notrace_function
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
def check_coatnet_input(x: torch.Tensor, in_chans: int, img_size: Tuple[int, int]) -> None:
    if x.dim() != 4:
        raise ValueError('CoAtNet expects a batch of images (N, C, H, W), got a tensor of shape {}'.format(
            list(x.shape)))
    if x.shape[1] != in_chans:
        raise ValueError('CoAtNet was built for {} input channels (in_chans), got an input with {}'.format(
            in_chans, x.shape[1]))
    if x.shape[2] != img_size[0] or x.shape[3] != img_size[1]:
        raise ValueError(
            'CoAtNet was built for {}x{} inputs (img_size): its relative-position bias tables are sized for '
            'that input, got {}x{}. Build the model with img_size={} (any multiple of 32; pretrained tables '
            'are resized on load)'.format(img_size[0], img_size[1], x.shape[2], x.shape[3],
                                          (x.shape[2], x.shape[3])))


@register_notrace_function
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
def check_grid(x: torch.Tensor, grid_size: Tuple[int, int], reduction: int) -> None:
    """A Transformer stage's (N, C, H, W) input must be the grid its tables were built for."""
    if x.shape[2] != grid_size[0] or x.shape[3] != grid_size[1]:
        raise ValueError(
            'this CoAtNet stage was built for a {}x{} input grid ({}x{} images), got {}x{} '
            '({}x{} images); build the model with the img_size of the input'.format(
                grid_size[0], grid_size[1], grid_size[0] * reduction, grid_size[1] * reduction,
                x.shape[2], x.shape[3], x.shape[2] * reduction, x.shape[3] * reduction))


class CoAtNetStem(nn.Module):
    """S0: 3x3 conv stride 2 -> BN -> GELU -> 3x3 conv."""

    def __init__(self, in_chs: int, out_chs: int, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=2, padding=1, **dd)
        self.norm1 = nn.BatchNorm2d(out_chs, **dd)
        self.act1 = nn.GELU()
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act1(self.norm1(self.conv1(x))))


class MBConvBlock(nn.Module):
    """Pre-norm MBConv on (N, C, H, W): BN -> 1x1 -> BN/GELU -> 3x3 depthwise -> BN/GELU -> SE -> 1x1.

    Expanded width ``expand_ratio * out_chs``; SE reduction ``se_ratio * in_chs``. With ``stride=2`` the
    shortcut is Proj(Pool(x)) and the residual branch subsamples in its first 1x1 conv
    (``stride_placement='conv1x1'``, paper Eq. 5) or in the depthwise conv ('dwconv').
    """
    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            stride: int = 1,
            expand_ratio: float = 4.,
            se_ratio: float = 0.25,
            stride_placement: str = 'conv1x1',
            pool_type: str = 'max',
            drop_path: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if stride_placement not in ('conv1x1', 'dwconv'):
            raise ValueError(f"stride_placement must be 'conv1x1' or 'dwconv', got {stride_placement!r}")
        mid_chs = int(out_chs * expand_ratio)
        self.channels_last = False  # runs on (N, C, H, W)
        self.stride = stride
        self.pool_type = pool_type
        self.stride_1x1 = stride if stride_placement == 'conv1x1' else 1
        if stride > 1 or in_chs != out_chs:
            self.shortcut_proj = PointwiseConv2d(in_chs, out_chs, **dd)
        else:
            self.shortcut_proj = nn.Identity()
        self.norm = nn.BatchNorm2d(in_chs, **dd)
        self.conv1 = PointwiseConv2d(in_chs, mid_chs, bias=False, **dd)
        self.norm1 = nn.BatchNorm2d(mid_chs, **dd)
        self.act1 = nn.GELU()
        self.conv2 = nn.Conv2d(
            mid_chs, mid_chs, 3, stride=stride // self.stride_1x1, padding=1, groups=mid_chs, bias=False, **dd)
        self.norm2 = nn.BatchNorm2d(mid_chs, **dd)
        self.act2 = nn.GELU()
        self.se = SEModule(mid_chs, rd_channels=max(1, int(in_chs * se_ratio)), act_layer=nn.GELU, **dd)
        self.conv3 = PointwiseConv2d(mid_chs, out_chs, **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            shortcut = self.shortcut_proj(pool_2x2_nchw(x, self.pool_type))
        else:
            shortcut = self.shortcut_proj(x)
        x = self.norm(x)
        if self.stride_1x1 > 1:
            # 1x1 conv with stride 2 = subsample, then 1x1 conv; keep the memory format (channels_last on CPU)
            x = x[:, :, ::self.stride_1x1, ::self.stride_1x1].contiguous(memory_format=torch.channels_last)
        x = self.act1(self.norm1(self.conv1(x)))
        x = self.act2(self.norm2(self.conv2(x)))
        x = self.conv3(self.se(x))
        return self.drop_path(x) + shortcut


class TransformerBlock(nn.Module):
    """Pre-norm Transformer block with relative attention on (N, H, W, C) tokens.

    With ``stride=2``: x <- Proj(Pool(x)) + Attention(Pool(LN(x))); with in_chs != out_chs and stride 1
    (CoAtNet-6/7's first Transformer block of S3): x <- Proj(x) + Attention(LN(x)). Then
    x <- x + FFN(LN(x)).
    """
    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            grid_size: Tuple[int, int],
            stride: int = 1,
            head_dim: int = 32,
            mlp_ratio: float = 4.,
            pool_type: str = 'max',
            drop_path: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.channels_last = True  # runs on (N, H, W, C)
        self.stride = stride
        self.pool_type = pool_type
        self.shortcut_proj = nn.Linear(in_chs, out_chs, **dd) if in_chs != out_chs else nn.Identity()
        self.norm1 = nn.LayerNorm(in_chs, **dd)
        self.attn = RelativeSelfAttention(in_chs, out_chs, grid_size, head_dim=head_dim, **dd)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = nn.LayerNorm(out_chs, **dd)
        self.mlp = Mlp(out_chs, int(out_chs * mlp_ratio), act_layer=nn.GELU, **dd)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.stride > 1:
            shortcut = pool_2x2_nhwc(shortcut, self.pool_type)
            x = pool_2x2_nhwc(x, self.pool_type)
        n, h, w, _ = x.shape
        x = self.attn(x.reshape(n, h * w, -1)).view(n, h, w, -1)  # tokens (N, L, C) in row-major order
        x = self.shortcut_proj(shortcut) + self.drop_path1(x)
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class CoAtNetStage(nn.Module):
    """Blocks of one stage (the first one downsamples by 2). Takes and returns (N, C, H, W); Transformer
    blocks run on (N, H, W, C) tokens, with one permute at each switch between block kinds."""

    def __init__(
            self,
            in_chs: int,
            kinds: str,
            widths: Sequence[int],
            grid_size: Tuple[int, int],
            reduction: int,
            drop_path_rates: Sequence[float],
            head_dim: int = 32,
            expand_ratio: float = 4.,
            se_ratio: float = 0.25,
            stride_placement: str = 'conv1x1',
            pool_type: str = 'max',
            device=None,
            dtype=None,
    ):
        """``kinds``: 'C' (MBConv) or 'T' (Transformer) per block; ``widths``: output width per block;
        ``grid_size``: (H, W) of the stage's output (the Transformer blocks' grid) for images of
        ``reduction`` times that size."""
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.grad_checkpointing = False
        self.grid_size = grid_size
        self.in_grid_size = (grid_size[0] * 2, grid_size[1] * 2)
        self.in_reduction = reduction // 2
        self.has_transformer = 'T' in kinds
        blocks = []
        for i, (kind, width) in enumerate(zip(kinds, widths)):
            stride = 2 if i == 0 else 1
            if kind == 'C':
                blocks.append(MBConvBlock(
                    in_chs, width, stride, expand_ratio=expand_ratio, se_ratio=se_ratio,
                    stride_placement=stride_placement, pool_type=pool_type, drop_path=drop_path_rates[i], **dd))
            else:
                blocks.append(TransformerBlock(
                    in_chs, width, grid_size, stride, head_dim=head_dim, pool_type=pool_type,
                    drop_path=drop_path_rates[i], **dd))
            in_chs = width
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.has_transformer:
            check_grid(x, self.in_grid_size, self.in_reduction)
        channels_last = False
        for block in self.blocks:
            if block.channels_last != channels_last:
                x = x.permute(0, 2, 3, 1) if block.channels_last else x.permute(0, 3, 1, 2)
                channels_last = block.channels_last
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(block, x)
            else:
                x = block(x)
        if channels_last:
            x = x.permute(0, 3, 1, 2)  # (N, C, H, W) in channels_last memory: no copy
        return x


class CoAtNet(StageNet):
    """CoAtNet classifier.

    Args:
        cfg: blocks / widths of the size (``model_cfgs``).
        img_size: input size (int or (H, W), multiples of 32); the relative-bias tables are built for it.
        block_layout: kind of S1..S4, 'C' MBConv or 'T' Transformer: 'CCTT' (paper), 'CCCT', 'CTTT', 'CCCC'.
        stride_placement: 'conv1x1' (stride in the MBConv's first 1x1 conv, Eq. 5) or 'dwconv' (Table 9).
        pool_type: 'max' or 'avg', the 2x2 pooling of the downsampling blocks' shortcut and attention input.
        head_dim: attention head size (default: the size's, 32 for CoAtNet-0..4).
        expand_ratio: MBConv expansion (of the output width); se_ratio: SE reduction (of the input width).
        head_hidden: the D x D pre-logits layer (Linear + tanh) between the head's LayerNorm and fc, as
            in Google's code and the paper's parameter counts (default); False for LayerNorm -> fc only.
        num_classes, in_chans, global_pool, drop_rate, drop_path_rate: as in timm.
    """

    def __init__(
            self,
            cfg: CoAtNetCfg = model_cfgs['coatnet_0'],
            img_size: Union[int, Tuple[int, int]] = 224,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = 'avg',
            block_layout: str = 'CCTT',
            stride_placement: str = 'conv1x1',
            pool_type: str = 'max',
            head_dim: Optional[int] = None,
            expand_ratio: float = 4.,
            se_ratio: float = 0.25,
            head_hidden: bool = True,
            drop_rate: float = 0.,
            drop_path_rate: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        img_size = tuple(int(s) for s in to_2tuple(img_size))
        if any(s <= 0 or s % 32 for s in img_size):
            raise ValueError(f'CoAtNet needs an img_size that is a multiple of 32 (five 2x downsamplings), '
                             f'got {img_size}')
        if block_layout not in BLOCK_LAYOUTS:
            raise ValueError(f'block_layout must be one of {BLOCK_LAYOUTS}, got {block_layout!r}')
        if pool_type not in ('max', 'avg'):
            raise ValueError(f"pool_type must be 'max' or 'avg', got {pool_type!r}")
        head_dim = head_dim or cfg.head_dim
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        self.stem = CoAtNetStem(in_chans, cfg.stem_width, **dd)
        self.feature_info = [dict(num_chs=cfg.stem_width, reduction=2, module='stem')]

        kinds = [block_layout[i] * d for i, d in enumerate(cfg.depths)]
        widths = [[w] * d for w, d in zip(cfg.widths, cfg.depths)]
        if cfg.s3_conv[0]:
            kinds[2] = 'C' * cfg.s3_conv[0] + kinds[2]
            widths[2] = [cfg.s3_conv[1]] * cfg.s3_conv[0] + widths[2]
        depths = [len(k) for k in kinds]
        dpr = calculate_drop_path_rates(drop_path_rate, depths, stagewise=True)  # per block, split by stage
        stages = []
        prev_chs = cfg.stem_width
        for i in range(4):
            reduction = 2 ** (i + 2)
            stages.append(CoAtNetStage(
                prev_chs, kinds[i], widths[i],
                grid_size=(img_size[0] // reduction, img_size[1] // reduction),
                reduction=reduction,
                drop_path_rates=dpr[i],
                head_dim=head_dim,
                expand_ratio=expand_ratio,
                se_ratio=se_ratio,
                stride_placement=stride_placement,
                pool_type=pool_type,
                **dd,
            ))
            prev_chs = widths[i][-1]
            self.feature_info.append(dict(num_chs=prev_chs, reduction=reduction, module=f'stages.{i}'))
        self.stages = nn.Sequential(*stages)

        self.norm = nn.Identity()  # the blocks are pre-norm: the final LayerNorm is the head's
        self.num_features = self.head_hidden_size = prev_chs
        self.head = NormMlpClassifierHead(
            prev_chs, num_classes, hidden_size=prev_chs if head_hidden else None, pool_type=global_pool,
            drop_rate=drop_rate, norm_layer='layernorm2d', act_layer='tanh', **dd)
        self.init_weights()

    def init_weights(self) -> None:
        """Linear: truncated normal (std 0.02); conv: normal with std sqrt(2 / fan_out); biases zero.
        The relative-bias tables keep their own init (truncated normal, std 0.02)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
                nn.init.normal_(m.weight, 0., (2. / fan_out) ** 0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return {n for n, _ in self.named_parameters() if n.endswith('relative_position_bias_table')}

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        check_coatnet_input(x, self.in_chans, self.img_size)
        # channels_last memory: oneDNN's depthwise / 3x3 convs are faster on it than on NCHW (CPU; see
        # docs/performance.md), the 1x1 convs become one matmul, and the Transformer stages' (N, H, W, C)
        # view is free
        return self.stem(x.contiguous(memory_format=torch.channels_last))


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: CoAtNet) -> Dict[str, torch.Tensor]:
    """Adapt a CoAtNet checkpoint to ``model``: unwrap training checkpoints ('state_dict' / 'model',
    'module.' / '_orig_mod.' prefixes), drop the gather-index buffers (rebuilt by the model) and resize
    the (heads, 2H-1, 2W-1) relative-bias tables bilinearly when the checkpoint was trained for another
    input size. Raises ``CheckpointMismatchError`` for a checkpoint of another variant."""
    state_dict = unwrap_state_dict(state_dict)
    own = model.state_dict()
    out = {}
    for k, v in state_dict.items():
        if k.endswith('relative_position_index'):
            continue
        if k.endswith('relative_position_bias_table') and k in own and v.shape != own[k].shape \
                and v.dim() == 3 and v.shape[0] == own[k].shape[0]:
            grid = ((own[k].shape[1] + 1) // 2, (own[k].shape[2] + 1) // 2)
            v = resize_relative_position_bias_table(v, grid)
        out[k] = v
    adaptable = ('head.fc.weight', 'head.fc.bias', 'stem.conv1.weight')
    return check_state_dict(
        out, model, f'{type(model).__name__} ({len(model.stages)} stages)', adaptable=adaptable)


def _create_coatnet(variant: str, pretrained: bool = False, **kwargs) -> CoAtNet:
    return build_model(
        CoAtNet, variant, pretrained,
        model_cfg=model_cfgs[variant],
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3, 4), flatten_sequential=True),
        **kwargs,
    )


def _cfg(size: int = 224, **kwargs) -> Dict[str, Any]:
    return base_cfg(
        input_size=(3, size, size), pool_size=(size // 32, size // 32), fixed_input_size=True,
        crop_pct=0.875 if size == 224 else 1.0, crop_mode='center', interpolation='bicubic',
        first_conv='stem.conv1', classifier='head.fc', license='apache-2.0', paper_ids='arXiv:2106.04803',
        paper_name='CoAtNet: Marrying Convolution and Attention for All Data Sizes',
        origin_url='https://arxiv.org/abs/2106.04803',  # no official code
        **kwargs)


# pretrained tags (weights trained here), the default first; the input size is the tag's suffix (224 without one)
_IN1K_TAGS = ('in1k', 'in1k_384', 'in1k_512', 'in21k_ft_in1k_384', 'in21k_ft_in1k_512')
_TAGS = {
    'coatnet_0': _IN1K_TAGS[:2], 'coatnet_1': _IN1K_TAGS[:2], 'coatnet_2': _IN1K_TAGS, 'coatnet_3': _IN1K_TAGS,
    'coatnet_4': _IN1K_TAGS[3:],
}


def _tag_size(tag: str) -> int:
    suffix = tag.rsplit('_', 1)[-1]
    return int(suffix) if suffix.isdigit() else 224


default_cfgs = generate_default_cfgs({
    **{
        f'{name}.{tag}': _cfg(
            _tag_size(tag), hf_hub_id=hub_id(f'{name}.{tag}'), hf_hub_filename='model.safetensors',
            notes=card.NOTES[f'{name}.{tag}'],
        )
        for name, tags in _TAGS.items() for tag in tags
    },
    # JFT-only sizes: no ImageNet result in the paper, no weights
    'coatnet_5': _cfg(), 'coatnet_6': _cfg(), 'coatnet_7': _cfg(),
})


@register_model
def coatnet_0(pretrained: bool = False, **kwargs) -> CoAtNet:
    """CoAtNet-0 (paper Table 3): 24.4M params, 4.1 GMACs at 224."""
    return _create_coatnet('coatnet_0', pretrained=pretrained, **kwargs)


@register_model
def coatnet_1(pretrained: bool = False, **kwargs) -> CoAtNet:
    """CoAtNet-1 (paper Table 3): 41.6M params, 8.2 GMACs at 224."""
    return _create_coatnet('coatnet_1', pretrained=pretrained, **kwargs)


@register_model
def coatnet_2(pretrained: bool = False, **kwargs) -> CoAtNet:
    """CoAtNet-2 (paper Table 3): 73.6M params, 15.6 GMACs at 224."""
    return _create_coatnet('coatnet_2', pretrained=pretrained, **kwargs)


@register_model
def coatnet_3(pretrained: bool = False, **kwargs) -> CoAtNet:
    """CoAtNet-3 (paper Table 3): 164.5M params, 34.5 GMACs at 224."""
    return _create_coatnet('coatnet_3', pretrained=pretrained, **kwargs)


@register_model
def coatnet_4(pretrained: bool = False, **kwargs) -> CoAtNet:
    """CoAtNet-4 (paper Table 3): 273.0M params, 60.4 GMACs at 224 (default tag: 384)."""
    return _create_coatnet('coatnet_4', pretrained=pretrained, **kwargs)


@register_model
def coatnet_5(pretrained: bool = False, **kwargs) -> CoAtNet:
    """CoAtNet-5 (paper Table 11, head size 64): 682.6M params, 142.2 GMACs at 224."""
    return _create_coatnet('coatnet_5', pretrained=pretrained, **kwargs)


@register_model
def coatnet_6(pretrained: bool = False, **kwargs) -> CoAtNet:
    """CoAtNet-6 (Table 12, head size 128; S3: 8 MBConv at 768 + 42 Transformer at 1536): 1.34B params."""
    return _create_coatnet('coatnet_6', pretrained=pretrained, **kwargs)


@register_model
def coatnet_7(pretrained: bool = False, **kwargs) -> CoAtNet:
    """CoAtNet-7 (Table 12, head size 128; S3: 8 MBConv at 1024 + 42 Transformer at 2048): 2.43B params."""
    return _create_coatnet('coatnet_7', pretrained=pretrained, **kwargs)
