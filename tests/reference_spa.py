"""Independent re-implementations, with the OFFICIAL key names, written from the official code's structure
(importing nothing of the plugin), for tests/test_zoo_official_spa.py and tests/test_gate_options.py:

    SPA    ma-xu/SPANet, models/spp_se_resnet.py: ``SPPSELayer`` (adaptive average pools 1 / 2 / 4, each
           ``.view(b, p * p * c)``, concatenated; ``fc = Sequential(Linear(21c, c // 16, bias=False), ReLU,
           Linear(c // 16, c, bias=False), Sigmoid)``), named ``se`` in every block before the residual add;
           ``SPPSEResNet50``: the only SPA-ResNet-50 of the repository, a CIFAR pre-activation network (3x3
           stem conv without BN, ``bn1 -> conv1 -> bn2 -> conv2 -> bn3 -> conv3 -> se``, shortcut a bare 1x1
           conv on the pre-activated input, no final BN, ``F.avg_pool2d(out, 4)`` and ``linear``), saved by
           cifar.py as ``{'net': DataParallel state_dict, 'acc', 'epoch'}``
    CBAM   Jongchan/attention-module, MODELS/cbam.py: ``ChannelGate(pool_types=[...])`` with its four pools
    BAM    the same repository, MODELS/bam.py: ``ChannelGate(num_layers)``, ``SpatialGate(dilation_conv_num)``,
           BAM = 1 + sigmoid(channel * spatial)
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from reference_zoo_official import OfficialResNet


# ---- SPA ---------------------------------------------------------------------------------------------------

class OfficialSPA(nn.Module):
    """``SPPSELayer``."""

    def __init__(self, c: int, r: int = 16):
        super().__init__()
        self.avg_pool1 = nn.AdaptiveAvgPool2d(1)
        self.avg_pool2 = nn.AdaptiveAvgPool2d(2)
        self.avg_pool4 = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Sequential(nn.Linear(c * 21, c // r, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(c // r, c, bias=False), nn.Sigmoid())

    def forward(self, x):
        b, c = x.shape[:2]
        y = torch.cat((self.avg_pool1(x).view(b, c), self.avg_pool2(x).view(b, 4 * c),
                       self.avg_pool4(x).view(b, 16 * c)), 1)
        return x * self.fc(y).view(b, c, 1, 1)


def spa_resnet50_official_layout() -> OfficialResNet:
    """A torchvision-style ImageNet ResNet-50 with ``SPPSELayer`` as ``se`` in every bottleneck (after bn3,
    before the add: where the official blocks put it). The official repository has no such network (CIFAR
    only): this is the official layer in the official place, in the key layout of the other official zoo
    checkpoints."""
    return OfficialResNet((3, 4, 6, 3), 'se', lambda i, c: OfficialSPA(c))


class _CifarPreActBottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.se = OfficialSPA(planes * 4)
        if stride != 1 or in_planes != planes * 4:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes * 4, 1, stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, 'shortcut') else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        out = self.se(self.conv3(F.relu(self.bn3(out))))
        return out + shortcut


class CifarSPPSEResNet50(nn.Module):
    """``SPPSEResNet50(num_classes=100)``: the released SPA-ResNet-50 (CIFAR-100)."""

    def __init__(self, num_classes: int = 100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        in_planes = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            blocks = []
            for j in range(n):
                blocks.append(_CifarPreActBottleneck(in_planes, planes, (1 if i == 0 else 2) if j == 0 else 1))
                in_planes = planes * 4
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        self.linear = nn.Linear(2048, num_classes)

    def forward(self, x):
        out = self.conv1(x)
        for i in range(1, 5):
            out = getattr(self, f'layer{i}')(out)
        return self.linear(F.avg_pool2d(out, 4).flatten(1))


def save_cifar_official(model: nn.Module, path: str) -> None:
    """As the official cifar.py saves (``ckpt_cifar_100_SPPSEResNet50.t7``): a DataParallel state dict in
    'net'."""
    torch.save({'net': {f'module.{k}': v for k, v in model.state_dict().items()}, 'acc': 78.21, 'epoch': 299},
               path)


# ---- CBAM channel pools ------------------------------------------------------------------------------------

def _logsumexp_2d(t):  # official logsumexp_2d
    flat = t.view(t.size(0), t.size(1), -1)
    s, _ = torch.max(flat, dim=2, keepdim=True)
    return s + (flat - s).exp().sum(dim=2, keepdim=True).log()


def official_channel_pool(x: torch.Tensor, kind: str) -> torch.Tensor:
    """One pool of the official ``ChannelGate.forward`` (before ``Flatten``)."""
    hw = (x.size(2), x.size(3))
    if kind == 'avg':
        return F.avg_pool2d(x, hw, stride=hw)
    if kind == 'max':
        return F.max_pool2d(x, hw, stride=hw)
    if kind == 'lp':
        return F.lp_pool2d(x, 2, hw, stride=hw)
    if kind == 'lse':
        return _logsumexp_2d(x)
    raise KeyError(kind)


class OfficialCbamChannelGate(nn.Module):
    def __init__(self, c: int, pool_types: Sequence[str], r: int = 16):
        super().__init__()
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(c, c // r), nn.ReLU(), nn.Linear(c // r, c))
        self.pool_types = list(pool_types)

    def forward(self, x):
        att = None
        for kind in self.pool_types:
            raw = self.mlp(official_channel_pool(x, kind))
            att = raw if att is None else att + raw
        return x * torch.sigmoid(att)[:, :, None, None]
