"""FcaNet multi-spectral channel attention (frequency channel attention).

Paper: "FcaNet: Frequency Channel Attention Networks", Zequn Qin, Pengyi Zhang, Fei Wu, Xi Li, ICCV 2021,
https://arxiv.org/abs/2012.11879. Official code: https://github.com/cfzd/FcaNet (``model/layer.py``).

The channels are split into n equal groups (n = 16 for the paper's 'top16'); group i is pooled with the
2D DCT basis of frequency (u_i, v_i) instead of the mean (the mean is frequency (0, 0) up to a factor):

    Freq_i = sum_{h,w} X_i[:, h, w] B_{u_i,v_i}(h, w),
    B_{u,v}(h, w) = c_u c_v cos(pi u (h + 1/2) / H) cos(pi v (w + 1/2) / W),  c_0 = 1/sqrt(H), c_k = sqrt(2/H)
    att = sigmoid(fc2(relu(fc1(cat(Freq_0, ..., Freq_{n-1})))))      (fc1, fc2 without bias, reduction 16)
    y = x * att

The frequencies come from one of the official code's three tables of 7x7 DCT frequencies
(``get_freq_indices``), chosen by ``freq_sel``, the first ``num_freq`` of them: 'top' (default, the paper's
'top16': the frequencies ranked by the accuracy of networks using one frequency each), 'low' (lowest first,
zig-zag) or 'bot' (worst-ranked first), the selection criteria of the paper's ablation; scaled to the DCT size
(u * (H // 7)), as the official code does.

The DCT size (H, W) is fixed at construction (``dct_size``); the official ResNets use the stage's
size at 224 px (56, 28, 14, 7), which a model passes from its stage (``timm_attn.models.attention_resnet``
derives it from ``feature_info``). Without one, a layer built on its own falls back to
``resnet_feature_size(channels)``, the official ``c2wh`` guess from a ResNet-50 / -18 width.

Any input size: like the official code, a map whose size differs from the DCT size is first average-pooled
adaptively to it (``F.adaptive_avg_pool2d``; a smaller map, down to 1x1, is spread over the grid by the same
op). The basis is separable and kept as two small (n, H) and (n, W) buffers (not in the state_dict: they are
a function of the constructor arguments), so no C x H x W filter is stored per block as in the official code.
"""
import math
from typing import Dict, Optional, Sequence, Tuple, Type, Union

import torch
import torch.nn.functional as F
from torch import nn

from timm.layers import create_act_layer

__all__ = [
    'MultiSpectralAttention', 'dct_basis', 'resnet_feature_size', 'FCA_TOP_FREQUENCIES', 'FCA_LOW_FREQUENCIES',
    'FCA_BOT_FREQUENCIES', 'FCA_FREQUENCIES']

# the paper's ranking of the 7x7 DCT frequencies (official get_freq_indices('top32')): (u, v) pairs
_TOP_U = (0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2, 4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4, 2, 2, 6, 1)
_TOP_V = (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2, 6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1, 3, 0, 5, 3)
FCA_TOP_FREQUENCIES: Tuple[Tuple[int, int], ...] = tuple(zip(_TOP_U, _TOP_V))
# the 32 lowest frequencies, zig-zag from (0, 0) (official get_freq_indices('low32'))
_LOW_U = (0, 0, 1, 1, 0, 2, 2, 1, 2, 0, 3, 4, 0, 1, 3, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4)
_LOW_V = (0, 1, 0, 1, 2, 0, 1, 2, 2, 3, 0, 0, 4, 3, 1, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3)
FCA_LOW_FREQUENCIES: Tuple[Tuple[int, int], ...] = tuple(zip(_LOW_U, _LOW_V))
# the worst-ranked frequencies first (official get_freq_indices('bot32'))
_BOT_U = (6, 1, 3, 3, 2, 4, 1, 2, 4, 4, 5, 1, 4, 6, 2, 5, 6, 1, 6, 2, 2, 4, 3, 3, 5, 5, 6, 2, 5, 5, 3, 6)
_BOT_V = (6, 4, 4, 6, 6, 3, 1, 4, 4, 5, 6, 5, 2, 2, 5, 1, 4, 3, 5, 0, 3, 1, 1, 2, 4, 2, 1, 1, 5, 3, 3, 3)
FCA_BOT_FREQUENCIES: Tuple[Tuple[int, int], ...] = tuple(zip(_BOT_U, _BOT_V))
# ``freq_sel`` -> its table; the official method name is freq_sel + num_freq ('top16', 'low4', 'bot32', ...)
FCA_FREQUENCIES: Dict[str, Tuple[Tuple[int, int], ...]] = {
    'top': FCA_TOP_FREQUENCIES, 'low': FCA_LOW_FREQUENCIES, 'bot': FCA_BOT_FREQUENCIES}

# output channels of a ResNet-50 stage -> its feature-map side at 224 px (official FcaNet ``c2wh``)
_RESNET_FEATURE_SIZE: Dict[int, int] = {64: 56, 128: 28, 256: 56, 512: 28, 1024: 14, 2048: 7}


def resnet_feature_size(channels: int) -> int:
    """Side of a ResNet-50 stage's feature map at 224 px guessed from its channel count (the official FcaNet
    ``c2wh`` table); 7 otherwise. A guess (ResNet-18/34's 256 / 512 channels are their stages 3 / 4, at 14 / 7,
    not 56 / 28): models pass the stage's size from their ``feature_info`` instead."""
    return _RESNET_FEATURE_SIZE.get(channels, 7)


def dct_basis(freqs: Sequence[int], size: int, dtype=None, device=None) -> torch.Tensor:
    """(len(freqs), size) orthonormal DCT-II rows: b_k(t) = c_k cos(pi k (t + 1/2) / size)."""
    t = torch.arange(size, dtype=torch.float64)
    rows = []
    for k in freqs:
        scale = math.sqrt(1. / size) if k == 0 else math.sqrt(2. / size)
        rows.append(torch.cos(math.pi * k * (t + 0.5) / size) * scale)
    return torch.stack(rows).to(device=device, dtype=dtype or torch.get_default_dtype())


class MultiSpectralAttention(nn.Module):
    """Multi-spectral channel attention (FcaNet), the official ``MultiSpectralAttentionLayer``.

    Args:
        channels: input (= output) channels; must be divisible by ``num_freq``.
        dct_size: DCT grid side(s) (H, W): the stage's feature size at the training input size (models pass
            it); None = ``resnet_feature_size(channels)``, a guess from the width for a layer built on its own.
        num_freq: number of frequencies taken from the head of the ``freq_sel`` table (1, 2, 4, 8, 16 or 32;
            paper: 16).
        freq_sel: which official table of 7x7 frequencies: 'top' (the paper's ranking; default, as the official
            FcaNets' 'top16'), 'low' (lowest first) or 'bot' (worst-ranked first); the official
            ``freq_sel_method`` is ``freq_sel + str(num_freq)``. The choice changes only the fixed DCT bases
            (not saved), not the parameters.
        rd_ratio: MLP reduction (paper: 1/16). rd_channels overrides it.
    """

    def __init__(
            self,
            channels: int,
            dct_size: Optional[Union[int, Tuple[int, int]]] = None,
            num_freq: int = 16,
            freq_sel: str = 'top',
            rd_ratio: float = 1. / 16,
            rd_channels: Optional[int] = None,
            act_layer: Type[nn.Module] = nn.ReLU,
            gate_layer: Union[str, Type[nn.Module]] = 'sigmoid',
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if not isinstance(freq_sel, str) or freq_sel not in FCA_FREQUENCIES:
            raise ValueError(f"freq_sel must be 'top', 'low' or 'bot' (the official 7x7 frequency tables; the count "
                             f"is num_freq, e.g. 'low16' = freq_sel='low', num_freq=16), got {freq_sel!r}")
        if num_freq not in (1, 2, 4, 8, 16, 32):
            raise ValueError(f'num_freq must be one of 1, 2, 4, 8, 16, 32 (the ranked 7x7 frequencies), got {num_freq}')
        if channels % num_freq:
            raise ValueError(f'channels ({channels}) must be divisible by num_freq ({num_freq}): each frequency '
                             f'pools an equal group of channels')
        if dct_size is None:
            dct_size = resnet_feature_size(channels)
        dct_h, dct_w = (dct_size, dct_size) if isinstance(dct_size, int) else tuple(dct_size)
        if dct_h < 7 or dct_w < 7:
            raise ValueError(f'dct_size must be at least 7 (the frequencies are ranked on a 7x7 grid), got {dct_size}')
        self.dct_size = (dct_h, dct_w)
        self.num_freq = num_freq
        self.freq_sel = freq_sel
        # (num_freq, H) and (num_freq, W) DCT rows computed from the frequencies, not saved: filled by _init_buffers()
        self.register_buffer('basis_h', torch.empty(num_freq, dct_h, **dd), persistent=False)
        self.register_buffer('basis_w', torch.empty(num_freq, dct_w, **dd), persistent=False)
        self._init_buffers()
        rd_channels = rd_channels or int(channels * rd_ratio)
        self.fc1 = nn.Linear(channels, rd_channels, bias=False, **dd)
        self.act = create_act_layer(act_layer, inplace=True)
        self.fc2 = nn.Linear(rd_channels, channels, bias=False, **dd)
        self.gate = create_act_layer(gate_layer)

    def _init_buffers(self) -> None:
        freqs = FCA_FREQUENCIES[self.freq_sel][:self.num_freq]
        (dct_h, dct_w), ref = self.dct_size, self.basis_h
        # official: a frequency on the 7x7 grid is the same frequency at (u * H // 7) on an H x H grid
        self.basis_h.copy_(dct_basis([u * (dct_h // 7) for u, _ in freqs], dct_h, dtype=ref.dtype, device=ref.device))
        self.basis_w.copy_(dct_basis([v * (dct_w // 7) for _, v in freqs], dct_w, dtype=ref.dtype, device=ref.device))

    def init_non_persistent_buffers(self) -> None:
        """Recompute the DCT bases (after ``to_empty()``; timm's ``reinit_non_persistent_buffers`` calls this)."""
        self._init_buffers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        pooled = F.adaptive_avg_pool2d(x, self.dct_size)  # identity values when the size already matches
        # (N, C, H, W) -> (N, F, C/F, H, W): group f uses basis row f
        pooled = pooled.reshape(n, self.num_freq, c // self.num_freq, self.dct_size[0], self.dct_size[1])
        freq = torch.einsum('nfchw,fh,fw->nfc', pooled, self.basis_h.to(x.dtype), self.basis_w.to(x.dtype))
        att = self.gate(self.fc2(self.act(self.fc1(freq.reshape(n, c)))))
        return x * att.reshape(n, c, 1, 1)
