"""Attention layers of the zoo (part A) against references written from the papers' formulas.

Each reference below recomputes the layer's equation with explicit loops / shifted sums on small shapes,
using the layer's own parameters (eval mode: BatchNorm as its affine running-statistics map)."""
import math

import pytest
import torch
import torch.nn.functional as F

from timm_attn.layers.gates.bam import BAM
from timm_attn.layers.gates.cbam import CBAM, CbamSpatialGate
from timm_attn.layers.create_attn import ATTN_LAYERS, create_attn, get_attn
from timm_attn.layers.gates.fca import FCA_TOP_FREQUENCIES, MultiSpectralAttention
from timm_attn.layers.gates.gather_excite import GatherExcite
from timm_attn.layers.gates.gsop import GSoPAttention
from timm_attn.layers.residual_attention import ResidualAttentionModule, SoftMaskBranch
from timm_attn.layers.gates.scse import SCSE, ChannelSE, SpatialSE
from timm_attn.layers.gates.spa import SpatialPyramidAttention


# ---------------------------------------------------------------------------------------------- references

def bn_ref(x, bn):
    """Eval BatchNorm over dim 1 from its definition."""
    shape = [1, -1] + [1] * (x.dim() - 2)
    return (x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps) \
        * bn.weight.view(shape) + bn.bias.view(shape)


def conv_ref(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2D cross-correlation as explicit shifted sums over the kernel taps."""
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    xp = torch.zeros(n, c, h + 2 * padding, w + 2 * padding, dtype=x.dtype)
    xp[:, :, padding:padding + h, padding:padding + w] = x
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = torch.zeros(n, o, oh, ow, dtype=x.dtype)
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dilation:i * dilation + stride * (oh - 1) + 1:stride,
                           j * dilation:j * dilation + stride * (ow - 1) + 1:stride]  # (N, cg, oh, ow)
                w_tap = weight[g * og:(g + 1) * og, :, i, j]  # (og, cg)
                out[:, g * og:(g + 1) * og] += torch.einsum('nchw,oc->nohw', patch, w_tap)
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


def adaptive_bins(size, p):
    """PyTorch's adaptive pooling bins: [floor(i*size/p), ceil((i+1)*size/p))."""
    return [(math.floor(i * size / p), math.ceil((i + 1) * size / p)) for i in range(p)]


def adaptive_avg_ref(x, ph, pw):
    n, c, h, w = x.shape
    out = torch.zeros(n, c, ph, pw, dtype=x.dtype)
    for i, (h0, h1) in enumerate(adaptive_bins(h, ph)):
        for j, (w0, w1) in enumerate(adaptive_bins(w, pw)):
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean((2, 3))
    return out


def _randomise(module, seed=0):
    """Random parameters and BN statistics (eval mode), so every term of a formula matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return module.eval().double()


def _x(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# -------------------------------------------------------------------------------------------- per layer

@pytest.mark.parametrize('size', [(7, 7), (14, 14), (5, 9)])
def test_fca_matches_dct_formula(size):
    c, dct = 32, 14
    m = _randomise(MultiSpectralAttention(c, dct_size=dct, num_freq=16, rd_ratio=1 / 4))
    x = _x(2, c, *size)
    pooled = adaptive_avg_ref(x, dct, dct)
    freq = torch.zeros(2, c, dtype=torch.float64)
    for i in range(c):
        u, v = FCA_TOP_FREQUENCIES[i // (c // 16)]
        u, v = u * (dct // 7), v * (dct // 7)  # 7x7 frequency grid scaled to the DCT size
        for hh in range(dct):
            for ww in range(dct):
                bu = math.cos(math.pi * u * (hh + .5) / dct) * (math.sqrt(1 / dct) if u == 0 else math.sqrt(2 / dct))
                bv = math.cos(math.pi * v * (ww + .5) / dct) * (math.sqrt(1 / dct) if v == 0 else math.sqrt(2 / dct))
                freq[:, i] += pooled[:, i, hh, ww] * bu * bv
    att = torch.sigmoid(torch.relu(freq @ m.fc1.weight.T) @ m.fc2.weight.T)
    torch.testing.assert_close(m(x), x * att[:, :, None, None])


def test_fca_lowest_frequency_is_scaled_mean():
    m = MultiSpectralAttention(16, dct_size=7, num_freq=1).double()
    x = _x(2, 16, 7, 7)
    freq = torch.einsum('nchw,h,w->nc', x, m.basis_h[0], m.basis_w[0])
    torch.testing.assert_close(freq, x.mean((2, 3)) * 7)


def test_spa_matches_pyramid_formula():
    c = 8
    m = _randomise(SpatialPyramidAttention(c, rd_ratio=1 / 2))
    x = _x(2, c, 5, 7)
    z = torch.cat([adaptive_avg_ref(x, p, p).reshape(2, -1) for p in (1, 2, 4)], dim=1)  # channel-major bins
    assert z.shape == (2, 21 * c)
    s = torch.sigmoid(torch.relu(z @ m.fc1.weight.T) @ m.fc2.weight.T)
    torch.testing.assert_close(m(x), x * s[:, :, None, None])


def test_cbam_matches_paper_equations():
    c = 16
    m = _randomise(CBAM(c, rd_ratio=1 / 4))
    x = _x(2, c, 6, 9)
    mlp = lambda v: torch.relu(v @ m.channel.fc1.weight.T + m.channel.fc1.bias) @ m.channel.fc2.weight.T \
        + m.channel.fc2.bias  # noqa: E731
    mc = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))
    f1 = x * mc[:, :, None, None]
    pooled = torch.stack([f1.max(1).values, f1.mean(1)], 1)  # [MaxPool_c; AvgPool_c]
    ms = torch.sigmoid(bn_ref(conv_ref(pooled, m.spatial.conv.weight, padding=3), m.spatial.norm))
    torch.testing.assert_close(m(x), f1 * ms)
    assert m.spatial.conv.kernel_size == (7, 7)


def test_cbam_spatial_bn_starts_at_zero():
    assert CBAM(64).spatial.norm.weight.abs().sum() == 0  # official init: uniform 0.5 spatial gate at start


def test_cbam_spatial_gate_layer_is_applied():
    m = _randomise(CbamSpatialGate(gate_layer='hard_sigmoid'))
    x = _x(2, 8, 5, 6)
    pooled = torch.stack([x.max(1).values, x.mean(1)], 1)
    logits = bn_ref(conv_ref(pooled, m.conv.weight, padding=3), m.norm)
    torch.testing.assert_close(m(x), x * F.hardsigmoid(logits))


@pytest.mark.parametrize('combine', ['sum', 'product'])
def test_bam_matches_paper_equations(combine):
    c = 32
    m = _randomise(BAM(c, rd_ratio=1 / 4, combine=combine))
    x = _x(2, c, 11, 13)
    h = x.mean((2, 3)) @ m.channel_fc1.weight.T + m.channel_fc1.bias
    mc = torch.relu(bn_ref(h, m.channel_norm)) @ m.channel_fc2.weight.T + m.channel_fc2.bias
    s = m.spatial
    t = torch.relu(bn_ref(conv_ref(x, s[0].weight, s[0].bias), s[1]))
    t = torch.relu(bn_ref(conv_ref(t, s[3].weight, s[3].bias, padding=4, dilation=4), s[4]))
    t = torch.relu(bn_ref(conv_ref(t, s[6].weight, s[6].bias, padding=4, dilation=4), s[7]))
    ms = conv_ref(t, s[9].weight, s[9].bias)  # (N, 1, H, W)
    logits = mc[:, :, None, None] + ms if combine == 'sum' else mc[:, :, None, None] * ms
    torch.testing.assert_close(m(x), (1 + torch.sigmoid(logits)) * x)


@pytest.mark.parametrize('combine', ['add', 'max'])
def test_scse_matches_paper_equations(combine):
    c = 8
    m = _randomise(SCSE(c, rd_ratio=1 / 2, combine=combine))
    x = _x(2, c, 4, 6)
    z = x.mean((2, 3))
    s = torch.sigmoid(torch.relu(z @ m.cse.fc1.weight[:, :, 0, 0].T + m.cse.fc1.bias) @ m.cse.fc2.weight[:, :, 0, 0].T
                      + m.cse.fc2.bias)
    q = torch.sigmoid(torch.einsum('nchw,c->nhw', x, m.sse.conv.weight[0, :, 0, 0]) + m.sse.conv.bias)
    u_cse, u_sse = x * s[:, :, None, None], x * q[:, None]
    expected = u_cse + u_sse if combine == 'add' else torch.maximum(u_cse, u_sse)
    torch.testing.assert_close(m(x), expected)
    torch.testing.assert_close(ChannelSE(c).double()(x).shape, x.shape)
    torch.testing.assert_close(SpatialSE(c).double()(x).shape, x.shape)


@pytest.mark.parametrize('stride', [1, 2])
def test_gsop_matches_covariance_formula(stride):
    c, d = 16, 8
    m = _randomise(GSoPAttention(c, dim=d, reduce_stride=stride))
    x = _x(2, c, 6, 5)
    z = torch.relu(bn_ref(conv_ref(torch.relu(x), m.reduce.weight, m.reduce.bias, stride=stride), m.reduce_norm))
    n, _, h, w = z.shape
    cov = torch.zeros(n, d, d, dtype=torch.float64)
    mean = z.mean((2, 3))
    for i in range(h):
        for j in range(w):
            v = z[:, :, i, j] - mean
            cov += v[:, :, None] * v[:, None, :] / (h * w)
    rows = bn_ref(cov, m.row_norm)  # (N, d rows, d): BN over the rows
    k = m.row_conv.weight.shape[0] // d  # outputs per row
    vec = torch.zeros(n, d * k, dtype=torch.float64)
    for r in range(d):
        for o in range(k):
            vec[:, r * k + o] = rows[:, r] @ m.row_conv.weight[r * k + o, 0, :, 0] + m.row_conv.bias[r * k + o]
    att = torch.sigmoid(vec @ m.fc.weight[:, :, 0, 0].T + m.fc.bias)
    torch.testing.assert_close(m(x), x * att[:, :, None, None])


def test_ge_theta_minus_global_and_extent():
    x = _x(2, 4, 5, 7)
    torch.testing.assert_close(GatherExcite(4)(x), x * torch.sigmoid(x.mean((2, 3), keepdim=True)))
    # extent 2: average over a 3x3 window at stride 2 (padding not counted), nearest upsampling back
    out = GatherExcite(4, extent=2)(x)
    gh, gw = (5 - 1) // 2 + 1, (7 - 1) // 2 + 1
    g = torch.zeros(2, 4, gh, gw, dtype=torch.float64)
    for i in range(gh):
        for j in range(gw):
            g[:, :, i, j] = x[:, :, max(0, 2 * i - 1):2 * i + 2, max(0, 2 * j - 1):2 * j + 2].mean((2, 3))
    up = torch.zeros_like(x)
    for i in range(5):
        for j in range(7):
            up[:, :, i, j] = g[:, :, i * gh // 5, j * gw // 7]
    torch.testing.assert_close(out, x * torch.sigmoid(up))


@pytest.mark.parametrize('use_mlp', [False, True])
def test_ge_theta_global_is_full_map_depthwise_conv(use_mlp):
    c = 8
    m = _randomise(GatherExcite(c, extra_params=True, use_mlp=use_mlp, feat_size=(5, 6)))
    def excite(g):
        if use_mlp:
            g = torch.relu(g @ m.mlp.fc1.weight[:, :, 0, 0].T + m.mlp.fc1.bias) @ m.mlp.fc2.weight[:, :, 0, 0].T \
                + m.mlp.fc2.bias
        return torch.sigmoid(g)[:, :, None, None]

    x = _x(2, c, 5, 6)
    g = bn_ref((x * m.gather.conv1.weight[:, 0][None]).sum((2, 3)), m.gather.norm1)  # (N, C)
    torch.testing.assert_close(m(x), x * excite(g))
    # another input size: adaptive average pooling to the kernel's size first
    x2 = _x(2, c, 9, 13)
    g2 = bn_ref((adaptive_avg_ref(x2, 5, 6) * m.gather.conv1.weight[:, 0][None]).sum((2, 3)), m.gather.norm1)
    torch.testing.assert_close(m(x2), x2 * excite(g2))


def test_ge_theta_parameter_counts():
    # global GE-theta: one C x H x W depth-wise kernel + BN; GE-theta-plus adds SE's MLP (with biases)
    c = 256
    assert sum(p.numel() for p in get_attn('ge_theta')(c).parameters()) == c * 56 * 56 + 2 * c
    plus = sum(p.numel() for p in get_attn('ge_theta_plus')(c).parameters())
    assert plus == c * 56 * 56 + 2 * c + 2 * c * (c // 16) + c // 16 + c
    assert sum(p.numel() for p in GatherExcite(c, extent=8, extra_params=True).parameters()) == 3 * (9 * c + 2 * c)


def test_residual_attention_is_one_plus_mask_times_trunk():
    m = _randomise(ResidualAttentionModule(16, depth=2))
    x = _x(2, 16, 9, 11)
    with torch.no_grad():
        h = m.first(x)
        t = m.trunk(h)
        mask = m.mask(h, t)
        assert mask.min() >= 0 and mask.max() <= 1 and mask.shape == t.shape
        torch.testing.assert_close(m(x), m.last((1 + mask) * t))
        # a zero last mask conv gives M = 1/2 everywhere
        m.mask.head[-2].weight.zero_()
        torch.testing.assert_close(m(x), m.last(1.5 * t))


def test_soft_mask_branch_levels():
    m = _randomise(SoftMaskBranch(8, depth=3))
    x = _x(1, 8, 13, 17)
    feats, sizes = x, []
    for _ in range(3):
        feats = F.max_pool2d(feats, 3, 2, 1)
        sizes.append(tuple(feats.shape[-2:]))
    assert sizes == [(7, 9), (4, 5), (2, 3)]
    assert len(m.down) == 3 and len(m.skips) == 2 and len(m.up) == 2 and len(m.down[2]) == 2
    assert m(x, x).shape == x.shape


# -------------------------------------------------------------------------------- all layers, all sizes

_SIZES = [(1, 1), (2, 3), (7, 7), (13, 29), (64, 96)]


@pytest.mark.parametrize('name', sorted(ATTN_LAYERS))
def test_every_input_size(name):
    torch.manual_seed(0)
    m = create_attn(name, 64).eval()
    for size in _SIZES:
        x = torch.randn(2, 64, *size)
        with torch.no_grad():
            y = m(x)
        assert y.shape == x.shape and torch.isfinite(y).all(), (name, size)
    m.train()
    x = torch.randn(2, 64, 9, 5, requires_grad=True)
    m(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize('name', sorted(ATTN_LAYERS))
def test_meta_device_and_dtype(name):
    m = create_attn(name, 256, device='meta', dtype=torch.bfloat16)
    assert all(p.device.type == 'meta' and p.dtype == torch.bfloat16 for p in m.parameters())
    y = m(torch.empty(2, 256, 14, 14, device='meta', dtype=torch.bfloat16))
    assert y.shape == (2, 256, 14, 14) and y.dtype == torch.bfloat16


@pytest.mark.parametrize('name', sorted(ATTN_LAYERS))
def test_torchscript(name):
    m = create_attn(name, 32).eval()
    x = torch.randn(2, 32, 7, 9)
    scripted = torch.jit.script(m)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), m(x))


def test_clear_errors():
    with pytest.raises(ValueError, match='divisible by num_freq'):
        MultiSpectralAttention(100)
    with pytest.raises(ValueError, match='at least 7'):
        MultiSpectralAttention(64, dct_size=4)
    with pytest.raises(ValueError, match='power of 2'):
        GatherExcite(64, extent=3)
    with pytest.raises(ValueError, match="'sum'"):
        BAM(64, combine='mul')
    with pytest.raises(ValueError, match="'add'"):
        SCSE(64, combine='mul')
    with pytest.raises(ValueError, match='odd'):
        CBAM(64, spatial_kernel=6)
    with pytest.raises(ValueError, match="unknown attention layer 'fcanet'.*fca"):
        get_attn('fcanet')
