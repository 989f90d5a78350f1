"""RGA: relation-aware global attention, spatial (RGA-S) and channel (RGA-C), for any input size.

Paper: "Relation-Aware Global Attention for Person Re-identification", Zhizheng Zhang, Cuiling Lan, Wenjun Zeng,
Xin Jin, Zhibo Chen, CVPR 2020, https://arxiv.org/abs/1904.02998
Official code: https://github.com/microsoft/Relation-Aware-Global-Attention-Networks
(``reid/models/models_utils/rga_modules.py``: ``RGA_Module(in_channel, in_spatial, ...)``).

RGA-S, on X (C x N), N = H W:
    r_ij = theta(x_i) . phi(x_j)                       theta, phi: 1x1 conv C -> C/8 + BN + ReLU
    relation feature of i:  r_i = [r_{.,i} ; r_{i,.}]  (2N: the "in" and "out" relations)
    y_i = [ mean_c psi_s(x_i) ; gg_s(r_i) ]            psi_s: C -> C/8 (+BN+ReLU), mean over channels -> 1;
                                                       gg_s: 2N -> N/8 (1x1 conv + BN + ReLU)
    a_i = sigmoid(W_s(y_i))                            W_s: 1x1 conv (1 + N/8) -> (1 + N/8)/8, BN, ReLU,
                                                       1x1 conv -> 1, BN
    x_i <- a_i x_i
RGA-C: the same with the roles of channels and positions swapped (each channel is a node whose feature
is its N-vector; the embeddings are 1x1 convs over the N "channels"; gg_c: 2C -> C/8), applied to the
output of RGA-S (official order: spatial, then channel). All convs without bias, as the official code.

Any input size (the official module is built for one N = ``in_spatial`` and fails on any other):
the N-long vectors are made a fixed length P = Ph Pw (``spatial_size``, the training size the official
code would be built for) by adaptive average pooling over the position grid:
    RGA-S: relations to the positions of the Ph x Pw pooled grid. r is bilinear, so pooling the
           relation vector over a bin equals relating to the bin's mean embedding:
           out-relations r_{p,j} = mean_{i in p} theta(x_i) . phi(x_j) = pool(theta)_p . phi(x_j), likewise
           in-relations with pool(phi). Cost O(N P) instead of O(N^2).
    RGA-C: the channel nodes' N-vectors are the pooled map pool(X) (C x P).
At H x W = ``spatial_size`` every pool is the identity and the module equals the official one (weights
load 1:1); at other sizes it sees the relations on a resampled grid (an adaptive pool to a larger grid
repeats values, so even a 1 x 1 map works). Second deviation: W's hidden width is
max(1, (1 + P/8) // 8); the official formula gives 0 (a broken conv) for P < 56, e.g. a 7 x 7 map.
"""
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._ops import conv_bn

__all__ = ['RelationAwareAttention']


def _attention_net(in_chs: int, down_ratio: int, dd) -> nn.Sequential:
    """W: 1x1 conv -> BN -> ReLU -> 1x1 conv to 1 -> BN (keys 0..4, as the official ``nn.Sequential``)."""
    hidden = max(1, in_chs // down_ratio)
    return nn.Sequential(*conv_bn(in_chs, hidden, relu=True, inplace=False, dd=dd), *conv_bn(hidden, 1, dd=dd))


def _branch(node_chs: int, embed_chs: int, relation_chs: int, relation_embed_chs: int, down_ratio: int, dd):
    """One RGA branch's (theta, phi, gx, gg, W): 1x1 conv (no bias) + BN + ReLU embeddings of the node features
    (``node_chs`` -> ``embed_chs``) and of the relation features (``relation_chs`` -> ``relation_embed_chs``), and
    the attention net W. ReLU not in place (``nn.ReLU()``), as in the official code."""
    def embed(in_chs: int, out_chs: int) -> nn.Sequential:
        return conv_bn(in_chs, out_chs, relu=True, inplace=False, dd=dd)
    return (embed(node_chs, embed_chs), embed(node_chs, embed_chs), embed(node_chs, embed_chs),
            embed(relation_chs, relation_embed_chs), _attention_net(1 + relation_embed_chs, down_ratio, dd))


class RelationAwareAttention(nn.Module):
    """RGA-S and / or RGA-C (official ``RGA_Module``) that works at every input size.

    Args:
        channels: C.
        spatial_size: (Ph, Pw) (or an int for square), the grid the relation vectors are pooled to;
            the official ``in_spatial`` is Ph * Pw.
        use_spatial, use_channel: which of RGA-S / RGA-C (both: spatial first).
        channel_ratio, spatial_ratio, down_ratio: the official cha_ratio / spa_ratio / down_ratio (8).
    """

    def __init__(
            self,
            channels: int,
            spatial_size: Union[int, Sequence[int]] = 7,
            use_spatial: bool = True,
            use_channel: bool = True,
            channel_ratio: int = 8,
            spatial_ratio: int = 8,
            down_ratio: int = 8,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if not (use_spatial or use_channel):
            raise ValueError('RelationAwareAttention needs use_spatial and / or use_channel')
        size = (spatial_size, spatial_size) if isinstance(spatial_size, int) else tuple(spatial_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f'spatial_size must be a positive int or (height, width), got {spatial_size!r}')
        self.spatial_size: Tuple[int, int] = (int(size[0]), int(size[1]))
        self.use_spatial = use_spatial
        self.use_channel = use_channel
        num_pos = size[0] * size[1]
        inter_c = max(1, channels // channel_ratio)
        inter_s = max(1, num_pos // spatial_ratio)
        if use_spatial:  # nodes: the positions (C-vectors); relations to the P pooled positions, in and out
            self.theta_spatial, self.phi_spatial, self.gx_spatial, self.gg_spatial, self.W_spatial = _branch(
                channels, inter_c, 2 * num_pos, inter_s, down_ratio, dd)
        if use_channel:  # nodes: the channels (P-vectors); relations to the C channels, in and out
            self.theta_channel, self.phi_channel, self.gx_channel, self.gg_channel, self.W_channel = _branch(
                num_pos, inter_s, 2 * channels, inter_c, down_ratio, dd)

    def spatial_attention(self, x: torch.Tensor) -> torch.Tensor:
        """RGA-S weights (B, 1, H, W)."""
        b, _, h, w = x.shape
        theta = self.theta_spatial(x)                                       # (B, C', H, W)
        phi = self.phi_spatial(x)
        theta_p = F.adaptive_avg_pool2d(theta, self.spatial_size).flatten(2)  # (B, C', P)
        phi_p = F.adaptive_avg_pool2d(phi, self.spatial_size).flatten(2)
        rel_in = torch.bmm(phi_p.transpose(1, 2), theta.flatten(2))         # (B, P, N): r_{j,p} (official Gs_in)
        rel_out = torch.bmm(theta_p.transpose(1, 2), phi.flatten(2))        # (B, P, N): r_{p,j} (official Gs_out)
        rel = torch.cat([rel_in, rel_out], dim=1).view(b, -1, h, w)         # (B, 2P, H, W)
        g = self.gx_spatial(x).mean(dim=1, keepdim=True)                    # (B, 1, H, W)
        return torch.sigmoid(self.W_spatial(torch.cat([g, self.gg_spatial(rel)], dim=1)))

    def channel_attention(self, x: torch.Tensor) -> torch.Tensor:
        """RGA-C weights (B, C, 1, 1)."""
        xc = F.adaptive_avg_pool2d(x, self.spatial_size).flatten(2)          # (B, C, P)
        xc = xc.transpose(1, 2).unsqueeze(-1)                               # (B, P, C, 1): channels as nodes
        theta = self.theta_channel(xc).squeeze(-1)                          # (B, P', C)
        phi = self.phi_channel(xc).squeeze(-1)
        rel = torch.bmm(theta.transpose(1, 2), phi)                         # (B, C, C): r_{c,d}
        rel = torch.cat([rel.transpose(1, 2), rel], dim=1).unsqueeze(-1)    # (B, 2C, C, 1): [in ; out]
        g = self.gx_channel(xc).mean(dim=1, keepdim=True)                   # (B, 1, C, 1)
        y = self.W_channel(torch.cat([g, self.gg_channel(rel)], dim=1))     # (B, 1, C, 1)
        return torch.sigmoid(y).transpose(1, 2)                             # (B, C, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_spatial:
            x = x * self.spatial_attention(x)
        if self.use_channel:
            x = x * self.channel_attention(x)
        return x
