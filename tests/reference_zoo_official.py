"""Independent re-implementations of the official networks behind the zoo's converted checkpoints, with the
OFFICIAL key names (written from the official code's structure, importing nothing of the plugin), for
tests/test_zoo_official.py:

    CBAM / BAM   Jongchan/attention-module, MODELS/model_resnet.py (``ResidualNet('ImageNet', 50, 1000, att)``),
                 cbam.py, bam.py: torchvision-style ResNet; CBAM as ``cbam`` in every bottleneck (after bn3,
                 before the residual add), BAM as ``bam1..3`` after layer1..3, ``nn.AvgPool2d(7)`` head (224
                 inputs only)
    ECA-Net      BangguWu/ECANet, models/eca_resnet.py, eca_module.py: ``eca`` in every bottleneck (after
                 bn3), the kernel size per stage (``k_size``: '3557' for ECA-Net50, '3357' for ECA-Net101),
                 adaptive average pooling head
    FcaNet       cfzd/FcaNet, model/fcanet.py, layer.py: torchvision's ResNet with ``att``
                 (MultiSpectralAttentionLayer, top16, DCT size c2wh[planes] = 56 / 28 / 14 / 7) after bn3

``save_official`` writes a state dict as the official training scripts publish it: ``{'state_dict': ...}`` of
a ``DataParallel`` model ('module.' prefixed keys), next to 'epoch', 'arch', 'best_prec1', 'optimizer'.
"""
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


# ---- attention modules, official names -------------------------------------------------------------------

class _CbamChannel(nn.Module):
    def __init__(self, c: int, r: int = 16):
        super().__init__()
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(c, c // r), nn.ReLU(), nn.Linear(c // r, c))

    def forward(self, x):
        h, w = x.shape[2:]
        att = self.mlp(F.avg_pool2d(x, (h, w))) + self.mlp(F.max_pool2d(x, (h, w)))
        return x * torch.sigmoid(att)[:, :, None, None]


class _BasicConv(nn.Module):  # official BasicConv(2, 1, 7, padding=3, relu=False): conv (no bias) + BN
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x):
        return self.bn(self.conv(x))


class _CbamSpatial(nn.Module):
    def __init__(self):
        super().__init__()
        self.spatial = _BasicConv()

    def forward(self, x):
        pooled = torch.cat((x.max(1, keepdim=True)[0], x.mean(1, keepdim=True)), 1)  # official ChannelPool
        return x * torch.sigmoid(self.spatial(pooled))


class OfficialCBAM(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.ChannelGate = _CbamChannel(c)
        self.SpatialGate = _CbamSpatial()

    def forward(self, x):
        return self.SpatialGate(self.ChannelGate(x))


class _BamChannel(nn.Module):
    def __init__(self, c: int, r: int = 16, num_layers: int = 1):
        super().__init__()
        self.gate_c = nn.Sequential()
        self.gate_c.add_module('flatten', nn.Flatten())
        widths = [c] + [c // r] * num_layers + [c]
        for i in range(len(widths) - 2):
            self.gate_c.add_module(f'gate_c_fc_{i}', nn.Linear(widths[i], widths[i + 1]))
            self.gate_c.add_module(f'gate_c_bn_{i + 1}', nn.BatchNorm1d(widths[i + 1]))
            self.gate_c.add_module(f'gate_c_relu_{i + 1}', nn.ReLU())
        self.gate_c.add_module('gate_c_fc_final', nn.Linear(widths[-2], widths[-1]))

    def forward(self, x):  # square maps only, as the official avg_pool2d(x, H)
        return self.gate_c(F.avg_pool2d(x, x.size(2), stride=x.size(2)))[:, :, None, None].expand_as(x)


class _BamSpatial(nn.Module):
    def __init__(self, c: int, r: int = 16, dilation_conv_num: int = 2, dilation_val: int = 4):
        super().__init__()
        rd = c // r
        self.gate_s = nn.Sequential()
        self.gate_s.add_module('gate_s_conv_reduce0', nn.Conv2d(c, rd, 1))
        self.gate_s.add_module('gate_s_bn_reduce0', nn.BatchNorm2d(rd))
        self.gate_s.add_module('gate_s_relu_reduce0', nn.ReLU())
        for i in range(dilation_conv_num):
            self.gate_s.add_module(f'gate_s_conv_di_{i}', nn.Conv2d(rd, rd, 3, padding=dilation_val,
                                                                    dilation=dilation_val))
            self.gate_s.add_module(f'gate_s_bn_di_{i}', nn.BatchNorm2d(rd))
            self.gate_s.add_module(f'gate_s_relu_di_{i}', nn.ReLU())
        self.gate_s.add_module('gate_s_conv_final', nn.Conv2d(rd, 1, 1))

    def forward(self, x):
        return self.gate_s(x).expand_as(x)


class OfficialBAM(nn.Module):
    """Official BAM with the depth options of its gates (``BAM(gate_channel)`` builds them at 1 and 2)."""

    def __init__(self, c: int, num_layers: int = 1, dilation_conv_num: int = 2):
        super().__init__()
        self.channel_att = _BamChannel(c, num_layers=num_layers)
        self.spatial_att = _BamSpatial(c, dilation_conv_num=dilation_conv_num)

    def forward(self, x):
        return (1 + torch.sigmoid(self.channel_att(x) * self.spatial_att(x))) * x


class OfficialECA(nn.Module):
    def __init__(self, c: int, k: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, x):
        y = x.mean((2, 3), keepdim=True)  # AdaptiveAvgPool2d(1)
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        return x * torch.sigmoid(y)


# FcaNet: the official ranking of the 7x7 DCT frequencies (layer.py get_freq_indices('top16'))
_FCA_TOP16 = ((0, 0), (0, 1), (6, 0), (0, 5), (0, 2), (1, 0), (1, 2), (4, 0),
              (5, 0), (1, 6), (3, 0), (0, 4), (0, 6), (0, 3), (3, 5), (2, 2))


class _DctLayer(nn.Module):
    """Official MultiSpectralDCTLayer: a fixed C x H x W filter (a buffer named ``weight``), summed over H, W."""

    def __init__(self, c: int, size: int):
        super().__init__()
        weight = torch.zeros(c, size, size)
        part = c // len(_FCA_TOP16)

        def basis(pos, freq):
            value = torch.cos(torch.pi * freq * (pos + 0.5) / size) / size ** 0.5
            return value if freq == 0 else value * 2 ** 0.5

        t = torch.arange(size, dtype=torch.float64)
        for i, (u, v) in enumerate(_FCA_TOP16):
            u, v = u * (size // 7), v * (size // 7)  # the 7x7 frequency at this size
            weight[i * part:(i + 1) * part] = (basis(t, u)[:, None] * basis(t, v)[None, :]).float()
        self.register_buffer('weight', weight)

    def forward(self, x):
        return (x * self.weight).sum((2, 3))


class OfficialFCA(nn.Module):
    def __init__(self, c: int, size: int, r: int = 16):
        super().__init__()
        self.size = size
        self.dct_layer = _DctLayer(c, size)
        self.fc = nn.Sequential(nn.Linear(c, c // r, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(c // r, c, bias=False), nn.Sigmoid())

    def forward(self, x):
        pooled = x if x.shape[2:] == (self.size, self.size) else F.adaptive_avg_pool2d(x, self.size)
        return x * self.fc(self.dct_layer(pooled))[:, :, None, None]


# ---- torchvision-style ResNet with the official attention slots -------------------------------------------

class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, attn_name=None, attn=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.attn_name = attn_name
        if attn_name:
            setattr(self, attn_name, attn)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.attn_name:
            out = getattr(self, self.attn_name)(out)
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class OfficialResNet(nn.Module):
    """``block_attn(stage, channels)``: the module in every bottleneck (named ``attn_name``);
    ``bam``: BAM after layer1..3 as ``bam1..3``; ``fixed_pool``: ``nn.AvgPool2d(7)`` head (Jongchan)."""

    def __init__(self, layers: Sequence[int], attn_name: Optional[str] = None,
                 block_attn: Optional[Callable[[int, int], nn.Module]] = None, bam: bool = False,
                 fixed_pool: bool = False, num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bams = bam
        if bam:
            self.bam1, self.bam2, self.bam3 = OfficialBAM(256), OfficialBAM(512), OfficialBAM(1024)
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
            blocks = []
            for j in range(n):
                attn = block_attn(i, planes * 4) if block_attn else None
                blocks.append(Bottleneck(self.inplanes, planes, stride if j == 0 else 1,
                                         downsample if j == 0 else None, attn_name, attn))
                self.inplanes = planes * 4
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        self.avgpool = nn.AvgPool2d(7) if fixed_pool else nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f'layer{i}')(x)
            if self.bams and i < 4:
                x = getattr(self, f'bam{i}')(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def official_network(name: str) -> OfficialResNet:
    """The official network behind ``name`` ('cbam_resnet50', 'bam_resnet50', 'eca_resnet50', 'eca_resnet101',
    'fca_resnet50', 'fca_resnet101')."""
    if name == 'cbam_resnet50':
        return OfficialResNet((3, 4, 6, 3), 'cbam', lambda i, c: OfficialCBAM(c), fixed_pool=True)
    if name == 'bam_resnet50':
        return OfficialResNet((3, 4, 6, 3), bam=True, fixed_pool=True)
    layers = (3, 4, 6, 3) if name.endswith('50') else (3, 4, 23, 3)
    if name.startswith('fca_'):  # official c2wh: the stage's side at 224 px
        return OfficialResNet(layers, 'att', lambda i, c: OfficialFCA(c, (56, 28, 14, 7)[i]))
    ksize = {'eca_resnet50': '3557', 'eca_resnet101': '3357'}[name]
    return OfficialResNet(layers, 'eca', lambda i, c: OfficialECA(c, int(ksize[i])))


@torch.no_grad()
def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BN statistics of a moderate scale (a deep net's outputs stay O(1))."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if p.dim() > 1:
            p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
        elif name.endswith('weight'):
            p.copy_(torch.rand(p.shape, generator=g) * 0.4 + 0.2)  # BN scales 0.2 .. 0.6
        else:
            p.copy_(torch.rand(p.shape, generator=g) * 0.2 - 0.1)
    for name, b in model.named_buffers():
        if name.endswith('running_mean'):
            b.copy_(torch.rand(b.shape, generator=g) * 0.2 - 0.1)
        elif name.endswith('running_var'):
            b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return model.eval()


def save_official(model: nn.Module, path: str) -> None:
    """As the official train scripts save: DataParallel's 'module.' keys inside 'state_dict'."""
    state = {f'module.{k}': v for k, v in model.state_dict().items()}
    torch.save({'epoch': 100, 'arch': 'resnet', 'state_dict': state, 'best_prec1': torch.tensor(77.0),
                'optimizer': {'state': {}, 'param_groups': [{'lr': 0.001, 'momentum': 0.9, 'params': [0]}]}}, path)
