"""Constructor options of the CBAM / BAM gates from the official code (Jongchan/attention-module): CBAM's
channel pools (``pool_types``: avg, max, lp, lse) and BAM's depths (``num_layers`` of the channel MLP,
``num_dilated`` dilated convs of the spatial branch), against the official formulas (tests/reference_spa.py);
the defaults keep the registered models' parameters."""
import math
import re

import pytest
import torch

import timm
import timm_attn  # noqa: F401
from timm_attn.layers.gates.bam import BAM
from timm_attn.layers.gates.cbam import CBAM, CbamChannelGate

from reference_spa import OfficialCbamChannelGate, official_channel_pool
from reference_zoo_official import OfficialBAM
from reference_zoo_official import randomize


# ---- CBAM pool types ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('pool_types', [('avg', 'max'), ('lp',), ('lse',), ('avg', 'max', 'lp', 'lse'), ('lse', 'lp')])
@pytest.mark.parametrize('size', [(1, 1), (5, 7)])
def test_cbam_channel_pools_match_official(pool_types, size):
    c = 32
    torch.manual_seed(0)
    ref = OfficialCbamChannelGate(c, pool_types)
    ours = CbamChannelGate(c, pool_types=pool_types)
    ours.load_state_dict({'fc1.weight': ref.mlp[1].weight, 'fc1.bias': ref.mlp[1].bias,
                          'fc2.weight': ref.mlp[3].weight, 'fc2.bias': ref.mlp[3].bias})
    x = torch.randn(2, c, *size) * 3
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    for kind in pool_types:  # each pool alone, against the official op
        torch.testing.assert_close(CbamChannelGate._pool(x, kind), official_channel_pool(x, kind).flatten(1),
                                   rtol=1e-5, atol=1e-5)


def test_cbam_pool_values():
    x = torch.tensor([[[[3., -4.], [0., 0.]]]])  # one channel: L2 norm 5, logsumexp log(e^3 + e^-4 + 2)
    assert CbamChannelGate._pool(x, 'lp').item() == pytest.approx(5.)
    assert CbamChannelGate._pool(x, 'lse').item() == pytest.approx(math.log(math.exp(3) + math.exp(-4) + 2))
    x = torch.zeros(1, 2, 3, 3, requires_grad=True)  # lp at an all-zero map: a finite gradient
    CbamChannelGate._pool(x, 'lp').sum().backward()
    assert torch.isfinite(x.grad).all()


def test_cbam_default_pools_unchanged():
    assert CBAM(32).channel.pool_types == ['avg', 'max']
    assert CBAM(32, pool_types=('lse',)).channel.pool_types == ['lse']
    model = timm.create_model('cbam_resnet50', device='meta')
    assert model.layer1[0].se.channel.pool_types == ['avg', 'max']
    assert sum(p.numel() for p in model.parameters()) == 28_089_624
    # the pools have no parameters: every choice keeps the layout
    assert CBAM(64, pool_types=('avg', 'max', 'lp', 'lse')).state_dict().keys() == CBAM(64).state_dict().keys()


@pytest.mark.parametrize('pool_types', [('avg', 'median'), (), 'avg', ('LP',)])
def test_cbam_unknown_pool_type_raises(pool_types):
    with pytest.raises(ValueError, match='pool_types'):
        CBAM(32, pool_types=pool_types)


def test_cbam_pools_torchscript():
    m = CBAM(32, pool_types=('avg', 'max', 'lp', 'lse')).eval()
    x = torch.randn(2, 32, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(m)(x), m(x))


# ---- BAM depths --------------------------------------------------------------------------------------------

def _bam_keys(state, num_dilated):
    """Official BAM keys -> ours (the hidden layers past the first: ``channel_hidden``)."""
    def rename(k):
        k = re.sub(r'^channel_att\.gate_c\.gate_c_fc_0\.', 'channel_fc1.', k)
        k = re.sub(r'^channel_att\.gate_c\.gate_c_bn_1\.', 'channel_norm.', k)
        k = re.sub(r'^channel_att\.gate_c\.gate_c_fc_final\.', 'channel_fc2.', k)
        k = re.sub(r'^channel_att\.gate_c\.gate_c_fc_(\d+)\.', lambda m: f'channel_hidden.{3 * (int(m[1]) - 1)}.', k)
        k = re.sub(r'^channel_att\.gate_c\.gate_c_bn_(\d+)\.',
                   lambda m: f'channel_hidden.{3 * (int(m[1]) - 2) + 1}.', k)
        k = re.sub(r'^spatial_att\.gate_s\.gate_s_(conv|bn)_reduce0\.', lambda m: f'spatial.{int(m[1] == "bn")}.', k)
        k = re.sub(r'^spatial_att\.gate_s\.gate_s_(conv|bn)_di_(\d+)\.',
                   lambda m: f'spatial.{3 + 3 * int(m[2]) + int(m[1] == "bn")}.', k)
        return re.sub(r'^spatial_att\.gate_s\.gate_s_conv_final\.', f'spatial.{3 + 3 * num_dilated}.', k)
    return {rename(k): v for k, v in state.items()}


@pytest.mark.parametrize('num_layers,num_dilated', [(1, 2), (2, 2), (3, 1), (1, 0), (2, 3)])
def test_bam_depths_match_official(num_layers, num_dilated):
    c = 64
    ref = randomize(OfficialBAM(c, num_layers, num_dilated))
    ours = BAM(c, num_layers=num_layers, num_dilated=num_dilated, combine='product').eval()  # official product
    ours.load_state_dict(_bam_keys(ref.state_dict(), num_dilated))  # strict
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    x = torch.randn(2, c, 9, 9, generator=torch.Generator().manual_seed(0))  # square: the official channel pool
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_bam_depth_parameter_counts():
    c, rd = 256, 16
    base = sum(p.numel() for p in BAM(c).parameters())
    hidden = rd * rd + rd + 2 * rd  # Linear(rd, rd) + BatchNorm1d(rd)
    dilated = 9 * rd * rd + rd + 2 * rd  # 3x3 conv (bias) + BatchNorm2d
    assert sum(p.numel() for p in BAM(c, num_layers=3).parameters()) == base + 2 * hidden
    assert sum(p.numel() for p in BAM(c, num_dilated=3).parameters()) == base + dilated
    assert sum(p.numel() for p in BAM(c, num_dilated=0).parameters()) == base - 2 * dilated


def test_bam_defaults_unchanged():
    m = BAM(256)
    assert len(m.channel_hidden) == 0 and len(m.spatial) == 10
    assert not [k for k in m.state_dict() if k.startswith('channel_hidden')]
    for name in ('bam_resnet50', 'bam_resnet50.in1k'):
        model = timm.create_model(name, device='meta')
        assert sum(p.numel() for p in model.parameters()) == 25_915_099


@pytest.mark.parametrize('kwargs', [dict(num_layers=0), dict(num_dilated=-1)])
def test_bam_bad_depth_raises(kwargs):
    with pytest.raises(ValueError, match='num_layers'):
        BAM(64, **kwargs)


def test_bam_depths_torchscript():
    m = randomize(BAM(64, num_layers=2, num_dilated=1))
    x = torch.randn(2, 64, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(m)(x), m(x))
