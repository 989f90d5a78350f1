"""Independent references written from the spec's formulas (../shared/specs/san.md), for tests only.

Everything here uses the straightforward unfold formulation (materialising every footprint) and
the official module names, so that its state_dict has exactly the official checkpoint layout.
Nothing is imported from timm_attn.
"""
import torch
import torch.nn.functional as F
from torch import nn


def ref_pad(x, k, d):
    return F.pad(x, [(d * (k - 1) + 1) // 2] * 4, mode='reflect')


def ref_unfold(x, k, s, d):
    """(N, C, H, W) -> (N, C, k*k, Ho*Wo) footprints of the reflection-padded map."""
    n, c = x.shape[:2]
    cols = F.unfold(ref_pad(x, k, d), k, dilation=d, stride=s)
    return cols.view(n, c, k * k, -1)


def ref_centre(x, s):
    n, c = x.shape[:2]
    return F.unfold(x, 1, stride=s).view(n, c, 1, -1)


def ref_aggregation(x, w, k, s=1, d=1):
    """y[n, c, l] = sum_kk w[n, c % C_w, kk, l] * unfold(pad(x))[n, c, kk, l]."""
    n, c, h, wd = x.shape
    cw = w.shape[1]
    ho, wo = (h - 1) // s + 1, (wd - 1) // s + 1
    cols = ref_unfold(x, k, s, d).view(n, c // cw, cw, k * k, ho * wo)
    return (w.unsqueeze(1) * cols).sum(3).view(n, c, ho, wo)


def ref_pairwise(x1, x2, k, s, d, relation):
    xi, xj = ref_centre(x1, s), ref_unfold(x2, k, s, d)
    if relation == 'subtraction':
        return xi - xj
    if relation == 'summation':
        return xi + xj
    if relation == 'hadamard':
        return xi * xj
    if relation == 'dot':
        return (xi * xj).sum(1, keepdim=True)
    assert relation == 'concatenation'
    return torch.cat([xi.expand_as(xj), xj], 1)


def ref_patchwise(x1, x2, k, s, d, relation):
    n = x1.shape[0]
    xj = ref_unfold(x2, k, s, d)
    if relation == 'concatenation':
        return torch.cat([ref_centre(x1, s), xj.reshape(n, -1, 1, xj.shape[-1])], 1)
    if relation == 'star':
        return (ref_centre(x1, s) * xj).sum(1).unsqueeze(2)
    assert relation == 'clique'
    xk = ref_unfold(x1, k, s, d)
    out = torch.zeros(n, xj.shape[2], xj.shape[2], xj.shape[3], dtype=x1.dtype)
    for a in range(xj.shape[2]):
        for b in range(xj.shape[2]):
            out[:, a, b] = (xk[:, :, a] * xj[:, :, b]).sum(1)
    return out.view(n, -1, 1, xj.shape[-1])


def ref_position(h, w):
    loc_w = torch.linspace(-1.0, 1.0, w).unsqueeze(0).repeat(h, 1)
    loc_h = torch.linspace(-1.0, 1.0, h).unsqueeze(1).repeat(1, w)
    return torch.cat([loc_w.unsqueeze(0), loc_h.unsqueeze(0)], 0).unsqueeze(0)


class RefSAM(nn.Module):
    """The official SAM's structure and names (conv1/2/3, conv_w, conv_p), unfold computation."""

    def __init__(self, sa_type, in_planes, rel_planes, out_planes, share_planes, k):
        super().__init__()
        self.sa_type, self.k = sa_type, k
        self.conv1 = nn.Conv2d(in_planes, rel_planes, 1)
        self.conv2 = nn.Conv2d(in_planes, rel_planes, 1)
        self.conv3 = nn.Conv2d(in_planes, out_planes, 1)
        cw = out_planes // share_planes
        if sa_type == 0:
            self.conv_w = nn.Sequential(
                nn.BatchNorm2d(rel_planes + 2), nn.ReLU(), nn.Conv2d(rel_planes + 2, rel_planes, 1, bias=False),
                nn.BatchNorm2d(rel_planes), nn.ReLU(), nn.Conv2d(rel_planes, cw, 1))
            self.conv_p = nn.Conv2d(2, 2, 1)
        else:
            c_in = rel_planes * (k * k + 1)
            self.conv_w = nn.Sequential(
                nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, cw, 1, bias=False),
                nn.BatchNorm2d(cw), nn.ReLU(), nn.Conv2d(cw, k * k * cw, 1))

    def forward(self, x):
        n, _, h, w = x.shape
        k = self.k
        x1, x2, x3 = self.conv1(x), self.conv2(x), self.conv3(x)
        if self.sa_type == 0:
            p = self.conv_p(ref_position(h, w))
            rel = torch.cat([ref_pairwise(x1, x2, k, 1, 1, 'subtraction'),
                             ref_pairwise(p, p, k, 1, 1, 'subtraction').repeat(n, 1, 1, 1)], 1)
            weights = torch.softmax(self.conv_w(rel), dim=-2)
        else:
            weights = self.conv_w(ref_patchwise(x1, x2, k, 1, 1, 'concatenation')).view(n, -1, k * k, h * w)
        return ref_aggregation(x3, weights, k)


class RefBottleneck(nn.Module):
    def __init__(self, sa_type, planes, k):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(planes)
        self.sam = RefSAM(sa_type, planes, planes // 16, planes // 4, 8, k)
        self.bn2 = nn.BatchNorm2d(planes // 4)
        self.conv = nn.Conv2d(planes // 4, planes, 1)

    def forward(self, x):
        return self.conv(F.relu(self.bn2(self.sam(F.relu(self.bn1(x)))))) + x


class RefSAN(nn.Module):
    """The official SAN network, key for key."""

    def __init__(self, sa_type, layers, kernels=(3, 7, 7, 7, 7), num_classes=1000):
        super().__init__()
        c = 64
        self.conv_in, self.bn_in = nn.Conv2d(3, c, 1, bias=False), nn.BatchNorm2d(c)
        prev = c
        widths = [64, 256, 512, 1024, 2048]
        for i, (wd, n, k) in enumerate(zip(widths, layers, kernels)):
            setattr(self, f'conv{i}', nn.Conv2d(prev, wd, 1, bias=False))
            setattr(self, f'bn{i}', nn.BatchNorm2d(wd))
            setattr(self, f'layer{i}', nn.Sequential(*[RefBottleneck(sa_type, wd, k) for _ in range(n)]))
            prev = wd
        self.fc = nn.Linear(prev, num_classes)

    def forward(self, x):
        x = F.relu(self.bn_in(self.conv_in(x)))
        for i in range(5):
            x = F.max_pool2d(x, 2, 2)
            x = F.relu(getattr(self, f'bn{i}')(getattr(self, f'layer{i}')(getattr(self, f'conv{i}')(x))))
        return self.fc(x.mean((2, 3)))


def randomize_batchnorm(model, generator=None):
    """Non-trivial BN statistics and affine parameters, so that eval-mode tests exercise them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2, generator=generator)
                m.running_var.uniform_(0.5, 1.5, generator=generator)
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.uniform_(-0.2, 0.2, generator=generator)
    return model
