"""Independent re-implementation of the official GSoP-Nets with the OFFICIAL key names, for
tests/test_gsop_official.py (written from the structure of ZilinGao/Global-Second-order-Pooling-Convolutional-Networks,
``torchvision/models/resnet.py`` and ``torchvision/models/MPNCOV/python/MPNCOV.py``; imports nothing of the plugin):

    Bottleneck     torchvision's, the GSoP parts as attributes of the block itself (``conv_for_DR``, ``bn_for_DR``,
                   ``row_bn``, ``row_conv_group``, ``fc_adapt_channels``; position: ``*_spatial`` /
                   ``*_for_spatial``; concat fusion: ``dilate_conv_for_concat1/2``, ``bn_for_concat``), applied
                   after bn3, before the residual add, by attention letter ('0' none, '1', '2', '+', 'M', '&')
    ResNet         main.py's placement: the letter in the last block of each stage (GSoP-Net2: not in layer4);
                   layer4 at stride 1; GSoP-Net1 head ``nn.AvgPool2d(14, stride=1)`` (224 px inputs) + ``fc``;
                   GSoP-Net2 head ``layer_reduce`` (no bias) / ``layer_reduce_bn`` / ReLU, Covpool, Sqrtm(3), Triuvec,
                   ``fc`` (256 * 257 / 2 -> classes)
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


def covpool(x):
    """MPNCOV.CovpoolLayer: X I_hat X^T, I_hat = -1/M^2 11^T + 1/M I (M x M)."""
    n, d, h, w = x.shape
    m = h * w
    x = x.reshape(n, d, m)
    i_hat = (-1. / m / m) * torch.ones(m, m) + (1. / m) * torch.eye(m)
    return x.bmm(i_hat.expand(n, m, m)).bmm(x.transpose(1, 2))


def cov_feature(x):
    """resnet.py cov_feature: X^T I_hat X with a d x d I_hat built from M = h*w."""
    n, d, h, w = x.shape
    m = h * w
    x = x.reshape(n, d, m)
    i_hat = (-1. / m / m) * torch.ones(d, d) + (1. / m) * torch.eye(d)
    return x.transpose(1, 2).bmm(i_hat.expand(n, d, d)).bmm(x)


def sqrtm(x, iter_n=3):
    """MPNCOV.SqrtmLayer forward (iter_n >= 2)."""
    n, d, _ = x.shape
    i3 = 3.0 * torch.eye(d).expand(n, d, d)
    norm_a = (1.0 / 3.0) * x.mul(i3).sum(dim=1).sum(dim=1)
    a = x.div(norm_a.view(n, 1, 1))
    zy = 0.5 * (i3 - a)
    ys, zs = [a.bmm(zy)], [zy]
    for i in range(1, iter_n - 1):
        zy = 0.5 * (i3 - zs[i - 1].bmm(ys[i - 1]))
        ys.append(ys[i - 1].bmm(zy))
        zs.append(zy.bmm(zs[i - 1]))
    zy = 0.5 * ys[iter_n - 2].bmm(i3 - zs[iter_n - 2].bmm(ys[iter_n - 2]))
    return zy * torch.sqrt(norm_a).view(n, 1, 1)


def triuvec(x):
    """MPNCOV.TriuvecLayer: the entries where ones(d, d).triu().t() is nonzero, row-major."""
    n, d, _ = x.shape
    index = torch.ones(d, d).triu().t().reshape(d * d).nonzero().squeeze(1)
    return x.reshape(n, d * d)[:, index]


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, attention='0', att_dim=128):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        c = planes * 4
        if attention in '1+M&':
            d = att_dim
            self.conv_for_DR = nn.Conv2d(c, d, 1, stride=1 if planes > 64 else 2, bias=True)
            self.bn_for_DR = nn.BatchNorm2d(d)
            self.row_bn = nn.BatchNorm2d(d)
            self.row_conv_group = nn.Conv2d(d, 4 * d, (d, 1), groups=d, bias=True)
            self.fc_adapt_channels = nn.Conv2d(4 * d, c, 1, bias=True)
        if attention in '2+M&':
            self.sp = 8
            r = self.sp * self.sp
            self.conv_for_DR_spatial = nn.Conv2d(c, att_dim, 1, bias=True)
            self.bn_for_DR_spatial = nn.BatchNorm2d(att_dim)
            self.row_bn_for_spatial = nn.BatchNorm2d(r)
            self.row_conv_group_for_spatial = nn.Conv2d(r, 4 * r, (r, 1), groups=r, bias=True)
            self.fc_adapt_channels_for_spatial = nn.Conv2d(4 * r, r, 1, bias=True)
        if attention == '&':
            groups = c // 64
            factor = int(math.log(32 / groups, 2))
            k, p = factor * 2 + 5, factor + 2
            self.dilate_conv_for_concat1 = nn.Conv2d(c, c, (k, 1), padding=(p, 0), groups=groups, bias=True)
            self.dilate_conv_for_concat2 = nn.Conv2d(c, c, (k, 1), padding=(p, 0), groups=groups, bias=True)
            self.bn_for_concat = nn.BatchNorm2d(c)
        self.downsample = downsample
        self.attention = attention

    def chan_att(self, out):
        out = F.relu(self.bn_for_DR(self.conv_for_DR(F.relu(out))))
        out = covpool(out)
        out = out.view(out.size(0), out.size(1), out.size(2), 1)
        out = self.row_conv_group(self.row_bn(out))
        return torch.sigmoid(self.fc_adapt_channels(out))

    def pos_att(self, out):
        h, w = out.shape[2:]
        out = self.bn_for_DR_spatial(self.conv_for_DR_spatial(F.relu(out)))
        out = F.adaptive_avg_pool2d(out, (self.sp, self.sp))
        out = cov_feature(out)
        out = out.view(out.size(0), out.size(1), out.size(2), 1)
        out = F.relu(self.row_conv_group_for_spatial(self.row_bn_for_spatial(out)))
        out = torch.sigmoid(self.fc_adapt_channels_for_spatial(out))
        out = out.view(out.size(0), 1, self.sp, self.sp)
        return F.adaptive_avg_pool2d(out, (h, w))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(self.attend(out) + residual)

    def attend(self, out):
        """The official forward's attention branch (bn3's output -> what is added to the residual)."""
        a = self.attention
        if a == '1':
            out = out * self.chan_att(out)
        elif a == '2':
            out = F.relu(out * self.pos_att(out))
        elif a == '+':
            out = out * self.chan_att(out) + F.relu(out * self.pos_att(out))
        elif a == 'M':
            out = torch.max(out * self.chan_att(out), F.relu(out * self.pos_att(out)))
        elif a == '&':
            out1 = self.dilate_conv_for_concat1(out * self.chan_att(out))
            out2 = self.dilate_conv_for_concat2(F.relu(out * self.pos_att(out)))
            out = self.bn_for_concat(out1 + out2)
        return out


class GSoPResNet(nn.Module):
    """The official ``ResNet(Bottleneck, layers, att_position, att_dim=128, GSoP_mode)``."""

    def __init__(self, layers=(3, 4, 6, 3), att='1', gsop_mode=1, num_classes=1000):
        super().__init__()
        att_position = [['0'] * (n - 1) + [att] for n in layers]
        if gsop_mode == 2:
            att_position[-1][-1] = '0'
        self.gsop_mode = gsop_mode
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 2 if i in (1, 2) else 1  # layer4 at stride 1
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
            blocks = [Bottleneck(self.inplanes, planes, stride, downsample, att_position[i][0])]
            self.inplanes = planes * 4
            blocks += [Bottleneck(self.inplanes, planes, attention=att_position[i][j]) for j in range(1, n)]
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        if gsop_mode == 1:
            self.avgpool = nn.AvgPool2d(14, stride=1)
            self.fc = nn.Linear(2048, num_classes)
        else:
            self.layer_reduce = nn.Conv2d(2048, 256, 1, bias=False)
            self.layer_reduce_bn = nn.BatchNorm2d(256)
            self.fc = nn.Linear(256 * 257 // 2, num_classes)

    def features(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def head(self, x):
        if self.gsop_mode == 1:
            x = self.avgpool(x)
        else:
            x = F.relu(self.layer_reduce_bn(self.layer_reduce(x)))
            x = triuvec(sqrtm(covpool(x), 3))
        return self.fc(x.view(x.size(0), -1))

    def forward(self, x):
        return self.head(self.features(x))
