"""Gather-Excite (GE-theta-minus, GE-theta, GE-theta-plus).

Paper: "Gather-Excite: Exploiting Feature Context in Convolutional Neural Networks", Jie Hu, Li Shen,
Samuel Albanie, Gang Sun, Andrea Vedaldi, NeurIPS 2018, https://arxiv.org/abs/1810.12348.
Official code (Caffe prototxts): https://github.com/hujie-frank/GENet.

    x_hat = xi_G(x)                         gather over an extent e (e = 0 here: global)
    y = x * sigmoid(interp(xi_E(x_hat)))    excite: nearest-neighbour upsampling to x's size, sigmoid gate

    GE-theta-minus: xi_G = average pooling (global: the mean; extent e: kernel 2e-1, stride e), xi_E = identity
                    (no parameters)
    GE-theta:       xi_G = depth-wise convs + BN (global: one depth-wise conv whose kernel covers the whole
                    map; extent e: log2(e) stride-2 3x3 depth-wise convs with BN, ReLU between), xi_E = identity
    GE-theta-plus:  GE-theta's gather, xi_E = SE's 1x1-conv MLP (C -> C/16 -> C, ReLU)

The global-extent GE-theta / GE-theta-plus (the paper's best on ResNet-50) has a kernel the size of the
stage's feature map, fixed at construction (``feat_size``; None = the ResNet-50 stage size at 224 px for
this channel count: 56, 28, 14, 7). Any input size: a map of another size is first average-pooled
adaptively to ``feat_size`` (the same rule FcaNet's official code uses for its DCT); the depth-wise conv is
then a learned weighted mean over the whole map, as in the paper. timm's ``GatherExcite`` implements the
same family but every configuration raises TypeError in timm 1.0.31 (``*dd`` for ``**dd``).
"""
import math
from typing import Optional, Tuple, Type, Union

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from timm.layers import ConvMlp, register_notrace_function

from .fca import resnet_feature_size

__all__ = ['GatherExcite', 'resize_nearest_to']


@register_notrace_function  # reads the target's size: a leaf for torch.fx
@torch.fx.wrap  # a leaf in every FX trace, also when called from a plain function of this module
def resize_nearest_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour resize of x to ref's spatial size (no-op when a 1x1 map broadcasts)."""
    if x.shape[-2] == 1 and x.shape[-1] == 1:
        return x
    return F.interpolate(x, size=(ref.shape[-2], ref.shape[-1]), mode='nearest')


class GatherExcite(nn.Module):
    """Gather-Excite module.

    Args:
        channels: input (= output) channels.
        extent: gather extent e (0 = global, else a power of 2: 2, 4, 8).
        extra_params: parameterised gather (GE-theta, GE-theta-plus) instead of average pooling (GE-theta-minus).
        use_mlp: SE MLP in the excite (GE-theta-plus).
        feat_size: side(s) of the global depth-wise kernel (global extent with extra_params only);
            None = ``resnet_feature_size(channels)``.
        rd_ratio: MLP reduction (1/16); rd_channels overrides.
    """

    def __init__(
            self,
            channels: int,
            extent: int = 0,
            extra_params: bool = False,
            use_mlp: bool = False,
            feat_size: Optional[Union[int, Tuple[int, int]]] = None,
            rd_ratio: float = 1. / 16,
            rd_channels: Optional[int] = None,
            act_layer: Type[nn.Module] = nn.ReLU,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        if extent < 0 or (extent and (extent < 2 or extent & (extent - 1))):
            raise ValueError(f'GE extent must be 0 (global) or a power of 2 >= 2, got {extent}')
        self.extent = extent
        self.feat_size: Tuple[int, int] = (1, 1)
        if extra_params:
            self.gather = nn.Sequential()
            if extent == 0:
                fs = resnet_feature_size(channels) if feat_size is None else feat_size
                self.feat_size = (fs, fs) if isinstance(fs, int) else (int(fs[0]), int(fs[1]))
                self.gather.add_module('conv1', nn.Conv2d(
                    channels, channels, self.feat_size, groups=channels, bias=False, **dd))
                self.gather.add_module('norm1', nn.BatchNorm2d(channels, **dd))
            else:
                num_conv = int(math.log2(extent))
                for i in range(num_conv):
                    self.gather.add_module(f'conv{i + 1}', nn.Conv2d(
                        channels, channels, 3, stride=2, padding=1, groups=channels, bias=False, **dd))
                    self.gather.add_module(f'norm{i + 1}', nn.BatchNorm2d(channels, **dd))
                    if i != num_conv - 1:
                        self.gather.add_module(f'act{i + 1}', act_layer(inplace=True))
        else:
            self.gather = None
        if use_mlp:
            rd = rd_channels or max(1, int(channels * rd_ratio))
            self.mlp = ConvMlp(channels, rd, channels, act_layer=act_layer, **dd)  # keys mlp.fc1 / mlp.fc2
        else:
            self.mlp = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gather is not None:
            g = x
            if self.extent == 0:
                g = F.adaptive_avg_pool2d(x, self.feat_size)  # any input size -> the kernel's size
            g = self.gather(g)
        elif self.extent == 0:
            g = x.mean((2, 3), keepdim=True)
        else:
            k = 2 * self.extent - 1
            g = F.avg_pool2d(x, kernel_size=k, stride=self.extent, padding=self.extent - 1, count_include_pad=False)
        g = self.mlp(g)
        return x * torch.sigmoid(resize_nearest_to(g, x))
