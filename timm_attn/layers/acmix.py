"""ACmix: shared 1x1 projections feeding a local self-attention path and a convolution path.

Pan et al., "On the Integration of Self-Attention and Convolution", CVPR 2022 (arXiv:2111.14556),
official code https://github.com/LeapLabTHU/ACmix (``ResNet/test_bottleneck.py``: ``ACmix``).

    q, k, v = W_q x + b_q, W_k x + b_k, W_v x + b_v                 (1x1 convs, computed once)
    att:  out_att(i) = sum_{j in N_7(i)} softmax_j( q_i . (k_j + pe_i - pe_j) / sqrt(d) ) v_j
          per head (channels head * d + c), pe = conv_p(x / y grid in [-1, 1]), 7 x 7 window
          on reflection-padded k, v, pe centred on the query (sampled at stride s)
    conv: out_conv = dep_conv( fc( [q; k; v] ) )                   fc: 3*head -> k_c^2 per channel c,
          dep_conv: grouped k_c x k_c conv (groups d, padding k_c // 2, stride s, no bias)
    out = rate1 * out_att + rate2 * out_conv                       rate1 = rate2 = 0.5 at init

Exact rewrite of the official module (same state_dict: ``conv1/2/3`` = q/k/v, ``conv_p``, ``fc``,
``dep_conv``, ``rate1``, ``rate2``), computed without its 49-fold ``unfold`` copies:
- q . pe_i is the same for every key of a query and cancels in the softmax, so it is dropped and
  the keys become k - pe (one map, padded once); the [-1, 1] grid is cached per size / device / dtype.
- eager float32 / float64 (eval and training): query tiles and their key regions are gathered from qkv with
  precomputed indices and attended by one ``scaled_dot_product_attention`` masked to each query's window (its
  backward keeps no attention weights); in CPU training qkv is channels_last, where oneDNN's backward of the
  conv path's grouped conv is an order of magnitude faster than on NCHW maps.
- half dtypes, TorchScript and compiled graphs: ``sliding_window_attention`` (offset loop on strided views,
  custom backward).
Beyond the official code (which fails there): any dtype (fp16 / bf16 autocast), odd sizes with
stride 2 (output ceil(H / s), as the conv path), and maps not larger than the reflection padding
(3 for a 7 x 7 window): the reflection is continued periodically (``mirror_pad``) and a 1-pixel
side repeats its pixel; where ReflectionPad2d works the result is the official one.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from timm.layers import register_notrace_module

from ._ops import pointwise_conv
from ._ops.caching import tensor_cache
from .san import position_grid
from .sliding_window_attention import _tile_mask, mirror_index, mirror_pad, sliding_window_attention, \
    sliding_window_attention_plain

__all__ = ['ACmix', 'ACmixConvPathMixin', 'acmix_position_grid', 'fold_fc_into_dep_conv', 'shift_kernels']


acmix_position_grid = position_grid  # (1, 2, H, W) x / y grid in [-1, 1]; the name is exported by timm_attn.layers


@tensor_cache(maxsize=32)
def _cached_position_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    with torch.inference_mode(False):  # a normal tensor even when first built under inference_mode
        return position_grid(h, w, device, dtype)


# largest query tile side of the gather attention (small tiles: fewer masked logits, larger key gathers)
GATHER_TILE = 7


def _attention_tile(h: int, w: int, stride: int) -> int:
    """Query tile side for the gather attention: ``GATHER_TILE``, or the whole output map when smaller."""
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    return min(max(ho, wo), GATHER_TILE)


@tensor_cache(maxsize=64)
def _gather_indices(
        h: int, w: int, stride: int, kernel: int, tile: int, nh: int, d: int, channels_last: bool,
        device: torch.device,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat indices into one image's qkv (d, 3 * nh, H * W) (channel c * 3nh + t * nh + head) for the gather attention:
    q (nh, tiles, T*T, d), k and v (nh, tiles, R*R, d), the output (nh * d * Ho * Wo) into
    the attention result (nh, tiles, T*T, d), and the key pixels (tiles * R*R) into the H * W map. Key positions of the
    reflection-padded map are mapped back to their source pixel (mirror-periodic, as ``mirror_pad``); tiles past the
    map edge repeat valid pixels (cropped)."""
    with torch.inference_mode(False):
        hw = h * w
        ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
        th, tw = -(-ho // tile), -(-wo // tile)
        span = (tile - 1) * stride + kernel
        pad = kernel // 2
        t = torch.arange(tile)
        qy = (torch.arange(th)[:, None] * tile + t).clamp(max=ho - 1) * stride  # (th, T) source rows
        qx = (torch.arange(tw)[:, None] * tile + t).clamp(max=wo - 1) * stride
        q_pos = (qy[:, None, :, None] * w + qx[None, :, None, :]).reshape(th * tw, tile * tile)
        r = torch.arange(span)

        def keys(n_tiles: int, size: int) -> torch.Tensor:
            padded = torch.arange(n_tiles)[:, None] * tile * stride + r  # padded coordinate
            extra = n_tiles * tile * stride + span  # mirror_index covers -extra .. size + extra - 1
            return mirror_index(size, extra, torch.device('cpu'))[padded - pad + extra]

        ky, kx = keys(th, h), keys(tw, w)
        k_pos = (ky[:, None, :, None] * w + kx[None, :, None, :]).reshape(th * tw, span * span)
        heads = torch.arange(nh)[:, None, None, None]
        ch = torch.arange(d)
        chan_stride, pix_stride = (1, 3 * nh * d) if channels_last else (hw, 1)
        chan = ch * (3 * nh)  # channel c * 3nh + t * nh + head
        idx_q = (chan[None, None, None, :] + heads) * chan_stride + q_pos[None, :, :, None] * pix_stride
        idx_k = (chan[None, None, None, :] + nh + heads) * chan_stride + k_pos[None, :, :, None] * pix_stride
        idx_v = (chan[None, None, None, :] + 2 * nh + heads) * chan_stride + k_pos[None, :, :, None] * pix_stride
        # output (head, c, y, x) (NCHW) or (y, x, head, c) (channels_last) <- result (head, tile, T*T, d)
        oy, ox = torch.arange(ho), torch.arange(wo)
        tile_of = (oy[:, None] // tile) * tw + ox[None, :] // tile  # (Ho, Wo)
        in_tile = (oy[:, None] % tile) * tile + ox[None, :] % tile
        if channels_last:
            heads, ch = heads.view(nh, 1), ch.view(1, d)
            tile_of, in_tile = tile_of[:, :, None, None], in_tile[:, :, None, None]
        else:
            heads, ch = heads.view(nh, 1, 1, 1), ch.view(1, d, 1, 1)
        idx_o = ((heads * (th * tw) + tile_of) * (tile * tile) + in_tile) * d + ch
        return tuple(i.to(device) for i in (idx_q, idx_k, idx_v, idx_o.reshape(-1), k_pos.reshape(-1)))


def shift_kernels(out_chs: int, kernel_size: int, device=None, dtype=None) -> torch.Tensor:
    """(out, k*k, k, k) weights of a grouped conv that shifts: input channel i of a group copies tap i."""
    kk = kernel_size * kernel_size
    kernel = torch.zeros(kk, kernel_size, kernel_size, device=device, dtype=dtype)
    kernel.view(kk, kk).fill_diagonal_(1.0)  # tap i = (i // k, i % k)
    return kernel.unsqueeze(0).repeat(out_chs, 1, 1, 1)


def fold_fc_into_dep_conv(fc_weight: torch.Tensor, dep_weight: torch.Tensor) -> torch.Tensor:
    """The weight (out, m, k, k) of the one grouped conv equal to ``dep_conv(fc(.))``: fc (k*k, m[, 1, 1]) maps
    the m maps of a channel to k*k, dep_conv (out, k*k, k, k) is grouped by channel:
    W[o, j] = sum_i W_dep[o, i] W_fc[i, j]."""
    out, kk = dep_weight.shape[0], dep_weight.shape[1]
    k = dep_weight.shape[-1]
    fc = fc_weight.reshape(kk, -1)
    dep = dep_weight.reshape(out, kk, kk)  # (out, i, tap)
    # contiguous: a weight with channels-last-like strides would make the conv (and the network) channels_last
    return torch.matmul(dep.transpose(1, 2), fc).transpose(1, 2).contiguous().view(out, fc.shape[1], k, k)


class ACmixConvPathMixin:
    """The convolution path that ACmix adds next to an existing attention module (ACmix-Swin, -SAN, -PVT):
    ``fc`` (1x1 conv m -> k*k over the m maps of each channel), ``dep_conv`` (k x k conv grouped by channel, zero
    padding, no bias, shift-kernel init) and the mixing weights ``rate1`` / ``rate2`` (0.5 at init), registered in
    this order by ``init_conv_path``."""

    def init_conv_path(self, num_maps: int, groups: int, out_chs: int, kernel_conv: int, fc_bias: bool = False,
                       device=None, dtype=None) -> None:
        dd = {'device': device, 'dtype': dtype}
        if kernel_conv < 1 or kernel_conv % 2 == 0:
            raise ValueError(f'kernel_conv must be a positive odd number, got {kernel_conv}')
        self.kernel_conv = kernel_conv
        kk = kernel_conv * kernel_conv
        self.fc = nn.Conv2d(num_maps, kk, 1, bias=fc_bias, **dd)
        self.dep_conv = nn.Conv2d(
            kk * groups, out_chs, kernel_conv, padding=kernel_conv // 2, groups=groups, bias=False, **dd)
        self.rate1 = nn.Parameter(torch.empty(1, **dd))
        self.rate2 = nn.Parameter(torch.empty(1, **dd))
        self.reset_acmix_parameters()

    def reset_acmix_parameters(self) -> None:
        """Official init: rates 0.5, dep_conv as shift kernels (fc keeps PyTorch's default init)."""
        with torch.no_grad():
            self.rate1.fill_(0.5)
            self.rate2.fill_(0.5)
            w = self.dep_conv.weight
            w.copy_(shift_kernels(w.shape[0], self.kernel_conv, device=w.device, dtype=w.dtype))

    def fused_conv_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """rate2 * dep_conv(fc(.)) as one grouped conv's weight (out, m, k, k) (fc without bias only)."""
        return (fold_fc_into_dep_conv(self.fc.weight, self.dep_conv.weight) * self.rate2).to(dtype)


@register_notrace_module  # shape-dependent padding / caching: a leaf for torch.fx
class ACmix(nn.Module):
    """ACmix module of the official ACmix-ResNet (replaces the bottleneck's 3x3 conv).

    Args:
        in_chs, out_chs: channels; out_chs must divide into ``head`` heads.
        kernel_att: attention window (official 7).
        head: attention heads (official 4).
        kernel_conv: kernel of the convolution path (official 3).
        stride: output stride of both paths; the output is ceil(H / stride) x ceil(W / stride).
        dilation: only 1 (the official module ignores dilation in its unfold and dep_conv).
    """

    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            kernel_att: int = 7,
            head: int = 4,
            kernel_conv: int = 3,
            stride: int = 1,
            dilation: int = 1,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if out_chs % head != 0:
            raise ValueError(f'out_chs ({out_chs}) must be divisible by head ({head})')
        if kernel_att < 1 or kernel_att % 2 == 0 or kernel_conv < 1 or kernel_conv % 2 == 0:
            raise ValueError(
                f'kernel_att and kernel_conv must be positive odd numbers, got {kernel_att}, {kernel_conv}')
        if stride < 1:
            raise ValueError(f'stride must be >= 1, got {stride}')
        if dilation != 1:
            raise ValueError(f'ACmix supports dilation 1 only (as the official module), got {dilation}')
        self.in_chs = in_chs
        self.out_chs = out_chs
        self.head = head
        self.head_dim = out_chs // head
        self.kernel_att = kernel_att
        self.kernel_conv = kernel_conv
        self.stride = stride
        self.scale = self.head_dim ** -0.5

        self.rate1 = nn.Parameter(torch.empty(1, **dd))
        self.rate2 = nn.Parameter(torch.empty(1, **dd))
        self.conv1 = nn.Conv2d(in_chs, out_chs, 1, **dd)  # q
        self.conv2 = nn.Conv2d(in_chs, out_chs, 1, **dd)  # k
        self.conv3 = nn.Conv2d(in_chs, out_chs, 1, **dd)  # v
        self.conv_p = nn.Conv2d(2, self.head_dim, 1, **dd)  # position encoding, shared by the heads
        kk = kernel_conv * kernel_conv
        self.fc = nn.Conv2d(3 * head, kk, 1, bias=False, **dd)
        self.dep_conv = nn.Conv2d(
            kk * self.head_dim, out_chs, kernel_conv, stride=stride, padding=kernel_conv // 2,
            groups=self.head_dim, bias=False, **dd)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official init: rates 0.5, dep_conv as shift kernels (the ACmix-ResNet's kaiming init overwrites them)."""
        with torch.no_grad():
            self.rate1.fill_(0.5)
            self.rate2.fill_(0.5)
            self.dep_conv.weight.copy_(shift_kernels(
                self.out_chs, self.kernel_conv, device=self.dep_conv.weight.device, dtype=self.dep_conv.weight.dtype))

    def extra_repr(self) -> str:
        return (f'{self.in_chs}, {self.out_chs}, kernel_att={self.kernel_att}, head={self.head}, '
                f'kernel_conv={self.kernel_conv}, stride={self.stride}')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_chs:
            raise ValueError(f'ACmix expects (N, {self.in_chs}, H, W) input, got {list(x.shape)}')
        b, _, h, w = x.shape
        nh, d, s = self.head, self.head_dim, self.stride
        # The three projections as one matmul whose output channels are in the conv path's order c * 3head + j
        # (j = t * head + head index for t = q, k, v; official channel j * d + c), q pre-scaled by d ** -0.5.
        b1, b2, b3 = self.conv1.bias, self.conv2.bias, self.conv3.bias
        assert b1 is not None and b2 is not None and b3 is not None  # for TorchScript (Optional)
        qkv_scale = torch.ones(3 * nh, 1, device=x.device, dtype=self.conv1.weight.dtype)
        qkv_scale[:nh] = self.scale
        weight = torch.cat([self.conv1.weight, self.conv2.weight, self.conv3.weight]).view(3 * nh, d, -1)
        weight = (weight * qkv_scale.unsqueeze(-1)).transpose(0, 1).reshape(3 * nh * d, -1)
        bias = (torch.cat([b1, b2, b3]).view(3 * nh, d) * qkv_scale).t().reshape(-1)
        nchw_out = False
        if not torch.jit.is_scripting() and self._train_channels_last(x):
            # NHWC qkv in CPU training: oneDNN's grouped-conv backward below is an order of magnitude faster on
            # channels_last maps, and the gather attention reads either layout
            # (the copy after the matmul: a linear over permuted x would store an NHWC copy of x for backward)
            qkv = pointwise_conv(x, weight, bias).contiguous(memory_format=torch.channels_last)
            nchw_out = x.is_contiguous()
        else:
            qkv = pointwise_conv(x, weight, bias)  # (B, d * 3head, H, W)
        # conv path: dep_conv(fc(.)) is one grouped conv of the 3head maps of each channel c (fc folded into
        # dep_conv: W[o, j] = sum_i W_dep[o, i] W_fc[i, j]), rate2 and the undone q scale folded in
        kk = self.kernel_conv * self.kernel_conv
        unscale = torch.ones(3 * nh, device=x.device, dtype=self.conv1.weight.dtype)
        unscale[:nh] = 1.0 / self.scale
        fc = self.fc.weight.view(kk, 3 * nh) * unscale
        conv_weight = fold_fc_into_dep_conv(fc, self.dep_conv.weight) * self.rate2  # (out, 3head, k, k)
        out = F.conv2d(qkv, conv_weight.to(qkv.dtype), None, s, self.kernel_conv // 2, 1, d)
        if torch.jit.is_scripting():
            pe = self.conv_p(position_grid(h, w, qkv.device, self.conv_p.weight.dtype))
        else:
            if self._use_gather_attention(qkv):
                out = out.addcmul_(self._gather_attention(qkv), self.rate1.to(out.dtype))
                return out.contiguous() if nchw_out else out
            pe = self.conv_p(self._position_grid(h, w, qkv.device, self.conv_p.weight.dtype))
        out_att = self._attention(qkv, pe)
        return torch.addcmul(out, out_att, self.rate1)

    def _attention(self, qkv: torch.Tensor, pe: torch.Tensor) -> torch.Tensor:
        b, _, h, w = qkv.shape
        nh, d, s = self.head, self.head_dim, self.stride
        q, k, v = qkv.view(b, d, 3, nh, h, w).transpose(1, 3).unbind(2)  # (B, head, d, H, W) views
        pe = pe.to(k.dtype).view(1, 1, d, h, w)
        # logits q_i . (k_j + pe_i - pe_j): q_i . pe_i cancels in the softmax -> keys k - pe
        pad = self.kernel_att // 2
        k = mirror_pad((k - pe).reshape(b * nh, d, h, w), pad)
        v = mirror_pad(v.reshape(b * nh, d, h, w), pad)
        q = q[..., ::s, ::s].reshape(b * nh, d, (h - 1) // s + 1, (w - 1) // s + 1)
        if torch.jit.is_scripting():
            out = sliding_window_attention_plain(q, k, v, self.kernel_att, s)
        else:
            out = self._sliding_window_attention(q, k, v)
        return out.reshape(b, self.out_chs, out.shape[-2], out.shape[-1])  # channel head * d + c

    @torch.jit.unused
    def _records_autograd(self, x: torch.Tensor) -> bool:
        """Autograd records this call: the input or any weight needs a gradient."""
        return torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))

    @torch.jit.unused
    def _train_channels_last(self, x: torch.Tensor) -> bool:
        """qkv in channels_last: eager CPU training in float32 / float64 (the layout of the gather attention)."""
        return x.device.type == 'cpu' and x.dtype in (torch.float32, torch.float64) \
            and not torch.compiler.is_compiling() and not torch.jit.is_tracing() and self._records_autograd(x)

    @torch.jit.unused
    def _use_gather_attention(self, qkv: torch.Tensor) -> bool:
        """The gather attention (fused ``scaled_dot_product_attention``) runs eagerly in float32 / float64, in eval
        and in training; half dtypes, compiled graphs and traces that record autograd (torch.onnx's TorchScript
        exporter: its gathers would bake in the traced batch) take ``sliding_window_attention``."""
        if torch.jit.is_tracing() and self._records_autograd(qkv):
            return False
        return qkv.dtype in (torch.float32, torch.float64) and not torch.compiler.is_compiling()

    @torch.jit.unused
    def _gather_attention(self, qkv: torch.Tensor) -> torch.Tensor:
        """Attention (B, out, Ho, Wo) in the layout of qkv (NCHW or channels_last): tiles of queries / key regions
        gathered from qkv with one precomputed index each (reflection, stride and tiling in the index), one fused
        ``scaled_dot_product_attention`` masked to each query's window (same softmax as ``sliding_window_attention``).

        Without autograd recording the keys k - pe are formed in place in qkv (overwriting k). With autograd qkv is
        left intact (the conv path saves it for backward whenever any of its weights needs a gradient, not only the
        projections) and pe is gathered and subtracted per key tile; backward is SDPA's (it keeps q, k, v tiles, the
        output and the log-sum-exp, never the (T*T, R*R) weights) and the gathers' index-add."""
        b, _, h, w = qkv.shape
        nh, d = self.head, self.head_dim
        channels_last = qkv.is_contiguous(memory_format=torch.channels_last) and not qkv.is_contiguous()
        pe = self.conv_p(self._position_grid(h, w, qkv.device, self.conv_p.weight.dtype)).to(qkv.dtype)
        pe = pe.view(d, 1, h * w)
        in_place = not self._records_autograd(qkv)
        flat = qkv.permute(0, 2, 3, 1).reshape(b, -1) if channels_last else qkv.contiguous().view(b, -1)
        if in_place:  # keys k - pe (see _attention); flat is a view of qkv
            if channels_last:
                flat.view(b, h * w, d, 3, nh)[:, :, :, 1].sub_(pe.permute(2, 0, 1))
            else:
                flat.view(b, d, 3, nh, h * w)[:, :, 1].sub_(pe)
        tile = _attention_tile(h, w, self.stride)
        idx_q, idx_k, idx_v, idx_o, key_pixels = _gather_indices(
            h, w, self.stride, self.kernel_att, tile, nh, d, channels_last, qkv.device)
        span = idx_k.shape[2]
        q = flat.index_select(1, idx_q.view(-1)).view(-1, tile * tile, d)
        k = flat.index_select(1, idx_k.view(-1))
        if not in_place:
            pe_keys = pe.view(d, h * w).t().index_select(0, key_pixels)  # (tiles * R*R, d)
            k = k.view(b, nh, -1) - pe_keys.reshape(1, 1, -1)
        k = k.view(-1, span, d)
        v = flat.index_select(1, idx_v.view(-1)).view(-1, span, d)
        inside = _tile_mask(tile, self.kernel_att, self.stride, q.dtype, q.device) == 0  # (T*T, R*R) windows
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=inside, scale=1.0)  # (B * head * tiles, T*T, d)
        out = out.reshape(b, -1).index_select(1, idx_o)
        ho, wo = (h - 1) // self.stride + 1, (w - 1) // self.stride + 1
        if channels_last:
            return out.view(b, ho, wo, self.out_chs).permute(0, 3, 1, 2)
        return out.view(b, self.out_chs, ho, wo)

    @torch.jit.unused
    def _position_grid(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        return _cached_position_grid(h, w, device, dtype)

    @torch.jit.unused
    def _sliding_window_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return sliding_window_attention(q, k, v, self.kernel_att, self.stride)

