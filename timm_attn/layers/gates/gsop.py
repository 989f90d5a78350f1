"""GSoP block: global second-order pooling attention, and GSoP-Net2's second-order pooling.

Paper: "Global Second-order Pooling Convolutional Networks", Zilin Gao, Jiangtao Xie, Qilong Wang,
Peihua Li, CVPR 2019, https://arxiv.org/abs/1811.12006.
Official code (MIT): https://github.com/ZilinGao/Global-Second-order-Pooling-Convolutional-Networks
(``torchvision/models/resnet.py``: ``Bottleneck.chan_att`` / ``pos_att``, attention modes '1', '2', '+',
'M', '&' chosen by ``main.py --att_manner``; ``torchvision/models/MPNCOV``: covariance, matrix square root).

Channel attention (``mode='channel'``, official '1', the paper's GSoP block, the default):

    X' = relu(BN(conv1x1(relu(X))))                 C -> d channels (d = 128), stride s (2 in stage 1)
    Sigma = X' Ibar X'^T,  Ibar = (I - 1/M 11^T) / M     (d x d covariance over the M = H'W' positions)
    z = rowconv(BN_row(Sigma))                      row-wise conv: each row i -> 4 values (group conv,
                                                    kernel (d, 1), groups d) -> 4d vector
    a = sigmoid(conv1x1(z))                         4d -> C
    y = X * a

As the official code: the input is passed through a ReLU first (the block sits after the last BN of a
bottleneck, before the residual add), the covariance rows are batch-normalised (``row_bn``: BatchNorm over
the d rows), every conv has a bias, and there is no non-linearity between the row-wise conv and the final
1x1 conv in the channel mode (the paper's figure draws one). Any input size from 1x1 (the covariance of a
single position is 0); with ``reduce_stride=2`` the map is subsampled by the 1x1 conv.

Position attention (``mode='position'``, official '2', paper sec. 3.2 "GSoP along spatial dimension"):

    P = adaptive_avg_pool(BN(conv1x1(relu(X))), 8x8)     C -> d channels, no ReLU after the BN; M = 64 cells
    G = (P^T P - s s^T / M) / M,  s = P^T 1              M x M: the official ``cov_feature``, whose centring
                                                         matrix is d x d but scaled by 1/M (not 1/d)
    b = sigmoid(conv1x1(relu(rowconv(BN_row(G)))))      rows -> 4M -> M (with a ReLU, unlike the channel mode)
    A = adaptive_avg_pool(b as 8x8, H x W)               back to the input's size
    y = relu(X * A)

Fusions (official '+', 'M', '&'): ``'fusion_avg'`` y = X * a + relu(X * A) (the official "average" is this
sum); ``'fusion_max'`` y = max(X * a, relu(X * A)); ``'fusion_concat'`` y = BN(conv_1(X * a) + conv_2(relu(X *
A))), two grouped (k, 1) convs (C / 64 groups, k = 2 log2(2048 / C) + 5, the official "weighted spatial concat",
defined for C = 64 * 2^j <= 2048).

GSoP-Net2's global pooling (``SecondOrderPool``, the official ``ResNet`` with ``GSoP_mode=2``): conv1x1 (no
bias) + BN + ReLU to 256 channels, covariance pooling, matrix square root by 3 Newton-Schulz iterations of the
trace-normalised covariance (iSQRT-COV), its 256 * 257 / 2 distinct entries (the lower triangle row by row, the
official ``TriuvecLayer`` order), which the classifier takes.
"""
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['GSoPAttention', 'SecondOrderPool', 'covariance_pool', 'newton_schulz_sqrtm', 'GSOP_MODES']

# attention modes: name -> the official code's attention letter (main.py --att_manner)
GSOP_MODES = {'channel': '1', 'position': '2', 'fusion_avg': '+', 'fusion_max': 'M', 'fusion_concat': '&'}


def covariance_pool(x: torch.Tensor) -> torch.Tensor:
    """(N, d, H, W) -> (N, d, d): biased covariance of the d channels over the H*W positions (MPNCOV's
    ``CovpoolLayer``: X Ibar X^T with Ibar = (I - 11^T / M) / M)."""
    x = x.flatten(2)  # (N, d, M)
    x = x - x.mean(dim=2, keepdim=True)
    return torch.bmm(x, x.transpose(1, 2)) / x.shape[2]


def _position_gram(x: torch.Tensor) -> torch.Tensor:
    """(N, d, h, w) -> (N, M, M), M = h*w: the official ``cov_feature``, (P^T P - s s^T / M) / M with s the
    per-position sum over the d channels (a covariance over the channels, normalised by M instead of d)."""
    p = x.flatten(2)  # (N, d, M)
    s = p.sum(dim=1)  # (N, M)
    m = p.shape[2]
    return (torch.bmm(p.transpose(1, 2), p) - s.unsqueeze(2) * s.unsqueeze(1) / m) / m


def newton_schulz_sqrtm(a: torch.Tensor, iterations: int = 3) -> torch.Tensor:
    """(N, d, d) SPD -> its approximate square root (iSQRT-COV, MPNCOV's ``SqrtmLayer``): A = Sigma / tr(Sigma),
    Y_0 = A, Z_0 = I, Y_k = Y_{k-1} T_k, Z_k = T_k Z_{k-1} with T_k = (3I - Z_{k-1} Y_{k-1}) / 2, and
    sqrt(tr(Sigma)) Y_n (the last step computes Y only). A zero matrix (a single position, or features that a
    ReLU zeroed) gives zero instead of the official 0 / 0: a zero trace is replaced by one."""
    if iterations < 1:
        raise ValueError(f'iterations must be >= 1, got {iterations}')
    trace = a.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None]  # (N, 1, 1)
    trace = torch.where(trace > 0, trace, torch.ones_like(trace))
    y = a / trace
    z = torch.eye(a.shape[1], dtype=a.dtype, device=a.device).expand_as(a)
    eye3 = 3 * z
    for _ in range(iterations - 1):
        t = 0.5 * (eye3 - torch.bmm(z, y))
        y, z = torch.bmm(y, t), torch.bmm(t, z)
    return 0.5 * torch.bmm(y, eye3 - torch.bmm(z, y)) * trace.sqrt()


_PARTS = ('reduce', 'reduce_norm', 'reduce_act', 'row_norm', 'row_conv', 'fc', 'pos_reduce', 'pos_reduce_norm',
          'pos_row_norm', 'pos_row_conv', 'pos_act', 'pos_fc', 'concat_conv1', 'concat_conv2', 'concat_norm')


class GSoPAttention(nn.Module):
    """GSoP attention: channel (the default, official mode '1'), position ('2') or their fusions.

    Args:
        channels: input (= output) channels.
        dim: channels d after the reduction convs (official ``att_dim``: 128).
        reduce_stride: stride of the channel branch's reduction conv (official: 2 in a ResNet's first stage,
            ``planes == 64``, 1 elsewhere; a model passes its stage's value, see
            ``timm_attn.models.attention_resnet``). The position branch's conv has stride 1 (official).
        expansion: outputs of the row-wise convs per row (official: 4).
        mode: 'channel', 'position', 'fusion_avg', 'fusion_max' or 'fusion_concat' (``GSOP_MODES``, the
            official ``--att_manner`` values; formulas in the module docstring).
        pos_size: side of the grid the position branch pools to (official: 8, M = 64 positions).
    """

    def __init__(self, channels: int, dim: int = 128, reduce_stride: int = 1, expansion: int = 4,
                 mode: str = 'channel', pos_size: int = 8, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if mode not in GSOP_MODES:
            raise ValueError(f'unknown GSoP mode {mode!r}, expected one of {sorted(GSOP_MODES)}')
        if pos_size < 1:
            raise ValueError(f'pos_size must be >= 1, got {pos_size}')
        self.mode = mode
        self.pos_size = pos_size
        self.pre_act = nn.ReLU()
        # channel branch: official conv_for_DR, bn_for_DR, row_bn, row_conv_group, fc_adapt_channels
        if mode != 'position':
            self.reduce = nn.Conv2d(channels, dim, 1, stride=reduce_stride, **dd)
            self.reduce_norm = nn.BatchNorm2d(dim, **dd)
            self.reduce_act = nn.ReLU(inplace=True)
            self.row_norm = nn.BatchNorm2d(dim, **dd)
            self.row_conv = nn.Conv2d(dim, expansion * dim, (dim, 1), groups=dim, **dd)
            self.fc = nn.Conv2d(expansion * dim, channels, 1, **dd)
        if mode != 'channel':  # position branch: official *_spatial / *_for_spatial
            m = pos_size * pos_size
            self.pos_reduce = nn.Conv2d(channels, dim, 1, **dd)
            self.pos_reduce_norm = nn.BatchNorm2d(dim, **dd)
            self.pos_row_norm = nn.BatchNorm2d(m, **dd)
            self.pos_row_conv = nn.Conv2d(m, expansion * m, (m, 1), groups=m, **dd)
            self.pos_act = nn.ReLU(inplace=True)
            self.pos_fc = nn.Conv2d(expansion * m, m, 1, **dd)
        if mode == 'fusion_concat':  # official dilate_conv_for_concat1 / 2, bn_for_concat
            groups = channels // 64
            if channels % 64 or groups < 1 or 32 % groups:
                raise ValueError(f"mode='fusion_concat' needs channels = 64 * 2^j <= 2048, got {channels}")
            factor = (32 // groups).bit_length() - 1  # log2(32 / groups)
            kernel, pad = (2 * factor + 5, 1), (factor + 2, 0)
            self.concat_conv1 = nn.Conv2d(channels, channels, kernel, padding=pad, groups=groups, **dd)
            self.concat_conv2 = nn.Conv2d(channels, channels, kernel, padding=pad, groups=groups, **dd)
            self.concat_norm = nn.BatchNorm2d(channels, **dd)
        for name in _PARTS:  # the other modes' parts: parameter-free stand-ins, so that TorchScript compiles forward
            if not hasattr(self, name):
                setattr(self, name, nn.Identity())

    def channel_gate(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, 1, 1) channel weights a."""
        z = self.reduce_act(self.reduce_norm(self.reduce(self.pre_act(x))))
        cov = covariance_pool(z).unsqueeze(-1)  # (N, d, d, 1): row i of Sigma is "channel" i, a d x 1 column
        return torch.sigmoid(self.fc(self.row_conv(self.row_norm(cov))))  # (N, 4d, 1, 1) -> (N, C, 1, 1)

    def position_gate(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 1, H, W) position weights A."""
        p = self.pos_reduce_norm(self.pos_reduce(self.pre_act(x)))
        p = F.adaptive_avg_pool2d(p, self.pos_size)
        gram = _position_gram(p).unsqueeze(-1)  # (N, M, M, 1): row i = position i
        b = torch.sigmoid(self.pos_fc(self.pos_act(self.pos_row_conv(self.pos_row_norm(gram)))))  # (N, M, 1, 1)
        b = b.view(x.shape[0], 1, self.pos_size, self.pos_size)  # positions row-major, as they were flattened
        return F.adaptive_avg_pool2d(b, x.shape[2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == 'channel':
            return x * self.channel_gate(x)
        pos = F.relu(x * self.position_gate(x))
        if self.mode == 'position':
            return pos
        chan = x * self.channel_gate(x)
        if self.mode == 'fusion_avg':
            return chan + pos
        if self.mode == 'fusion_max':
            return torch.maximum(chan, pos)
        return self.concat_norm(self.concat_conv1(chan) + self.concat_conv2(pos))


class SecondOrderPool(nn.Module):
    """GSoP-Net2's global pooling (the official ``ResNet`` with ``GSoP_mode=2``, before its ``fc``): reduce to
    ``dim`` channels, covariance, matrix square root (iSQRT-COV), the triangle's entries.

    (N, in_chs, H, W) -> (N, dim * (dim + 1) / 2). Official keys: ``layer_reduce`` -> ``reduce``,
    ``layer_reduce_bn`` -> ``reduce_norm``.

    Args:
        in_chs: channels of the backbone's last stage.
        dim: channels after the reduction (official ``isqrt_dim``: 256).
        iterations: Newton-Schulz iterations (official: 3).
    """

    def __init__(self, in_chs: int, dim: int = 256, iterations: int = 3, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if iterations < 1:
            raise ValueError(f'iterations must be >= 1, got {iterations}')
        self.iterations = iterations
        self.reduce = nn.Conv2d(in_chs, dim, 1, bias=False, **dd)
        self.reduce_norm = nn.BatchNorm2d(dim, **dd)
        self.reduce_act = nn.ReLU(inplace=True)
        self.num_features = dim * (dim + 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce_act(self.reduce_norm(self.reduce(x)))
        s = newton_schulz_sqrtm(covariance_pool(x), self.iterations)
        index = torch.tril_indices(s.shape[1], s.shape[2], device=s.device)
        return s[:, index[0], index[1]]  # the official TriuvecLayer's order: lower triangle row by row (s is symmetric)
