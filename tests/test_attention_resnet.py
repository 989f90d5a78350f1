"""ResNet-50 attention variants and Residual Attention Networks: placement, parameter counts against the
papers, timm resnet50 weight compatibility, any input size, and the attention lookup by name."""
import pytest
import timm
import torch
from timm.layers import EcaModule, GlobalContext, NonLocalAttn, SelectiveKernel, SEModule
from timm.layers.cbam import CbamModule

from timm_attn.cards import model_stats
from timm_attn.layers.gates.bam import BAM
from timm_attn.layers.gates.cbam import CBAM
from timm_attn.layers.create_attn import ATTN_LAYERS, get_attn
from timm_attn.layers.gates.fca import MultiSpectralAttention
from timm_attn.layers.gates.gsop import GSoPAttention
from timm_attn.layers.gates.scse import SCSE

RESNET50_MODELS = ['ge_resnet50', 'spa_resnet50', 'cbam_resnet50', 'bam_resnet50', 'scse_resnet50', 'fca_resnet50',
                   'gsop_resnet50', 'eca_resnet50', 'gc_resnet50']
RESNET50_PARAMS = 25_557_032  # timm resnet50
# (stage channels, blocks) of ResNet-50
STAGES = [(256, 3), (512, 4), (1024, 6), (2048, 3)]


def _params(name, **kwargs):
    return sum(p.numel() for p in timm.create_model(name, device='meta', **kwargs).parameters())


def test_all_registered():
    names = timm.list_models(['*_resnet50', 'resattnet*'])
    for name in RESNET50_MODELS + ['resattnet56', 'resattnet92']:
        assert name in names
    assert not timm.list_pretrained('resattnet*')  # no weights claimed
    # weights claimed only where official checkpoints exist (tests/test_zoo_official.py)
    assert sorted(n for n in timm.list_pretrained('*_resnet*') if n.split('.')[0] in RESNET50_MODELS + [
        'eca_resnet101', 'fca_resnet101']) == ['bam_resnet50.in1k', 'cbam_resnet50.in1k', 'eca_resnet101.in1k',
                                               'eca_resnet50.in1k', 'fca_resnet101.in1k', 'fca_resnet50.in1k']


# ------------------------------------------------------------------------------ params against the papers

def test_cbam_params_match_paper():
    # CBAM paper Table 4: ResNet50 + CBAM 28.09M; per block 2*C*C/16 + C/16 + C (MLP) + 7*7*2 + 2 (conv, BN)
    added = sum(n * (2 * c * c // 16 + c // 16 + c + 98 + 2) for c, n in STAGES)
    assert _params('cbam_resnet50') == RESNET50_PARAMS + added
    assert round((RESNET50_PARAMS + added) / 1e6, 2) == 28.09


def test_bam_params_match_paper():
    # BAM paper Table: ResNet50 + BAM 25.92M (three modules, at 256, 512, 1024 channels)
    def bam(c, r=16):
        rd = c // r
        channel = c * rd + rd + 2 * rd + rd * c + c
        spatial = c * rd + rd + 2 * rd + 2 * (9 * rd * rd + rd + 2 * rd) + rd + 1
        return channel + spatial
    assert _params('bam_resnet50') == RESNET50_PARAMS + bam(256) + bam(512) + bam(1024)
    assert round(_params('bam_resnet50') / 1e6, 2) == 25.92


def test_fca_params_equal_senet50():
    # FcaNet paper Table: FcaNet-50 has SENet-50's parameters (28.07M); its FCs have no bias, timm's SE does
    se_biases = sum(n * (c + c // 16) for c, n in STAGES)
    assert _params('fca_resnet50') == _params('seresnet50') - se_biases
    assert round(_params('fca_resnet50') / 1e6, 2) == 28.07


def test_eca_params():
    # ECA's 1D conv has k weights; the official ECA-Net50 uses k = 3, 5, 5, 7 per stage (--ksize 3557):
    # +80 in all, the paper's figure (the adaptive rule alone would give 5, 5, 5, 7: +86)
    added = sum(n * k for (c, n), k in zip(STAGES, (3, 5, 5, 7)))
    assert added == 80
    assert _params('eca_resnet50') == RESNET50_PARAMS + added


def test_ge_theta_plus_params():
    # global GE-theta-plus: C*H*W depth-wise kernel + BN + SE MLP per block (paper: 33.7M with GE-theta-plus)
    size = {256: 56, 512: 28, 1024: 14, 2048: 7}
    added = sum(n * (c * size[c] ** 2 + 2 * c + 2 * c * (c // 16) + c // 16 + c) for c, n in STAGES)
    assert _params('ge_resnet50') == RESNET50_PARAMS + added
    assert round(_params('ge_resnet50') / 1e6, 1) == 33.6


def test_gsop_only_in_last_block_of_each_stage():
    model = timm.create_model('gsop_resnet50', device='meta')
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        assert [type(b.se) for b in stage] == [type(None)] * (len(stage) - 1) + [GSoPAttention]
    assert model.layer1[-1].se.reduce.stride == (2, 2) and model.layer2[-1].se.reduce.stride == (1, 1)
    d = 128
    per_block = {c: c * d + d + 4 * d + (4 * d * d + 4 * d) + (4 * d * c + c) for c, _ in STAGES}
    assert _params('gsop_resnet50') == RESNET50_PARAMS + sum(per_block.values())


def test_bam_at_stage_boundaries():
    model = timm.create_model('bam_resnet50', device='meta')
    assert isinstance(model.layer1[3], BAM) and isinstance(model.layer2[4], BAM) and isinstance(model.layer3[6], BAM)
    assert not any(isinstance(m, BAM) for m in model.layer4.modules())
    assert all(b.se is None for s in (model.layer1, model.layer2, model.layer3, model.layer4) for b in s
               if hasattr(b, 'se'))


@pytest.mark.parametrize('name,cls', [('cbam_resnet50', CBAM), ('scse_resnet50', SCSE),
                                      ('fca_resnet50', MultiSpectralAttention), ('eca_resnet50', EcaModule),
                                      ('gc_resnet50', GlobalContext)])
def test_per_block_placement(name, cls):
    model = timm.create_model(name, device='meta')
    blocks = [b for s in (model.layer1, model.layer2, model.layer3, model.layer4) for b in s]
    assert len(blocks) == 16 and all(isinstance(b.se, cls) for b in blocks)


def test_fca_dct_size_follows_stage():
    model = timm.create_model('fca_resnet50', device='meta')
    assert [s[0].se.dct_size for s in (model.layer1, model.layer2, model.layer3, model.layer4)] == \
        [(56, 56), (28, 28), (14, 14), (7, 7)]


def test_resattnet_params_and_macs_vs_paper():
    s56 = model_stats('resattnet56', (3, 224, 224))
    s92 = model_stats('resattnet92', (3, 224, 224))
    # paper Table: Attention-56 31.9M params, 6.2 GFLOPs; Attention-92 51.3M, 10.4 GFLOPs
    assert s56['params_m'] == pytest.approx(31.9, rel=0.005)
    assert s56['gmacs'] == pytest.approx(6.2, rel=0.02)
    assert s92['gmacs'] == pytest.approx(10.4, rel=0.02)
    # this layout (the PyTorch port's) has 52.47M for Attention-92, 2.3% over the paper's table (documented)
    assert s92['params_m'] == pytest.approx(52.47, abs=0.01)


# ---------------------------------------------------------------------------- timm resnet50 weights load

@pytest.mark.filterwarnings('ignore:.*copying from a non-meta parameter')
@pytest.mark.parametrize('name', RESNET50_MODELS)
def test_timm_resnet50_weights_load(name):
    state = timm.create_model('resnet50', device='meta').state_dict()
    model = timm.create_model(name, device='meta')
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected
    assert missing
    if name == 'bam_resnet50':
        assert all(k.startswith(('layer1.3.', 'layer2.4.', 'layer3.6.')) for k in missing), missing
    else:
        assert all('.se.' in k for k in missing), missing
    # BatchNorm tolerates a missing num_batches_tracked (it keeps its own): not reported as missing
    attn_keys = {k for k in model.state_dict() if k not in state and not k.endswith('num_batches_tracked')}
    assert set(missing) == attn_keys


def test_resnet50_weights_through_timms_pretrained_path(tmp_path):
    """What docs/zoo.md tells users: timm's resnet50 weights as the pretrained file, pretrained_strict=False."""
    from safetensors.torch import save_file
    torch.manual_seed(0)
    resnet = timm.create_model('resnet50')
    save_file(resnet.state_dict(), str(tmp_path / 'resnet50.safetensors'))
    model = timm.create_model('cbam_resnet50', pretrained=True, pretrained_strict=False,
                              pretrained_cfg_overlay=dict(file=str(tmp_path / 'resnet50.safetensors')))
    assert torch.equal(model.layer4[2].conv3.weight, resnet.layer4[2].conv3.weight)
    assert torch.equal(model.fc.weight, resnet.fc.weight)


def test_timm_seresnet50_is_the_same_backbone_with_se():
    """timm's seresnet50 is exactly ResNet-50 + SE after the last BN: the comparison baseline for SE."""
    model = timm.create_model('seresnet50', device='meta')
    assert all(isinstance(b.se, SEModule) for s in (model.layer1, model.layer4) for b in s)
    state = timm.create_model('resnet50', device='meta').state_dict()
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all('.se.' in k for k in missing)


# ---------------------------------------------------------------------------------------------- forward

@pytest.mark.parametrize('name', ['bam_resnet50', 'gsop_resnet50', 'gsop2_resnet50',
                                  pytest.param('fca_resnet50', marks=pytest.mark.slow),
                                  pytest.param('ge_resnet50', marks=pytest.mark.slow)])
def test_forward_any_size(name):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10).eval()
    with torch.no_grad():
        for size in [(32, 32), (40, 72), (16, 16)]:  # 16 px: a single position in stage 4 of gsop2 (stride 16)
            y = model(torch.randn(2, 3, *size))
            assert y.shape == (2, 10) and torch.isfinite(y).all()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            y = model(torch.randn(2, 3, 40, 72))
        assert y.shape == (2, 10) and torch.isfinite(y).all()


@pytest.mark.slow  # timm-conformance's test_model_backward covers the default run
def test_train_step_small():
    torch.manual_seed(0)
    model = timm.create_model('cbam_resnet50', num_classes=5)
    y = model(torch.randn(2, 3, 32, 32))
    y.sum().backward()
    assert model.layer1[0].se.spatial.conv.weight.grad is not None


@pytest.mark.parametrize('name', ['resattnet56'])
def test_resattnet_any_size_and_features(name):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=7).eval()
    with torch.no_grad():
        for size in [(1, 1), (33, 71)]:
            y = model(torch.randn(1, 3, *size))
            assert y.shape == (1, 7) and torch.isfinite(y).all()
    feats = timm.create_model(name, features_only=True).eval()
    with torch.no_grad():
        outs = feats(torch.randn(1, 3, 32, 64))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]
    assert [tuple(o.shape[-2:]) for o in outs] == [(8, 16), (4, 8), (2, 4), (1, 2)]


def test_resattnet_module_counts():
    m56 = timm.create_model('resattnet56', device='meta')
    m92 = timm.create_model('resattnet92', device='meta')
    assert [len(s) - 1 for s in m56.stages[:3]] == [1, 1, 1]
    assert [len(s) - 1 for s in m92.stages[:3]] == [1, 2, 3]
    assert [m56.stages[i][1].mask.depth for i in range(3)] == [3, 2, 1]


# ------------------------------------------------------------------------------------------ name lookup

def test_get_attn_plugin_and_timm_names():
    for name, cls in ATTN_LAYERS.items():
        assert get_attn(name) is cls and get_attn(name.upper()) is cls
    assert get_attn('se') is SEModule and get_attn('eca') is EcaModule and get_attn('gc') is GlobalContext
    assert get_attn('sk') is SelectiveKernel and get_attn('nl') is NonLocalAttn
    assert get_attn('timm_cbam') is CbamModule and get_attn('cbam') is CBAM
    assert get_attn(CBAM) is CBAM and get_attn(None) is None and get_attn(False) is None
    with pytest.raises(ValueError, match='unknown attention layer'):
        get_attn('nope')


def test_model_kwargs_accept_names():
    model = timm.create_model('cbam_resnet50', attn_layer='scse', device='meta')
    assert isinstance(model.layer2[1].se, SCSE)
    model = timm.create_model('eca_resnet50', block_args=dict(attn_layer='fca'), device='meta')
    assert isinstance(model.layer3[0].se, MultiSpectralAttention)
    model = timm.create_model('bam_resnet50', attn_layer='se', device='meta')  # BAM + SE in every block
    assert isinstance(model.layer1[3], BAM) and isinstance(model.layer1[0].se, SEModule)
    with pytest.raises(ValueError, match='unknown attention layer'):
        timm.create_model('cbam_resnet50', attn_layer='nope', device='meta')


# ------------------------------------------------------------------ stage arguments from feature_info

def _resnet18(name, **kwargs):
    return timm.create_model(name, block=timm.models.resnet.BasicBlock, layers=(2, 2, 2, 2), device='meta', **kwargs)


def _stages(model):
    return (model.layer1, model.layer2, model.layer3, model.layer4)


def test_stage_arguments_follow_the_stage_not_the_width():
    """On ResNet-18 the stage widths are 64 / 128 / 256 / 512: a width-keyed table would give FcaNet's DCT
    56 / 28 / 56 / 28, GSoP stride 2 in stage 3 and ECA-Net50's kernels from the adaptive rule."""
    fca = _resnet18('fca_resnet50', attn_layer='fca')
    assert [b.se.dct_size for s in _stages(fca) for b in s] == [(56, 56)] * 2 + [(28, 28)] * 2 + [(14, 14)] * 2 + \
        [(7, 7)] * 2
    gsop = _resnet18('gsop_resnet50')
    assert [s[-1].se.reduce.stride for s in _stages(gsop)] == [(2, 2), (1, 1), (1, 1), (1, 1)]
    assert all(s[0].se is None for s in _stages(gsop))
    eca = _resnet18('eca_resnet50')
    assert [s[0].se.conv.kernel_size for s in _stages(eca)] == [(3,), (5,), (5,), (7,)]
    ge = _resnet18('ge_resnet50')
    assert [s[0].se.feat_size for s in _stages(ge)] == [(56, 56), (28, 28), (14, 14), (7, 7)]
    rga = _resnet18('rga_resnet50')
    assert [s[-1].spatial_size for s in _stages(rga)] == [(56, 56), (28, 28), (14, 14), (7, 7)]


def test_stage_arguments_follow_img_size_and_output_stride():
    fca = timm.create_model('fca_resnet50', img_size=256, output_stride=16, device='meta')
    assert [s[0].se.dct_size for s in _stages(fca)] == [(64, 64), (32, 32), (16, 16), (16, 16)]
    assert [info['reduction'] for info in fca.feature_info[1:]] == [4, 8, 16, 16]


def test_stage_arguments_bound_by_the_caller_are_kept():
    from functools import partial
    model = timm.create_model('cbam_resnet50', attn_layer=partial(MultiSpectralAttention, dct_size=7), device='meta')
    assert {b.se.dct_size for s in _stages(model) for b in s} == {(7, 7)}


def test_resnet50_stage_arguments_unchanged():
    eca = timm.create_model('eca_resnet50', device='meta')
    assert [[b.se.conv.kernel_size[0] for b in s] for s in _stages(eca)] == [[3] * 3, [5] * 4, [5] * 6, [7] * 3]
    ge = timm.create_model('ge_resnet50', device='meta')
    assert [s[0].se.feat_size for s in _stages(ge)] == [(56, 56), (28, 28), (14, 14), (7, 7)]


def test_one_placement_table():
    from timm_attn.card_data import attention_resnet as card
    from timm_attn.models.attention_resnet import ZOO_RESNET50, AttentionResNet, ContextResNet, SecondOrderResNet
    assert sorted(ZOO_RESNET50) == sorted(timm.list_models('*_resnet50', module='attention_resnet'))
    for name, place in ZOO_RESNET50.items():
        model = timm.create_model(name, device='meta')
        expected = SecondOrderResNet if name == 'gsop2_resnet50' else AttentionResNet
        assert type(model) is (ContextResNet if isinstance(place.where, dict) else expected)
        # the default cfg: the official weights' license where an official checkpoint exists (cards.py's rule)
        official = card.OFFICIAL_CODE.get(name)
        assert timm.models.get_pretrained_cfg(name).license == (official[1] if official else 'apache-2.0')
