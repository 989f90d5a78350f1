"""PVT (v1): Pyramid Vision Transformer, a four-stage Transformer backbone with spatial-reduction attention.

Paper: "Pyramid Vision Transformer: A Versatile Backbone for Dense Prediction without Convolutions", Wenhai Wang,
Enze Xie, Xiang Li, Deng-Ping Fan, Kaitao Song, Ding Liang, Tong Lu, Ping Luo, Ling Shao, ICCV 2021,
https://arxiv.org/abs/2102.12122
Official code (Apache-2.0): https://github.com/whai362/PVT (branch v1 ``pvt.py``, master ``classification/pvt.py``).
timm has only PVT v2 (``pvt_v2_b*``); these are the v1 networks ``pvt_tiny`` .. ``pvt_large``.

Network (stage i = 1..4, widths C_i = 64, 128, 320, 512, heads 1, 2, 5, 8, stride 4, 8, 16, 32):
    patch embedding: conv k = stride = P_i (P_1 = 4, else 2) -> flatten to tokens -> LayerNorm
    tokens:          x <- x + pos_embed_i   (stage 4 first prepends the class token; its pos_embed has one more row)
    blocks:          x <- x + SRA(LN(x), H, W);  x <- x + MLP(LN(x))   (MLP ratio 8, 8, 4, 4, GELU)
    between stages:  tokens back to (B, C, H, W) for the next patch embedding
    head:            LayerNorm -> class token -> fc
Spatial-reduction attention (SRA), head size C_i / heads, reduction ratio R_i = 8, 4, 2, 1:
    SRA(x) = softmax(Q K^T / sqrt(d)) V W_o,   Q = x W_q,   [K, V] = LN(Conv_{R_i x R_i, stride R_i}(x)) W_kv
(for R_i = 1 no conv and no LN: K, V from x itself). Depths: tiny (2, 2, 2, 2), small (3, 4, 6, 3),
medium (3, 4, 18, 3), large (3, 8, 27, 3).

Parameters (exact, 1000 classes; official README: 13.2 / 24.5 / 44.2 / 61.4M):
    pvt_tiny 13,229,288   pvt_small 24,485,864   pvt_medium 44,208,104   pvt_large 61,369,320
They do not depend on the input size: the position embeddings are sized for ``img_size`` (224) and
resized bilinearly to the grid of any other input (the official ``_get_pos_embed``), so any input of at
least 32 x 32 works (sides that are not multiples of 32 are floored by the strided convs, as in the official code).

Official layer norms: eps 1e-6 in the blocks and the final norm, PyTorch's default 1e-5 in the patch embeddings
and after the reduction conv; kept, so the official weights give the official outputs.

Official key names and ours (``checkpoint_filter_fn`` converts; inside a block the names are the official ones):
    patch_embed{i}.*  -> stages.{i-1}.patch_embed.*      pos_embed{i} -> stages.{i-1}.pos_embed
    block{i}.{j}.*    -> stages.{i-1}.blocks.{j}.*        cls_token    -> stages.3.cls_token
    norm, head        -> norm, head
Deviations from the official code: ``drop_rate`` is the classifier's dropout (timm's convention); the official
``drop_rate`` (after the position embedding, the attention projection and the MLP) is ``pos_drop_rate`` plus
``proj_drop_rate``. The official ``_get_pos_embed`` decides whether to resize by comparing the token count with
stage 1's at 224 (3136), we compare each stage's grid with its own: the same result, except where the official
test misfires: a stage-1 grid of another shape with 3136 tokens (112 x 448 inputs) is not resized, and a later
stage with 3136 tokens (448 x 448 inputs: stage 2) fails with a shape error; here both work.
``global_pool='avg'`` (mean of the patch tokens) is an option; the official head reads the class token.

The last stage carries the class token, so its output is a token sequence (B, 1 + H*W, C) and
``forward_features`` returns the normed sequence, as timm's ViT / PiT do; ``forward_intermediates`` (and so
``features_only=True``) drops the class token and gives (B, C, H, W) maps for all four stages.
"""
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from timm.layers import DropPath, Mlp, calculate_drop_path_rates, get_device_dtype, register_notrace_function, \
    resample_abs_pos_embed, to_2tuple, trunc_normal_, use_fused_attn
from timm.models import generate_default_cfgs, register_model
from timm.models._manipulate import checkpoint

from ..card_data import pvt as card
from ..hub import hub_id
from ._builder import base_cfg, build_model, cfg_kwargs
from ._checkpoint import check_state_dict, unwrap_state_dict
from ._stages import StageNet

__all__ = ['PyramidVisionTransformer', 'PvtCfg', 'PatchEmbed', 'SpatialReductionAttention', 'PvtBlock', 'PvtStage']

MIN_INPUT_SIZE = 32  # four strided patch embeddings (4, 2, 2, 2): stage 4 needs one token


@dataclass(frozen=True)
class PvtCfg:
    """One PVT size (paper Table 1): blocks per stage; the widths, heads, MLP and reduction ratios are shared by
    the four ImageNet models."""
    depths: Tuple[int, int, int, int]
    embed_dims: Tuple[int, int, int, int] = (64, 128, 320, 512)
    num_heads: Tuple[int, int, int, int] = (1, 2, 5, 8)
    mlp_ratios: Tuple[float, float, float, float] = (8., 8., 4., 4.)
    sr_ratios: Tuple[int, int, int, int] = (8, 4, 2, 1)


model_cfgs = dict(
    pvt_tiny=PvtCfg(depths=(2, 2, 2, 2)),
    pvt_small=PvtCfg(depths=(3, 4, 6, 3)),
    pvt_medium=PvtCfg(depths=(3, 4, 18, 3)),
    pvt_large=PvtCfg(depths=(3, 8, 27, 3)),
)


@register_notrace_function
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
def check_pvt_input(x: torch.Tensor, in_chans: int, min_size: int = MIN_INPUT_SIZE) -> None:
    if x.dim() != 4:
        raise ValueError('PVT expects a batch of images (N, C, H, W), got a tensor of shape {}'.format(
            list(x.shape)))
    if x.shape[1] != in_chans:
        raise ValueError('PVT was built for {} input channels (in_chans), got an input with {}'.format(
            in_chans, x.shape[1]))
    if x.shape[2] < min_size or x.shape[3] < min_size:
        raise ValueError('PVT needs inputs of at least {}x{} (stride 32 at stage 4), got {}x{}'.format(
            min_size, min_size, x.shape[2], x.shape[3]))


@register_notrace_function
@torch.fx.wrap
def pos_embed_for_grid(
        pos_embed: torch.Tensor, grid_size: Tuple[int, int], h: int, w: int, num_prefix_tokens: int) -> torch.Tensor:
    """The position embedding (1, prefix + gh * gw, C) of a ``grid_size`` grid for an (h, w) grid: itself, or its
    grid part resized bilinearly (align_corners=False, no antialiasing: the official ``_get_pos_embed``), the
    class token's row kept."""
    if h == grid_size[0] and w == grid_size[1]:
        return pos_embed
    return resample_abs_pos_embed(
        pos_embed, [h, w], old_size=[grid_size[0], grid_size[1]], num_prefix_tokens=num_prefix_tokens,
        interpolation='bilinear', antialias=False)


class PatchEmbed(nn.Module):
    """Non-overlapping patches: conv k = stride = ``patch_size`` -> LayerNorm, (B, C, H, W) -> (B, H', W', C')."""

    def __init__(self, in_chs: int, out_chs: int, patch_size: int, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chs, out_chs, kernel_size=patch_size, stride=patch_size, **dd)
        self.norm = nn.LayerNorm(out_chs, **dd)  # official: eps 1e-5 here

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class SpatialReductionAttention(nn.Module):
    """Multi-head attention whose keys and values come from the token grid reduced by an ``sr_ratio`` x
    ``sr_ratio`` strided conv + LayerNorm (paper Eq. 2-4); the queries from every token.

    Tokens (B, N, C) with N = H * W (or 1 + H * W with the class token, only where ``sr_ratio`` is 1).
    Official keys: q, kv (k and v stacked), proj, and for ``sr_ratio`` > 1 sr (conv) and norm.
    """

    def __init__(
            self,
            dim: int,
            num_heads: int,
            sr_ratio: int = 1,
            qkv_bias: bool = True,
            attn_drop: float = 0.,
            proj_drop: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not a multiple of num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.fused_attn = use_fused_attn()
        self.q = nn.Linear(dim, dim, bias=qkv_bias, **dd)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias, **dd)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim, **dd)
        self.proj_drop = nn.Dropout(proj_drop)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio, **dd)
            self.norm = nn.LayerNorm(dim, **dd)  # official: eps 1e-5 here
        else:
            self.sr = None
            self.norm = None

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.proj_drop(self.proj(self.attend(self.q(x), x, h, w)))

    def attend(self, q: torch.Tensor, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """The heads' attention output (B, N, C) before ``proj``, for the queries q = self.q(x) (B, N, C)."""
        B, N, C = x.shape
        q = q.reshape(B, N, self.num_heads, self.head_dim).permute(0, 2, 1, 3)  # (B, heads, N, d)
        if self.sr is not None and self.norm is not None:
            kv_in = x.permute(0, 2, 1).reshape(B, C, h, w)  # tokens back on their grid
            kv_in = self.norm(self.sr(kv_in).flatten(2).transpose(1, 2))  # (B, h/R * w/R, C)
        else:
            kv_in = x
        # (B, M, 2 * C) -> (2, B, heads, M, d): k and v
        k, v = self.kv(kv_in).reshape(B, -1, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = self.attn_drop(attn.softmax(dim=-1))
            x = attn @ v
        return x.transpose(1, 2).reshape(B, N, C)


class PvtBlock(nn.Module):
    """Pre-norm Transformer block with spatial-reduction attention (official ``Block``; LayerNorm eps 1e-6)."""

    def __init__(
            self,
            dim: int,
            num_heads: int,
            mlp_ratio: float = 4.,
            sr_ratio: int = 1,
            qkv_bias: bool = True,
            proj_drop: float = 0.,
            attn_drop: float = 0.,
            drop_path: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, **dd)
        self.attn = SpatialReductionAttention(
            dim, num_heads, sr_ratio=sr_ratio, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop, **dd)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, **dd)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=proj_drop, **dd)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x), h, w))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class PvtStage(nn.Module):
    """Patch embedding -> (class token) -> + position embedding -> blocks.

    Takes (B, C_in, H_in, W_in); returns (B, C, H, W), or with ``cls_token`` the tokens (B, 1 + H * W, C),
    class token first. The position embedding is sized for ``grid_size`` and resized for other grids.
    """

    def __init__(
            self,
            in_chs: int,
            dim: int,
            depth: int,
            num_heads: int,
            patch_size: int,
            grid_size: Tuple[int, int],
            mlp_ratio: float = 4.,
            sr_ratio: int = 1,
            cls_token: bool = False,
            qkv_bias: bool = True,
            pos_drop: float = 0.,
            proj_drop: float = 0.,
            attn_drop: float = 0.,
            drop_path_rates: Optional[List[float]] = None,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if cls_token and sr_ratio > 1:
            raise ValueError('the class token needs sr_ratio 1 in its stage (the reduction conv sees only the grid)')
        self.grad_checkpointing = False
        self.patch_size = patch_size
        self.grid_size = grid_size
        self.num_prefix_tokens = 1 if cls_token else 0
        self.patch_embed = PatchEmbed(in_chs, dim, patch_size, **dd)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim, **dd)) if cls_token else None
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.num_prefix_tokens + grid_size[0] * grid_size[1], dim, **dd))
        self.pos_drop = nn.Dropout(pos_drop)
        dpr = drop_path_rates or [0.] * depth
        self.blocks = nn.ModuleList([
            PvtBlock(dim, num_heads, mlp_ratio=mlp_ratio, sr_ratio=sr_ratio, qkv_bias=qkv_bias, proj_drop=proj_drop,
                     attn_drop=attn_drop, drop_path=dpr[j], **dd)
            for j in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # (B, H, W, C)
        B, H, W, C = x.shape
        x = x.reshape(B, H * W, C)
        pos_embed = pos_embed_for_grid(self.pos_embed, self.grid_size, H, W, self.num_prefix_tokens)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = self.pos_drop(x + pos_embed)
        for block in self.blocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(block, x, H, W)
            else:
                x = block(x, H, W)
        if self.cls_token is None:
            x = x.reshape(B, H, W, C).permute(0, 3, 1, 2)  # (B, C, H, W) for the next patch embedding
        return x


class PyramidVisionTransformer(StageNet):
    """PVT (v1) classifier / backbone.

    Args:
        depths, embed_dims, num_heads, mlp_ratios, sr_ratios: per stage (``model_cfgs``; paper Table 1).
        img_size: the input size the position embeddings are sized for (224, as the official weights); other
            inputs resize them on the fly.
        patch_size: stage 1's patch size (4; stages 2-4 use 2).
        global_pool: 'token' (class token, official), 'avg' (mean of the patch tokens) or '' (the token sequence).
        qkv_bias: biases of q / kv (True in the official models).
        drop_rate: classifier dropout; pos_drop_rate / proj_drop_rate / attn_drop_rate / drop_path_rate: dropout
            after the position embedding / after the attention projection and in the MLP / of the attention
            weights, stochastic depth (linear over all blocks).
        num_classes, in_chans: as in timm.
    """

    def __init__(
            self,
            depths: Tuple[int, ...] = (2, 2, 2, 2),
            embed_dims: Tuple[int, ...] = (64, 128, 320, 512),
            num_heads: Tuple[int, ...] = (1, 2, 5, 8),
            mlp_ratios: Tuple[float, ...] = (8., 8., 4., 4.),
            sr_ratios: Tuple[int, ...] = (8, 4, 2, 1),
            img_size: Union[int, Tuple[int, int]] = 224,
            patch_size: int = 4,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = 'token',
            qkv_bias: bool = True,
            drop_rate: float = 0.,
            pos_drop_rate: float = 0.,
            proj_drop_rate: float = 0.,
            attn_drop_rate: float = 0.,
            drop_path_rate: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        num_stages = len(depths)
        if not all(len(v) == num_stages for v in (embed_dims, num_heads, mlp_ratios, sr_ratios)):
            raise ValueError('depths, embed_dims, num_heads, mlp_ratios and sr_ratios need one value per stage')
        if global_pool not in ('', 'token', 'avg'):
            raise ValueError(f"global_pool must be 'token', 'avg' or '', got {global_pool!r}")
        img_size = tuple(int(s) for s in to_2tuple(img_size))
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        self.global_pool = global_pool
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        dpr = calculate_drop_path_rates(drop_path_rate, list(depths), stagewise=True)  # per block, split by stage
        stages = []
        self.feature_info = []
        prev_chs, reduction = in_chans, 1
        for i in range(num_stages):
            stage_patch = patch_size if i == 0 else 2
            reduction *= stage_patch
            stages.append(PvtStage(
                prev_chs, embed_dims[i], depths[i], num_heads[i], stage_patch,
                grid_size=(img_size[0] // reduction, img_size[1] // reduction),
                mlp_ratio=mlp_ratios[i], sr_ratio=sr_ratios[i], cls_token=i == num_stages - 1, qkv_bias=qkv_bias,
                pos_drop=pos_drop_rate, proj_drop=proj_drop_rate, attn_drop=attn_drop_rate,
                drop_path_rates=dpr[i], **dd))
            prev_chs = embed_dims[i]
            self.feature_info.append(dict(num_chs=prev_chs, reduction=reduction, module=f'stages.{i}'))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(prev_chs, eps=1e-6, **dd)
        self.num_features = self.head_hidden_size = prev_chs
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(prev_chs, num_classes, **dd) if num_classes > 0 else nn.Identity()
        self.init_weights()

    def init_weights(self) -> None:
        """The official init: position embeddings, class token and Linear weights truncated normal (std 0.02),
        Linear biases zero, LayerNorms one / zero, convs PyTorch's default."""
        for stage in self.stages:
            trunc_normal_(stage.pos_embed, std=.02)
            if stage.cls_token is not None:
                trunc_normal_(stage.cls_token, std=.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return {n for n, _ in self.named_parameters() if n.endswith(('pos_embed', 'cls_token'))}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        # a stage's patch embedding, position embedding and class token go with its first block
        return dict(
            stem=r'^stages\.0\.(?:patch_embed|pos_embed)',
            blocks=r'^stages\.(\d+)' if coarse else [
                (r'^stages\.(\d+)\.(?:patch_embed|pos_embed|cls_token)', (0,)),
                (r'^stages\.(\d+)\.blocks\.(\d+)', None),
                (r'^norm', (99999,)),
            ],
        )

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        if global_pool is not None:
            if global_pool not in ('', 'token', 'avg'):
                raise ValueError(f"global_pool must be 'token', 'avg' or '', got {global_pool!r}")
            self.global_pool = global_pool
        self.num_classes = num_classes
        if num_classes > 0:
            self.head = nn.Linear(self.num_features, num_classes, **get_device_dtype(self)).train(self.training)
        else:
            self.head = nn.Identity()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        check_pvt_input(x, self.in_chans)
        return x

    def stage_intermediate(
            self, stage: nn.Module, x_in: torch.Tensor, x: torch.Tensor, final_norm: bool) -> torch.Tensor:
        """A stage's output as a (B, C, H, W) map: the last stage's tokens (B, 1 + H * W, C) without the class
        token, after the final norm where ``final_norm``."""
        if not stage.num_prefix_tokens:
            return x
        if final_norm:
            x = self.norm(x)
        h, w = x_in.shape[2] // stage.patch_size, x_in.shape[3] // stage.patch_size
        return x[:, stage.num_prefix_tokens:].reshape(x.shape[0], h, w, -1).permute(0, 3, 1, 2)

    def reset_pruned_head(self, reset_other: bool) -> None:
        self.reset_classifier(0, '')

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == 'token':
            x = x[:, 0]
        elif self.global_pool == 'avg':
            x = x[:, 1:].mean(dim=1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)


# official name -> ours (module docstring)
_OFFICIAL_KEYS = (
    (r'^patch_embed(\d)\.', lambda m: f'stages.{int(m.group(1)) - 1}.patch_embed.'),
    (r'^pos_embed(\d)$', lambda m: f'stages.{int(m.group(1)) - 1}.pos_embed'),
    (r'^block(\d)\.', lambda m: f'stages.{int(m.group(1)) - 1}.blocks.'),
)


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: PyramidVisionTransformer) -> Dict[str, torch.Tensor]:
    """Convert an official PVT checkpoint (the released ``pvt_*.pth``: the model's ``state_dict()``, bare or in
    'model' / 'state_dict', with or without 'module.') to this model; a checkpoint in this model's layout passes
    through. Position embeddings of another grid (a model built with another ``img_size``) are resized
    bilinearly. Raises ``CheckpointMismatchError`` naming the first mismatched keys for another variant."""
    state_dict = unwrap_state_dict(state_dict)
    if 'pos_embed1' in state_dict:
        last = len(model.stages) - 1
        converted = {}
        for k, v in state_dict.items():
            if k == 'cls_token':
                k = f'stages.{last}.cls_token'
            for pattern, repl in _OFFICIAL_KEYS:
                k, n = re.subn(pattern, repl, k)
                if n:
                    break
            converted[k] = v
        state_dict = converted
    for i, stage in enumerate(model.stages):
        k = f'stages.{i}.pos_embed'
        v = state_dict.get(k)
        if v is not None and v.dim() == 3 and v.shape[1:] != stage.pos_embed.shape[1:] \
                and v.shape[2] == stage.pos_embed.shape[2]:
            side = int(round((v.shape[1] - stage.num_prefix_tokens) ** 0.5))  # released grids are square
            if side * side + stage.num_prefix_tokens == v.shape[1]:
                state_dict[k] = resample_abs_pos_embed(
                    v, list(stage.grid_size), old_size=[side, side], num_prefix_tokens=stage.num_prefix_tokens,
                    interpolation='bilinear', antialias=False)
    # timm adapts these after the filter (num_classes / in_chans different from the checkpoint's)
    adaptable = ('head.weight', 'head.bias', 'stages.0.patch_embed.proj.weight')
    return check_state_dict(
        state_dict, model, f'{type(model).__name__} (depths {[len(s.blocks) for s in model.stages]})',
        adaptable=adaptable)


def _create_pvt(variant: str, pretrained: bool = False, **kwargs) -> PyramidVisionTransformer:
    return build_model(
        PyramidVisionTransformer, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(feature_cls='getter', out_indices=(0, 1, 2, 3)),
        **cfg_kwargs(model_cfgs[variant], kwargs),
    )


def _cfg(**kwargs) -> Dict[str, Any]:
    # official evaluation: DeiT's transforms (resize 256 bicubic, center crop 224)
    return base_cfg(
        min_input_size=(3, MIN_INPUT_SIZE, MIN_INPUT_SIZE), interpolation='bicubic',
        first_conv='stages.0.patch_embed.proj', classifier='head', license='apache-2.0',
        paper_ids='arXiv:2102.12122',
        paper_name='Pyramid Vision Transformer: A Versatile Backbone for Dense Prediction without Convolutions',
        origin_url='https://github.com/whai362/PVT', **kwargs)


# weights converted from the official checkpoints; the paper's numbers are card data
default_cfgs = generate_default_cfgs({
    name_tag: _cfg(hf_hub_id=hub_id(name_tag), hf_hub_filename='model.safetensors', notes=card.NOTES[name_tag])
    for name_tag in ('pvt_tiny.in1k', 'pvt_small.in1k', 'pvt_medium.in1k', 'pvt_large.in1k')
})


@register_model
def pvt_tiny(pretrained: bool = False, **kwargs) -> PyramidVisionTransformer:
    """PVT-Tiny (depths 2-2-2-2): 13.2M params."""
    return _create_pvt('pvt_tiny', pretrained=pretrained, **kwargs)


@register_model
def pvt_small(pretrained: bool = False, **kwargs) -> PyramidVisionTransformer:
    """PVT-Small (depths 3-4-6-3): 24.5M params."""
    return _create_pvt('pvt_small', pretrained=pretrained, **kwargs)


@register_model
def pvt_medium(pretrained: bool = False, **kwargs) -> PyramidVisionTransformer:
    """PVT-Medium (depths 3-4-18-3): 44.2M params."""
    return _create_pvt('pvt_medium', pretrained=pretrained, **kwargs)


@register_model
def pvt_large(pretrained: bool = False, **kwargs) -> PyramidVisionTransformer:
    """PVT-Large (depths 3-8-27-3): 61.4M params."""
    return _create_pvt('pvt_large', pretrained=pretrained, **kwargs)
