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
- the window loop is ``sliding_window_attention`` (offset loop on strided views, custom backward).
Beyond the official code (which fails there): any dtype (fp16 / bf16 autocast), odd sizes with
stride 2 (output ceil(H / s), as the conv path), and maps not larger than the reflection padding
(3 for a 7 x 7 window): the reflection is continued periodically (``mirror_pad``) and a 1-pixel
side repeats its pixel; where ReflectionPad2d works the result is the official one.
"""
from functools import lru_cache
import torch
from torch import nn

from timm.layers import register_notrace_module

from .pointwise import pointwise_conv
from .sliding_window_attention import mirror_pad, sliding_window_attention, sliding_window_attention_plain

__all__ = ['ACmix', 'acmix_position_grid', 'shift_kernels']


def acmix_position_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(1, 2, H, W): channel 0 = linspace(-1, 1, W) along the width, channel 1 = linspace(-1, 1, H) along the height."""
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype).view(1, w).expand(h, w)
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype).view(h, 1).expand(h, w)
    return torch.stack([xs, ys], dim=0).unsqueeze(0)


@lru_cache(maxsize=32)
def _cached_position_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    with torch.inference_mode(False):  # a normal tensor even when first built under inference_mode
        return acmix_position_grid(h, w, device, dtype)


def shift_kernels(out_chs: int, kernel_size: int, device=None, dtype=None) -> torch.Tensor:
    """(out, k*k, k, k) weights of a grouped conv that shifts: input channel i of a group copies tap i."""
    kk = kernel_size * kernel_size
    kernel = torch.zeros(kk, kernel_size, kernel_size, device=device, dtype=dtype)
    kernel.view(kk, kk).fill_diagonal_(1.0)  # tap i = (i // k, i % k)
    return kernel.unsqueeze(0).repeat(out_chs, 1, 1, 1)


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
        # the three projections as one matmul: channel t * C + head * d + c for t = q, k, v
        weight = torch.cat([self.conv1.weight, self.conv2.weight, self.conv3.weight])
        b1, b2, b3 = self.conv1.bias, self.conv2.bias, self.conv3.bias
        assert b1 is not None and b2 is not None and b3 is not None  # for TorchScript (Optional)
        bias = torch.cat([b1, b2, b3])
        qkv = pointwise_conv(x, weight, bias)
        out_att = self._attention(qkv)
        out_conv = self._convolution(qkv)
        return self.rate1 * out_att + self.rate2 * out_conv

    def _attention(self, qkv: torch.Tensor) -> torch.Tensor:
        b, _, h, w = qkv.shape
        nh, d, s = self.head, self.head_dim, self.stride
        q, k, v = qkv.view(b, 3, nh, d, h, w).unbind(1)  # (B, head, d, H, W) views
        if torch.jit.is_scripting():
            loc = acmix_position_grid(h, w, qkv.device, self.conv_p.weight.dtype)
        else:
            loc = self._position_grid(h, w, qkv.device, self.conv_p.weight.dtype)
        pe = self.conv_p(loc).to(k.dtype).view(1, 1, d, h, w)
        # logits q_i . (k_j + pe_i - pe_j): q_i . pe_i cancels in the softmax -> keys k - pe
        pad = self.kernel_att // 2
        k = mirror_pad((k - pe).reshape(b * nh, d, h, w), pad)
        v = mirror_pad(v.reshape(b * nh, d, h, w), pad)
        q = (q[..., ::s, ::s] * self.scale).reshape(b * nh, d, (h - 1) // s + 1, (w - 1) // s + 1)
        if torch.jit.is_scripting():
            out = sliding_window_attention_plain(q, k, v, self.kernel_att, s)
        else:
            out = self._sliding_window_attention(q, k, v)
        return out.reshape(b, self.out_chs, out.shape[-2], out.shape[-1])  # channel head * d + c

    def _convolution(self, qkv: torch.Tensor) -> torch.Tensor:
        b, _, h, w = qkv.shape
        nh, d = self.head, self.head_dim
        kk = self.kernel_conv * self.kernel_conv
        # fc mixes the 3 * head maps of each channel c: (kk, 3 * head) @ (B, 3 * head, d * H * W)
        f = torch.matmul(self.fc.weight.view(kk, 3 * nh), qkv.view(b, 3 * nh, d * h * w))
        # official channel order for dep_conv's groups: c * kk + i (group c reads its kk maps)
        f = f.view(b, kk, d, h, w).transpose(1, 2).reshape(b, d * kk, h, w)
        return self.dep_conv(f)  # group c writes output channels c * head .. c * head + head - 1

    @torch.jit.unused
    def _position_grid(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        return _cached_position_grid(h, w, device, dtype)

    @torch.jit.unused
    def _sliding_window_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return sliding_window_attention(q, k, v, self.kernel_att, self.stride)

