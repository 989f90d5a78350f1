"""Options of the official zoo modules: FcaNet's 'low' / 'bot' frequency sets, the APNB / OCR ``scale`` (max-pool,
attend, upsample), OCR's gather ``scale`` and convolution biases. Each against a reference written here from the
official formula (explicit loops, float64, small shapes; nothing reused from the modules), the defaults left as
they were (parameter counts of the registered models from tests/data/model_manifest.json) and a ValueError for
each bad value."""
import json
import math
import os
from functools import partial

import pytest
import timm
import torch
from torch import nn

import timm_attn  # noqa: F401  (registers the models)
from timm_attn.layers.context.asymmetric_nonlocal import PyramidNonLocal
from timm_attn.layers.context.object_context import ObjectContext
from timm_attn.layers.gates.fca import MultiSpectralAttention

from reference_context import bn, cbr, conv1x1, randomise, softmax

TOL = 1e-6
MANIFEST = os.path.join(os.path.dirname(__file__), 'data', 'model_manifest.json')

# cfzd/FcaNet model/layer.py get_freq_indices: the 32 (u, v) of each 7x7 table, as the official lists
OFFICIAL_FREQ = {
    'top': ('0,0,6,0,0,1,1,4,5,1,3,0,0,0,3,2,4,6,3,5,5,2,6,5,5,3,3,4,2,2,6,1',
            '0,1,0,5,2,0,2,0,0,6,0,4,6,3,5,2,6,3,3,3,5,1,1,2,4,2,1,1,3,0,5,3'),
    'low': ('0,0,1,1,0,2,2,1,2,0,3,4,0,1,3,0,1,2,3,4,5,0,1,2,3,4,5,6,1,2,3,4',
            '0,1,0,1,2,0,1,2,2,3,0,0,4,3,1,5,4,3,2,1,0,6,5,4,3,2,1,0,6,5,4,3'),
    'bot': ('6,1,3,3,2,4,1,2,4,4,5,1,4,6,2,5,6,1,6,2,2,4,3,3,5,5,6,2,5,5,3,6',
            '6,4,4,6,6,3,1,4,4,5,6,5,2,2,5,1,4,3,5,0,3,1,1,2,4,2,1,1,5,3,3,3'),
}


# ---------------------------------------------------------------- helpers (no module code reused)
def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def max_pool(x, s):
    """x (C, H, W) -> (C, H // s, W // s): max over each s x s window, stride s, the rest dropped."""
    c, h, w = x.shape
    out = torch.empty(c, h // s, w // s, dtype=x.dtype)
    for i in range(h // s):
        for j in range(w // s):
            out[:, i, j] = x[:, i * s:(i + 1) * s, j * s:(j + 1) * s].amax(dim=(1, 2))
    return out


def bilinear_corners(x, out_h, out_w):
    """x (C, h, w) -> (C, out_h, out_w), bilinear with align_corners=True: output o samples input o (n - 1) /
    (out - 1)."""
    c, h, w = x.shape

    def taps(n_in, n_out, o):
        src = o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.
        i0 = min(int(math.floor(src)), n_in - 1)
        return i0, min(i0 + 1, n_in - 1), src - i0

    out = torch.empty(c, out_h, out_w, dtype=x.dtype)
    for i in range(out_h):
        i0, i1, fi = taps(h, out_h, i)
        for j in range(out_w):
            j0, j1, fj = taps(w, out_w, j)
            out[:, i, j] = (x[:, i0, j0] * (1 - fi) * (1 - fj) + x[:, i0, j1] * (1 - fi) * fj
                            + x[:, i1, j0] * fi * (1 - fj) + x[:, i1, j1] * fi * fj)
    return out


def adaptive_pool(x, s):
    """x (C, H, W) -> (C, s * s) with PyTorch's adaptive bins [floor(i n / s), ceil((i + 1) n / s))."""
    c, h, w = x.shape
    bins = lambda n: [(math.floor(i * n / s), math.ceil((i + 1) * n / s)) for i in range(s)]  # noqa: E731
    return torch.stack([x[:, h0:h1, w0:w1].mean(dim=(1, 2)) for h0, h1 in bins(h) for w0, w1 in bins(w)], 1)


# ---------------------------------------------------------------- FcaNet frequency sets
def dct_1d(k, t, n):
    """Official build_filter: cos(pi k (t + 1/2) / n) / sqrt(n), times sqrt(2) for k > 0."""
    r = math.cos(math.pi * k * (t + 0.5) / n) / math.sqrt(n)
    return r if k == 0 else r * math.sqrt(2)


def ref_dct_filter(channels, dct_h, dct_w, freq_sel, num_freq):
    """The official (C, H, W) DCT filter of MultiSpectralDCTLayer for get_freq_indices(freq_sel + num_freq)."""
    us, vs = ([int(t) for t in row.split(',')][:num_freq] for row in OFFICIAL_FREQ[freq_sel])
    part = channels // num_freq
    out = torch.zeros(channels, dct_h, dct_w, dtype=torch.float64)
    for i, (u, v) in enumerate(zip(us, vs)):
        u, v = u * (dct_h // 7), v * (dct_w // 7)  # the 7x7 frequency on the H x W grid
        for th in range(dct_h):
            for tw in range(dct_w):
                out[i * part:(i + 1) * part, th, tw] = dct_1d(u, th, dct_h) * dct_1d(v, tw, dct_w)
    return out


def our_dct_filter(m: MultiSpectralAttention, channels):
    """Our separable bases expanded to the official per-channel filter."""
    full = torch.einsum('fh,fw->fhw', m.basis_h.double(), m.basis_w.double())
    return full.repeat_interleave(channels // m.num_freq, dim=0)


@pytest.mark.parametrize('freq_sel', ['top', 'low', 'bot'])
@pytest.mark.parametrize('num_freq', [4, 32])
@pytest.mark.parametrize('dct_size', [7, (14, 21)])
def test_fca_dct_filters_match_official_formula(freq_sel, num_freq, dct_size):
    c = 64
    m = MultiSpectralAttention(c, dct_size=dct_size, num_freq=num_freq, freq_sel=freq_sel, dtype=torch.float64)
    dct_h, dct_w = (dct_size, dct_size) if isinstance(dct_size, int) else dct_size
    torch.testing.assert_close(our_dct_filter(m, c), ref_dct_filter(c, dct_h, dct_w, freq_sel, num_freq),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize('freq_sel', ['low', 'bot'])
def test_fca_forward_with_other_sets_matches_formula(freq_sel):
    c, dct = 32, 7
    m = randomise(MultiSpectralAttention(c, dct_size=dct, num_freq=16, freq_sel=freq_sel, rd_ratio=1 / 4))
    x = torch.randn(2, c, 7, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    freq = torch.einsum('nchw,chw->nc', x, ref_dct_filter(c, dct, dct, freq_sel, 16))  # official: sum(x * weight)
    att = torch.sigmoid(torch.relu(freq @ m.fc1.weight.T) @ m.fc2.weight.T)
    torch.testing.assert_close(m(x), x * att[:, :, None, None])


def test_fca_sets_change_no_parameter_and_default_is_top():
    default = MultiSpectralAttention(256, dct_size=56)
    assert default.freq_sel == 'top'
    top = MultiSpectralAttention(256, dct_size=56, freq_sel='top')
    assert torch.equal(default.basis_h, top.basis_h) and torch.equal(default.basis_w, top.basis_w)
    for sel in ('low', 'bot'):
        m = MultiSpectralAttention(256, dct_size=56, freq_sel=sel)
        assert n_params(m) == n_params(default)
        assert list(m.state_dict()) == list(default.state_dict())  # the bases are not saved
        assert not torch.equal(m.basis_h, default.basis_h)


@pytest.mark.parametrize('freq_sel', ['low', 'bot'])
def test_fca_resnet50_parameter_count_unchanged_by_set(freq_sel):
    expected = json.load(open(MANIFEST))['fca_resnet50']['params']
    model = timm.create_model('fca_resnet50', device='meta',
                              attn_layer=partial(MultiSpectralAttention, freq_sel=freq_sel))
    assert n_params(model) == expected
    assert model.layer1[0].se.freq_sel == freq_sel and model.layer1[0].se.dct_size == (56, 56)


@pytest.mark.parametrize('bad', ['mid', 'low16', 'TOP', '', None, 3])
def test_fca_rejects_unknown_frequency_set(bad):
    with pytest.raises(ValueError, match="freq_sel must be 'top', 'low' or 'bot'"):
        MultiSpectralAttention(64, dct_size=7, freq_sel=bad)


# ---------------------------------------------------------------- APNB scale
def ref_apnb(x, m: PyramidNonLocal, scale):
    """Official _SelfAttentionBlock (scale: MaxPool2d(scale), upsample bilinear align_corners=True) + fuse."""
    out = []
    for xb in x:
        _, h, w = xb.shape
        xp = max_pool(xb, scale) if scale > 1 else xb
        k = cbr(xp, m.key)                                      # f_query = f_key
        ck, ph, pw = k.shape
        v = conv1x1(xp, m.value)
        kp = torch.cat([adaptive_pool(k, s) for s in (1, 3, 6, 8)], 1)    # Ck x 110
        vp = torch.cat([adaptive_pool(v, s) for s in (1, 3, 6, 8)], 1)    # Cv x 110
        q = k.reshape(ck, -1)
        ctx = torch.stack([vp @ softmax(q[:, i] @ kp / math.sqrt(ck)) for i in range(ph * pw)], 1)
        y = conv1x1(ctx.reshape(-1, ph, pw), m.proj)            # W
        if scale > 1:
            y = bilinear_corners(y, h, w)
        if m.fuse == 'add':
            out.append(xb + y)
        else:
            out.append(bn(conv1x1(torch.cat([y, xb]), m.fusion[0]), m.fusion[1]).relu())
    return torch.stack(out)


@pytest.mark.parametrize('scale,hw', [(1, (3, 4)), (2, (5, 7)), (2, (2, 2)), (3, (7, 9)), (3, (3, 4))])
@pytest.mark.parametrize('fuse', ['add', 'concat'])
def test_apnb_scale_matches_official_formula(scale, hw, fuse):
    m = randomise(PyramidNonLocal(8, key_channels=4, value_channels=6, fuse=fuse, scale=scale))
    x = torch.randn(2, 8, *hw, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = m(x)
    assert out.shape == x.shape
    assert (out - ref_apnb(x, m, scale)).abs().max() < TOL


def test_apnb_scale_keeps_parameters_and_default():
    base = PyramidNonLocal(16)
    assert base.scale == 1
    for s in (2, 4):
        m = PyramidNonLocal(16, scale=s)
        assert n_params(m) == n_params(base) and list(m.state_dict()) == list(base.state_dict())
    x = torch.randn(2, 16, 5, 6)
    one = randomise(PyramidNonLocal(16, scale=1))
    ref = randomise(PyramidNonLocal(16))
    assert torch.equal(one(x.double()), ref(x.double()))
    assert torch.equal(PyramidNonLocal(16, scale=2).eval()(x), x)  # still the identity at init (W = 0)


@pytest.mark.parametrize('bad', [0, -1, 1.5, 2.0, True, '2', None])
def test_apnb_rejects_bad_scale(bad):
    with pytest.raises(ValueError, match='scale must be an integer >= 1'):
        PyramidNonLocal(8, scale=bad)


# ---------------------------------------------------------------- OCR scale, gather scale, biases
def ref_ocr(x, m: ObjectContext, scale, gather_scale):
    """HRNet-OCR / openseg: SpatialGather_Module(scale=gather_scale), ObjectAttentionBlock(scale), g, then our
    residual projection. The pixel conv is 1x1 here (pixel_kernel_size=1) so that it is written as a matrix."""
    outs, regions = [], []
    for xb in x:
        c, h, w = xb.shape
        logits = conv1x1(cbr(xb, m.aux_head[0]), m.aux_head[1])                    # K x H x W
        feats = cbr(xb, m.pixel)                                                   # mid x H x W
        ff = feats.reshape(feats.shape[0], -1)
        probs = torch.stack([softmax(gather_scale * lk.reshape(-1)) for lk in logits])   # K x N, eq. 2
        f = ff @ probs.T                                                           # mid x K
        fk = f.unsqueeze(-1)
        psi = cbr(cbr(fk, m.f_object[0]), m.f_object[1])[..., 0]                  # Ck x K
        delta = cbr(fk, m.f_down)[..., 0]                                          # Ck x K
        pix = max_pool(feats, scale) if scale > 1 else feats                      # official self.pool(x)
        _, ph, pw = pix.shape
        phi = cbr(cbr(pix, m.f_pixel[0]), m.f_pixel[1]).reshape(psi.shape[0], -1)  # Ck x N'
        ck = phi.shape[0]
        y = torch.stack([delta @ softmax(phi[:, i] @ psi / math.sqrt(ck)) for i in range(ph * pw)], 1)
        y = cbr(y.reshape(ck, ph, pw), m.f_up)                                     # mid x h' x w'
        if scale > 1:
            y = bilinear_corners(y, h, w)
        z = cbr(torch.cat([y, feats]), m.fuse[0])                                  # official [context; feats]
        outs.append(xb + bn(conv1x1(z, m.proj), m.norm))
        regions.append(logits)
    return torch.stack(outs), torch.stack(regions)


@pytest.mark.parametrize('scale,gather_scale,hw,conv_bias', [
    (1, 1., (3, 4), 'none'),
    (1, 0.5, (3, 4), 'hrnet'),
    (2, 1., (5, 6), 'openseg'),
    (2, 3., (4, 3), 'none'),
    (3, 2., (7, 6), 'hrnet'),
    (3, 1., (3, 3), 'openseg'),
])
def test_ocr_options_match_official_formula(scale, gather_scale, hw, conv_bias):
    m = randomise(ObjectContext(8, num_regions=3, mid_channels=6, key_channels=4, pixel_kernel_size=1,
                                scale=scale, gather_scale=gather_scale, conv_bias=conv_bias))
    x = torch.randn(2, 8, *hw, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out, regions = m.forward_with_regions(x)
    ref_out, ref_regions = ref_ocr(x, m, scale, gather_scale)
    assert out.shape == x.shape
    assert (regions - ref_regions).abs().max() < TOL  # the raw logits: the gather scale is not applied to them
    assert (out - ref_out).abs().max() < TOL


def test_ocr_conv_bias_modes_match_the_official_codes():
    mid, ck = 12, 6
    count = {cb: n_params(ObjectContext(16, 5, mid_channels=mid, key_channels=ck, conv_bias=cb))
             for cb in ('none', 'hrnet', 'openseg')}
    # HRNet-OCR: conv3x3_ocr and the aux head's first conv; openseg.pytorch: also phi (2), psi (2), delta, rho, g
    assert count['hrnet'] - count['none'] == 2 * mid
    assert count['openseg'] - count['none'] == 2 * mid + 5 * ck + 2 * mid
    m = ObjectContext(16, 5, mid_channels=mid, key_channels=ck, conv_bias='hrnet')
    assert m.pixel[0].bias is not None and m.aux_head[0][0].bias is not None
    assert all(s[0].bias is None for s in (*m.f_pixel, *m.f_object, m.f_down, m.f_up, m.fuse[0]))
    m = ObjectContext(16, 5, mid_channels=mid, key_channels=ck, conv_bias='openseg')
    assert all(s[0].bias is not None for s in (m.pixel, m.aux_head[0], *m.f_pixel, *m.f_object, m.f_down, m.f_up,
                                               m.fuse[0]))
    assert m.proj.bias is None  # our residual projection (before its BN) has none in every mode


def test_ocr_defaults_unchanged():
    m = ObjectContext(16, 5, mid_channels=8, key_channels=4)
    assert (m.scale, m.gather_scale, m.conv_bias) == (1, 1., 'none')
    explicit = ObjectContext(16, 5, mid_channels=8, key_channels=4, scale=1, gather_scale=1., conv_bias='none')
    assert list(m.state_dict()) == list(explicit.state_dict())
    x = torch.randn(2, 16, 4, 5, dtype=torch.float64)
    assert torch.equal(randomise(m)(x), randomise(explicit)(x))
    manifest = json.load(open(MANIFEST))
    for name in ('ocr_resnet50', 'apnb_resnet50'):
        assert n_params(timm.create_model(name, device='meta')) == manifest[name]['params']


@pytest.mark.parametrize('kwargs,match', [
    (dict(scale=0), 'scale must be an integer >= 1'),
    (dict(scale=2.0), 'scale must be an integer >= 1'),
    (dict(scale=True), 'scale must be an integer >= 1'),
    (dict(gather_scale=0), 'gather_scale must be a finite number > 0'),
    (dict(gather_scale=-1.), 'gather_scale must be a finite number > 0'),
    (dict(gather_scale=float('inf')), 'gather_scale must be a finite number > 0'),
    (dict(gather_scale=float('nan')), 'gather_scale must be a finite number > 0'),
    (dict(gather_scale='2'), 'gather_scale must be a finite number > 0'),
    (dict(conv_bias='all'), "conv_bias must be 'none', 'hrnet' or 'openseg'"),
    (dict(conv_bias=True), "conv_bias must be 'none', 'hrnet' or 'openseg'"),
])
def test_ocr_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ObjectContext(8, 3, mid_channels=6, key_channels=4, **kwargs)


def test_scaled_blocks_script_and_backprop():
    x = torch.randn(1, 8, 5, 6, requires_grad=True)
    for m in (PyramidNonLocal(8, key_channels=4, value_channels=4, scale=2),
              ObjectContext(8, 3, mid_channels=6, key_channels=4, scale=2, gather_scale=2.)):
        m = randomise(m).float()
        scripted = torch.jit.script(m)
        torch.testing.assert_close(scripted(x), m(x))
        m(x).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        x.grad = None


@pytest.mark.parametrize('name,args', [('apnb_resnet50', dict(scale=2)),
                                       ('ocr_resnet50', dict(scale=2, gather_scale=2.))])
def test_context_args_reach_the_modules_of_the_model(name, args):
    """``context_args`` builds the registered model's context modules with the official options."""
    torch.manual_seed(0)
    plain = timm.create_model(name, num_classes=10).eval()
    model = timm.create_model(name, num_classes=10, context_args=args).eval()
    model.load_state_dict(plain.state_dict())  # same keys and shapes: the options add no parameter
    layer = PyramidNonLocal if name.startswith('apnb') else ObjectContext
    modules = [m for m in model.modules() if isinstance(m, layer)]
    assert modules and all(getattr(m, k) == v for m in modules for k, v in args.items())
    with torch.no_grad():
        for m in modules:  # the context modules start as the identity (a zero-initialised last layer)
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        plain.load_state_dict(model.state_dict())
        x = torch.randn(1, 3, 128, 128)
        out, ref = model(x), plain(x)
    assert torch.isfinite(out).all() and not torch.allclose(out, ref)
    with pytest.raises(TypeError):
        timm.create_model(name, num_classes=10, context_args=dict(no_such_option=1), device='meta')
