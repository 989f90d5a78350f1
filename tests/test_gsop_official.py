"""GSoP against the official code (ZilinGao/Global-Second-order-Pooling-Convolutional-Networks): random weights
in the official layout (tests/reference_gsop.py, an independent re-implementation of the official networks) loaded
strictly into ``gsop_resnet50(last_stage_stride=1)`` (GSoP-Net1: stage 4 at stride 1) through
``checkpoint_filter_fn``, as the official ``main.py`` saves them and bare; every official attention mode
(``GSoPAttention(mode=...)``) and the GSoP-Net2 pooling (``SecondOrderPool``) against the official formulas; the
official GSoP-Net2 (``gsop2_resnet50``) loaded the same way."""
import os
from functools import partial

import pytest
import torch

import timm
import timm_attn  # noqa: F401
from timm_attn.layers.gates.gsop import GSOP_MODES, GSoPAttention, SecondOrderPool, newton_schulz_sqrtm
from timm_attn.models import CheckpointMismatchError
from timm_attn.models._checkpoint import map_official_resnet
from timm_attn.models.attention_resnet import _official_rules

from reference_gsop import Bottleneck, GSoPResNet, covpool, sqrtm, triuvec
from reference_zoo_official import randomize, save_official

ATOL = 1e-4
NET1_PARAMS = 28_285_224  # the official GSoP-Net1 ResNet-50 (reference built from the official layout)
NET2_PARAMS = 58_278_568  # the official GSoP-Net2: no GSoP block in stage 4, 2048 -> 256 reduction, fc 32896 -> 1000


def _x(size, n=1, seed=1):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _save(state, path, wrap):
    if wrap == 'official':  # main.py: {'state_dict': DataParallel keys, 'epoch', 'arch', 'best_prec1', 'optimizer'}
        save_official(state, path)
        return
    sd = state.state_dict()
    torch.save({f'module.{k}': v for k, v in sd.items()} if wrap == 'module' else sd, path)


@pytest.mark.parametrize('wrap', ['official', pytest.param('bare', marks=pytest.mark.slow),
                                  pytest.param('module', marks=pytest.mark.slow)])
def test_net1_official_checkpoint_loads_and_matches_reference(tmp_path, wrap):
    ref = randomize(GSoPResNet(att='1', gsop_mode=1))
    path = os.path.join(tmp_path, 'net-epoch-95.pth.tar')
    _save(ref, path, wrap)
    model = timm.create_model(
        'gsop_resnet50', pretrained=True, last_stage_stride=1, pretrained_cfg_overlay=dict(file=path)).eval()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters()) == NET1_PARAMS
    assert model.feature_info[-1]['reduction'] == 16
    x = _x(224)  # the official head is nn.AvgPool2d(14): 224 px only
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    assert theirs.abs().max() > 1e-2
    diff = (ours - theirs).abs().max().item()
    print(f'gsop_resnet50 stride-16 ({wrap}): {NET1_PARAMS} params, max abs diff vs official reference {diff:.2e}')
    assert diff < ATOL


def test_net2_official_checkpoint_loads_and_matches_reference(tmp_path):
    ref = randomize(GSoPResNet(att='1', gsop_mode=2))
    path = os.path.join(tmp_path, 'net-epoch-95.pth.tar')
    _save(ref, path, 'official')
    model = timm.create_model('gsop2_resnet50', pretrained=True, pretrained_cfg_overlay=dict(file=path)).eval()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters()) == NET2_PARAMS
    assert model.feature_info[-1]['reduction'] == 16 and model.layer4[-1].se is None
    assert [s[-1].se is not None for s in (model.layer1, model.layer2, model.layer3)] == [True] * 3
    x = _x(160, n=2)  # the second-order head pools any size
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
        features = model.forward_features(x)
    assert theirs.abs().max() > 1e-2
    diff = (ours - theirs).abs().max().item()
    print(f'gsop2_resnet50: {NET2_PARAMS} params, max abs diff vs official reference {diff:.2e}')
    assert diff < ATOL
    assert features.shape == (2, 2048, 10, 10) and model.num_features == 2048 and model.head_hidden_size == 32896


def test_net2_head_api():
    """timm's head contract: pre-logits are the 32,896 pooled features; reset_classifier keeps the trained
    pooling unless asked for another; global_pool='' gives the unpooled map."""
    model = timm.create_model('gsop2_resnet50', num_classes=7).eval()
    x = _x(64, n=2)
    with torch.no_grad():
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
        assert pre.shape == (2, 32896) and model(x).shape == (2, 7)
        pool = model.global_pool
        model.reset_classifier(3)
        assert model.global_pool is pool and model(x).shape == (2, 3) and model.fc.in_features == 32896
        model.reset_classifier(0)
        assert torch.equal(model(x), pre)
        model.reset_classifier(0, '')
        assert model(x).shape == (2, 2048, 4, 4) and model.head_hidden_size == 2048
        model.reset_classifier(5, 'isqrt')
        assert model(x).shape == (2, 5) and model.head_hidden_size == 32896
    assert timm.create_model('gsop2_resnet50', num_classes=0, global_pool='').eval()(x).shape == (2, 2048, 4, 4)
    # one training step: finite gradients everywhere, through the Newton-Schulz iterations
    model = timm.create_model('gsop2_resnet50', num_classes=4).train()
    model(x).logsumexp(1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize('mode', ['channel'] + [pytest.param(m, marks=pytest.mark.slow) for m in sorted(GSOP_MODES)
                                                 if m != 'channel'])
def test_every_official_mode_in_the_network(tmp_path, mode):
    """The official network with each ``--att_manner``, loaded strictly (the position / concat keys renamed too);
    the features compared at 112 px (the official head fixes 224, checked above for the default mode)."""
    ref = randomize(GSoPResNet(att=GSOP_MODES[mode], gsop_mode=1))
    path = os.path.join(tmp_path, 'ckpt.pth.tar')
    save_official(ref, path)
    model = timm.create_model('gsop_resnet50', pretrained=True, last_stage_stride=1, attn_layer=partial(
        GSoPAttention, mode=mode), pretrained_cfg_overlay=dict(file=path)).eval()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())
    x = _x(112)
    with torch.no_grad():
        ours, theirs = model.forward_features(x), ref.features(x)
    assert theirs.abs().max() > 1e-2
    assert (ours - theirs).abs().max().item() < ATOL


def _block_pair(mode, channels=256, seed=0):
    """A reference bottleneck's attention branch and GSoPAttention with the same (random) weights."""
    ref = randomize(Bottleneck(channels, channels // 4, attention=GSOP_MODES[mode]), seed)
    sd = {f'layer1.0.{k}': v for k, v in ref.state_dict().items()}
    sd = map_official_resnet(sd, _official_rules(None))
    att = {k[len('layer1.0.se.'):]: v for k, v in sd.items() if k.startswith('layer1.0.se.')}
    ours = GSoPAttention(channels, reduce_stride=2 if channels == 256 else 1, mode=mode).eval()
    ours.load_state_dict(att)  # strict: every key of the official branch, nothing else
    return ref, ours


@pytest.mark.parametrize('mode', sorted(GSOP_MODES))
@pytest.mark.parametrize('hw', [(1, 1), (5, 7), (14, 14), (20, 12)])
def test_modes_match_the_official_formula(mode, hw):
    ref, ours = _block_pair(mode)
    x = torch.randn(2, 256, *hw, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = ref.attend(x), ours(x)
    assert got.shape == x.shape
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_mode_parameter_counts():
    # channel: conv 256->128 (+b), 2 BN(128), row conv 128 -> 512 (kernel 128x1, groups 128, +b), conv 512 -> 256 (+b)
    channel = 256 * 128 + 128 + 2 * 256 + 512 * 128 + 512 + 512 * 256 + 256
    position = 256 * 128 + 128 + 256 + 128 + 256 * 64 + 256 + 256 * 64 + 64  # M = 64: BN(64), 64 -> 256 -> 64
    concat = 2 * (256 * 64 * 11 + 256) + 512  # 4 groups, kernel (11, 1) at C = 256
    expected = {'channel': channel, 'position': position, 'fusion_avg': channel + position,
                'fusion_max': channel + position, 'fusion_concat': channel + position + concat}
    for mode, n in expected.items():
        ref, ours = _block_pair(mode)
        assert sum(p.numel() for p in ours.parameters()) == n
    assert [m.kernel_size[0] for c in (512, 1024, 2048)
            for m in [GSoPAttention(c, mode='fusion_concat', device='meta').concat_conv1]] == [9, 7, 5]


def test_bad_options_raise():
    with pytest.raises(ValueError, match="unknown GSoP mode 'spatial'"):
        GSoPAttention(256, mode='spatial')
    with pytest.raises(ValueError, match='fusion_concat'):
        GSoPAttention(96, mode='fusion_concat')
    with pytest.raises(ValueError, match='pos_size'):
        GSoPAttention(256, mode='position', pos_size=0)
    with pytest.raises(ValueError, match='iterations'):
        SecondOrderPool(64, iterations=0)
    with pytest.raises(ValueError, match="global_pool must be 'isqrt'"):
        timm.create_model('gsop2_resnet50', global_pool='avg', device='meta')
    with pytest.raises(ValueError, match='needs num_classes=0'):
        timm.create_model('gsop2_resnet50', global_pool='', device='meta')
    with pytest.raises(ValueError, match='attn_stages must be stage indices'):
        timm.create_model('gsop_resnet50', attn_stages=(0, 4), device='meta')
    with pytest.raises(ValueError, match='last_stage_stride must be 1 or 2'):
        timm.create_model('gsop_resnet50', last_stage_stride=4, device='meta')
    with pytest.raises(ValueError, match='output_stride'):
        timm.create_model('gsop_resnet50', last_stage_stride=1, output_stride=16, device='meta')


def test_plain_model_keeps_timm_strides_and_the_official_stride_changes_no_parameter():
    plain = timm.create_model('gsop_resnet50', device='meta')
    official = timm.create_model('gsop_resnet50', last_stage_stride=1, device='meta')
    assert plain.layer4[0].conv2.stride == (2, 2) and official.layer4[0].conv2.stride == (1, 1)
    assert official.layer4[0].downsample[0].stride == (1, 1) and plain.feature_info[-1]['reduction'] == 32
    assert official.feature_info[-1]['reduction'] == 16
    assert sum(p.numel() for p in plain.parameters()) == NET1_PARAMS
    assert [k for k in plain.state_dict()] == [k for k in official.state_dict()]
    assert 'gsop_resnet50.in1k' not in timm.list_pretrained('gsop*')  # the official README links no file


def test_checkpoint_of_another_mode_is_refused(tmp_path):
    path = os.path.join(tmp_path, 'position.pth.tar')
    save_official(randomize(GSoPResNet(att='2')), path)
    with pytest.raises(CheckpointMismatchError, match='missing keys'):
        timm.create_model('gsop_resnet50', pretrained=True, last_stage_stride=1, pretrained_cfg_overlay=dict(file=path))


@pytest.mark.parametrize('iterations', [2, 3, 5])
def test_newton_schulz_is_the_official_sqrtm(iterations):
    x = torch.randn(2, 16, 40, generator=torch.Generator().manual_seed(0))
    cov = torch.bmm(x, x.transpose(1, 2)) / 40
    assert torch.allclose(newton_schulz_sqrtm(cov, iterations), sqrtm(cov, iterations), atol=1e-6)
    root = newton_schulz_sqrtm(cov.double(), 30)  # converges to the square root
    assert torch.allclose(root @ root, cov.double(), atol=1e-8)


def test_net2_pool_matches_the_official_head():
    ref = randomize(GSoPResNet(att='1', gsop_mode=2, num_classes=10))
    pool = SecondOrderPool(2048).eval()
    pool.load_state_dict({'reduce.weight': ref.layer_reduce.weight,
                          **{f'reduce_norm.{k}': v for k, v in ref.layer_reduce_bn.state_dict().items()}})
    x = torch.randn(2, 2048, 7, 5, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(ref.fc(pool(x)), ref.head(x), atol=1e-4)
        assert torch.allclose(pool(x), triuvec(sqrtm(covpool(torch.relu(ref.layer_reduce_bn(
            ref.layer_reduce(x)))), 3)).flatten(1), atol=1e-5)
        # a single position: zero covariance, zero features (the official code divides 0 by 0)
        assert torch.equal(pool(x[:, :, :1, :1]), torch.zeros(2, 32896))
    # the official GSoP-Net2 pooling: 2048 * 256 conv, BN(256), 32,896 features
    assert pool.num_features == 32896
    n_pool = sum(p.numel() for p in SecondOrderPool(2048, device='meta').parameters())
    assert n_pool == 2048 * 256 + 2 * 256
    official = GSoPResNet(att='1', gsop_mode=2)
    assert n_pool == sum(p.numel() for m in (official.layer_reduce, official.layer_reduce_bn) for p in m.parameters())
