"""ACmix on SAN (acmix_san10/15/19) and PVT v1 (acmix_pvt_tiny/small): counts against the official table,
reduction to the base attention, an independent reference of the conv path, dtypes, sizes, errors, gradients."""
import pytest
import torch
import torch.nn.functional as F

import timm
from timm_attn.flops import count_gmacs
from timm_attn.layers.acmix_san import PatchwiseSelfAttentionACmix
from timm_attn.models.acmix_san_pvt import ACmixPvt, ACmixSAN, SpatialReductionAttentionACmix
from timm_attn.models.pvt import PyramidVisionTransformer, SpatialReductionAttention
from timm_attn.models.san import SAN

# name: (exact params, GMACs at 224 (timm_attn.flops), official params (M), official FLOPs (G), params tolerance)
COUNTS = {
    'acmix_san10': (11_994_612, 1.8132, 12.1, 1.9, 0.02),
    'acmix_san15': (16_414_134, 2.5118, 16.6, 2.7, 0.02),
    'acmix_san19': (20_829_278, 3.1660, 21.2, 3.4, 0.02),
    'acmix_pvt_tiny': (13_312_388, 1.9461, 13.0, 2.0, 0.03),
    'acmix_pvt_small': (24_698_803, 3.8462, 25.0, 3.9, 0.03),
}

# small networks of the two families (fast on a CPU)
SAN_KW = dict(layers=(1, 1, 1, 1, 1), widths=(64, 64, 128, 128, 128), stem_chs=16, num_classes=7)
PVT_KW = dict(depths=(1, 1, 1, 1), embed_dims=(16, 32, 40, 64), img_size=64, num_classes=7)


@pytest.mark.parametrize('name', sorted(COUNTS))
def test_counts_match_official_table(name):
    params, gmacs, paper_params, paper_flops, tol = COUNTS[name]
    model = timm.create_model(name, device='meta')
    n = sum(p.numel() for p in model.parameters())
    assert n == params
    assert abs(n / 1e6 - paper_params) <= tol * paper_params
    g = count_gmacs(model, 224)
    assert g == pytest.approx(gmacs, abs=1e-4)
    assert abs(g - paper_flops) <= 0.1 * paper_flops


def _set_rates(model, rate1, rate2):
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, 'rate1') and hasattr(m, 'dep_conv'):
                m.rate1.fill_(rate1)
                m.rate2.fill_(rate2)


def _load_base(acmix_model, base_model):
    missing, unexpected = acmix_model.load_state_dict(base_model.state_dict(), strict=False)
    assert not unexpected
    assert missing and all(k.split('.')[-1] in ('fc', 'weight', 'rate1', 'rate2') and
                           ('.attn.fc' in k or '.attn.dep_conv' in k or '.attn.rate' in k) for k in missing)


@pytest.mark.parametrize('train', [False, True])
def test_san_rates_1_0_give_the_san_output(train):
    torch.manual_seed(0)
    base, acmix = SAN(attn_type='patchwise', **SAN_KW), ACmixSAN(**SAN_KW)
    _load_base(acmix, base)
    _set_rates(acmix, 1.0, 0.0)
    base.train(train), acmix.train(train)
    x = torch.randn(2, 3, 128, 128)
    with torch.enable_grad():  # eval: the layer-by-layer path in both (SAN's fused eval path rounds differently)
        assert torch.equal(acmix(x), base(x))


def test_pvt_rates_1_0_give_the_pvt_output():
    torch.manual_seed(0)
    base, acmix = PyramidVisionTransformer(**PVT_KW).eval(), ACmixPvt(conv_stages=(True,) * 4, **PVT_KW).eval()
    _load_base(acmix, base)
    _set_rates(acmix, 1.0, 0.0)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(acmix(x), base(x))


def _conv_path_reference(maps, rel, fc_weight, dep_weight, kernel):
    """Official ACmix conv path, unfused (float64): maps (B, m, rel, H, W) -> fc per channel -> dep_conv."""
    maps, fc_weight, dep_weight = maps.double(), fc_weight.double(), dep_weight.double()
    b, m, _, h, w = maps.shape
    kk = kernel * kernel
    f = F.conv2d(maps.transpose(1, 2).reshape(b * rel, m, h, w), fc_weight)  # fc: m -> k*k, per channel
    f = f.view(b, rel * kk, h, w)  # channel c * kk + i (official)
    return F.conv2d(f, dep_weight, padding=kernel // 2, groups=rel)


@pytest.mark.parametrize('conv_inputs', ['phi_psi_beta', 'beta'])
def test_san_attention_against_reference(conv_inputs):
    torch.manual_seed(1)
    m = PatchwiseSelfAttentionACmix(32, 4, 16, share_planes=4, kernel_size=3, conv_inputs=conv_inputs).eval()
    with torch.no_grad():
        m.rate1.fill_(0.7)
        m.rate2.fill_(-1.3)
        m.dep_conv.weight.normal_()
    x = torch.randn(2, 32, 9, 11)
    with torch.no_grad():
        x1, x2, v = m.phi(x), m.psi(x), m.beta(x)
        maps = [x1, x2, v] if conv_inputs == 'phi_psi_beta' else [v]
        maps = torch.cat(maps, 1).view(2, -1, 4, 9, 11)
        conv = _conv_path_reference(maps, 4, m.fc.weight, m.dep_conv.weight, 3)
        att = m.aggregate(v, m._weights(x1, x2, False)).double()
        assert torch.allclose(m(x).double(), 0.7 * att - 1.3 * conv, atol=1e-4)


@pytest.mark.parametrize('conv_inputs', ['q', 'qkv'])
@pytest.mark.parametrize('sr_ratio,prefix', [(2, 0), (1, 1)])  # a class token (sr 1 only): no conv-path output
def test_pvt_attention_against_reference(conv_inputs, sr_ratio, prefix):
    torch.manual_seed(2)
    m = SpatialReductionAttentionACmix(40, 5, sr_ratio=sr_ratio, conv_inputs=conv_inputs).eval()
    with torch.no_grad():
        m.rate1.fill_(0.7)
        m.rate2.fill_(-1.3)
        m.dep_conv.weight.normal_()
    h, w = 6, 5
    x = torch.randn(2, prefix + h * w, 40)
    with torch.no_grad():
        att = SpatialReductionAttention.forward(m, x, h, w).double()  # the base module on the same weights
        q = m.q(x)[:, prefix:]
        maps = torch.cat([q, m.kv(x[:, prefix:])], -1) if conv_inputs == 'qkv' else q
        maps = maps.view(2, h, w, -1, 8).permute(0, 3, 4, 1, 2)  # (B, m, d, H, W)
        conv = _conv_path_reference(maps, 8, m.fc.weight, m.dep_conv.weight, 3).flatten(2).transpose(1, 2)
        conv = torch.cat([conv.new_zeros(2, prefix, 40), conv], 1)
        assert torch.allclose(m(x, h, w).double(), 0.7 * att - 1.3 * conv, atol=1e-4)


def _small(name):
    if 'san' in name:
        return ACmixSAN(**SAN_KW), 128
    return ACmixPvt(**PVT_KW), 64


@pytest.mark.parametrize('name', ['san', 'pvt'])
@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_finite(name, dtype):
    torch.manual_seed(3)
    model, side = _small(name)
    model.eval()
    x = torch.randn(2, 3, side, side)
    with torch.no_grad(), torch.autocast('cpu', dtype=dtype):
        y = model(x)
    assert y.shape == (2, 7) and torch.isfinite(y).all()


@pytest.mark.parametrize('name,size', [('san', (131, 145)), ('pvt', (67, 99))])
def test_odd_sizes(name, size):
    model, _ = _small(name)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 7)


def test_bad_inputs_raise():
    san, _ = _small('san')
    pvt, _ = _small('pvt')
    for model, small in ((san, 64), (pvt, 16)):
        with pytest.raises(ValueError, match='input channels'):
            model(torch.randn(1, 4, 128, 128))
        with pytest.raises(ValueError, match='at least'):
            model(torch.randn(1, 3, small, small))
        with pytest.raises(ValueError, match=r'\(N, C, H, W\)'):
            model(torch.randn(3, 128, 128))
    with pytest.raises(ValueError, match='conv_inputs'):
        ACmixSAN(conv_inputs='q', **SAN_KW)
    with pytest.raises(ValueError, match='conv_inputs'):
        ACmixPvt(conv_inputs='beta', **PVT_KW)
    with pytest.raises(ValueError, match='patchwise'):
        ACmixSAN(attn_type='pairwise', **SAN_KW)
    with pytest.raises(ValueError, match='conv_stages'):
        ACmixPvt(conv_stages=(True,), **PVT_KW)
    with pytest.raises(ValueError, match='kernel_conv'):
        SpatialReductionAttentionACmix(16, 2, kernel_conv=2)


@pytest.mark.parametrize('name', ['san', 'pvt'])
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(4)
    model, side = _small(name)
    if name == 'pvt':
        # the patch tokens' mean: with the class token the last block's patch outputs would not reach the loss
        model = ACmixPvt(conv_stages=(True,) * 4, conv_inputs='qkv', global_pool='avg', **PVT_KW)
    model.train()
    model(torch.randn(2, 3, side, side)).logsumexp(-1).sum().backward()
    for n, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
        if any(s in n for s in ('.fc.', 'dep_conv', 'rate1', 'rate2')):
            assert p.grad.abs().sum() > 0, n


@pytest.mark.parametrize('name,side,chs', [
    ('acmix_san10', 128, [64, 256, 512, 1024, 2048]),
    ('acmix_pvt_tiny', 64, [64, 128, 320, 512]),
])
def test_features_only(name, side, chs):
    model = timm.create_model(name, features_only=True).eval()
    assert model.feature_info.channels() == chs
    with torch.no_grad():
        feats = model(torch.randn(1, 3, side, side))
    assert [f.shape[1] for f in feats] == chs
    assert [f.shape[-1] for f in feats] == [side // r for r in model.feature_info.reduction()]


def test_default_pvt_has_conv_path_in_reduced_stages_only():
    model = timm.create_model('acmix_pvt_tiny', device='meta')
    kinds = [type(s.blocks[0].attn).__name__ for s in model.stages]
    assert kinds == ['SpatialReductionAttentionACmix'] * 3 + ['SpatialReductionAttention']


@pytest.mark.parametrize('name', ['acmix_pvt_tiny', 'acmix_pvt_small'])
def test_pvt_timm_non_standard_cfg_contract(name):
    """PVT's class token: the conformance run deselects timm's test_model_default_cfgs (tests/test_pvt.py)."""
    from test_pvt import test_timm_non_standard_cfg_contract as pvt_contract
    pvt_contract(name)
