"""GSoP block: global second-order pooling channel attention.

Paper: "Global Second-order Pooling Convolutional Networks", Zilin Gao, Jiangtao Xie, Qilong Wang,
Peihua Li, CVPR 2019, https://arxiv.org/abs/1811.12006.
Official code (MIT): https://github.com/ZilinGao/Global-Second-order-Pooling-Convolutional-Networks
(``torchvision/models/resnet.py``, ``Bottleneck.chan_att``, attention mode '1').

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
"""
import torch
from torch import nn

__all__ = ['GSoPAttention', 'covariance_pool']


def covariance_pool(x: torch.Tensor) -> torch.Tensor:
    """(N, d, H, W) -> (N, d, d): biased covariance of the d channels over the H*W positions (MPNCOV's
    ``CovpoolLayer``: X Ibar X^T with Ibar = (I - 11^T / M) / M)."""
    x = x.flatten(2)  # (N, d, M)
    x = x - x.mean(dim=2, keepdim=True)
    return torch.bmm(x, x.transpose(1, 2)) / x.shape[2]


class GSoPAttention(nn.Module):
    """GSoP channel attention (official attention mode '1').

    Args:
        channels: input (= output) channels.
        dim: channels d after the reduction conv (official ``att_dim``: 128).
        reduce_stride: stride of the reduction conv (official: 2 in a ResNet's first stage, ``planes == 64``,
            1 elsewhere; a model passes its stage's value, see ``timm_attn.models.attention_resnet``).
        expansion: outputs of the row-wise conv per row (official: 4).
    """

    def __init__(self, channels: int, dim: int = 128, reduce_stride: int = 1, expansion: int = 4,
                 device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.pre_act = nn.ReLU()
        self.reduce = nn.Conv2d(channels, dim, 1, stride=reduce_stride, **dd)
        self.reduce_norm = nn.BatchNorm2d(dim, **dd)
        self.reduce_act = nn.ReLU(inplace=True)
        self.row_norm = nn.BatchNorm2d(dim, **dd)
        self.row_conv = nn.Conv2d(dim, expansion * dim, (dim, 1), groups=dim, **dd)
        self.fc = nn.Conv2d(expansion * dim, channels, 1, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.reduce_act(self.reduce_norm(self.reduce(self.pre_act(x))))
        cov = covariance_pool(z).unsqueeze(-1)  # (N, d, d, 1): row i of Sigma is "channel" i, a d x 1 column
        z = self.row_conv(self.row_norm(cov))  # (N, 4d, 1, 1)
        return x * torch.sigmoid(self.fc(z))
