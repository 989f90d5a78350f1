"""ResNet-50 classifiers with context modules: timm's resnet50 weights load into each with only the
modules' keys missing, the modules start as the identity (same logits as resnet50), parameter counts
from the modules' formulas, and the OCR auxiliary region head."""
import pytest
import timm
import torch
from torch import nn

import timm_attn  # noqa: F401
from timm_attn.models.attention_resnet import ZOO_RESNET50, ContextResNet, ContextStage, FusionStage

MODELS = [name for name, place in ZOO_RESNET50.items() if isinstance(place.where, dict)]  # context modules
RESNET50_PARAMS = 25_557_032


def _nl(c):  # timm NonLocalAttn, inner C/2: t, p, g (with bias), z (with bias), BN
    r = c // 2
    return 3 * (c * r + r) + r * c + c + 2 * c


def _a2(c):  # A2, m = n = C/4: three projections, output conv, BN
    m = c // 4
    return 3 * (c * m + m) + m * c + c + 2 * c


def _pam(c):  # query / key C -> C/8, value C -> C (with bias), gamma
    return 2 * (c * (c // 8) + c // 8) + c * c + c + 1


def _apnb(c):  # key (+BN) and value C -> C/2, W C/2 -> C, all with bias
    h = c // 2
    return (c * h + h + 2 * h) + (c * h + h) + (h * c + c)


def _afnb(c, low, k=256, v=256):
    return (c * k + k + 2 * k) + (low * k + k + 2 * k) + (low * v + v) + (v * c + c)


def _ocr(c, regions, mid=512, key=256):
    aux = c * mid + 2 * mid + mid * regions + regions
    pixel = 9 * c * mid + 2 * mid
    f_pixel = f_object = mid * key + 2 * key + key * key + 2 * key
    f_down, f_up = mid * key + 2 * key, key * mid + 2 * mid
    fuse = 2 * mid * mid + 2 * mid
    return aux + pixel + f_pixel + f_object + f_down + f_up + fuse + mid * c + 2 * c


def _iau(c, parts=4):
    h = c // 2
    ciau = c * c + c + 2 * c
    siau = (c * parts + parts + 2 * parts) + (c * h + h) + (2 * h + 1 + 2) + (2 * h * h + h + 2 * h) \
        + (2 * h * c + c + 2 * c)
    return ciau + siau


def _rga(c, side):  # official RGA_Module(c, side * side) without biases, hidden width max(1, .)
    n = side * side
    ic, isp = c // 8, n // 8

    def cbr(i, o):  # 1x1 conv without bias + BN
        return i * o + 2 * o

    def w_net(i):
        return i * max(1, i // 8) + 2 * max(1, i // 8) + max(1, i // 8) + 2

    spatial = 3 * cbr(c, ic) + cbr(2 * n, isp) + w_net(1 + isp)
    channel = 3 * cbr(n, isp) + cbr(2 * c, ic) + w_net(1 + ic)
    return spatial + channel


EXTRA_PARAMS = {
    'nl_resnet50': 2 * _nl(512) + 3 * _nl(1024),
    'a2_resnet50': 2 * _a2(512) + 3 * _a2(1024),
    'da_resnet50': _pam(2048) + 1,
    'cc_resnet50': _pam(2048),
    'apnb_resnet50': _apnb(2048),
    'afnb_resnet50': _afnb(2048, 1024),
    'ocr_resnet50': _ocr(2048, 1000),
    'iau_resnet50': _iau(512) + _iau(1024),
    'rga_resnet50': _rga(256, 56) + _rga(512, 28) + _rga(1024, 14) + _rga(2048, 7),
}


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('name', MODELS)
def test_parameter_count(name):
    model = timm.create_model(name, device='meta')
    assert _count(model) == RESNET50_PARAMS + EXTRA_PARAMS[name]


@pytest.fixture(scope='module')
def resnet50():
    torch.manual_seed(0)
    model = timm.create_model('resnet50').eval()
    with torch.no_grad():  # non-trivial BN statistics, so that the comparison means something
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize('name', MODELS)
def test_resnet50_weights_load_with_only_module_keys_missing(name, resnet50):
    model = timm.create_model(name).eval()
    result = model.load_state_dict(resnet50.state_dict(), strict=False)
    assert result.unexpected_keys == []
    kind = name.split('_')[0]
    assert result.missing_keys and all(f'_{kind}.' in k for k in result.missing_keys), result.missing_keys[:5]
    # (BatchNorm fills a missing num_batches_tracked itself, without reporting it)
    new = {k for k in model.state_dict() if k not in resnet50.state_dict()}
    assert new - set(result.missing_keys) == {k for k in new if k.endswith('num_batches_tracked')}
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        y, y_ref = model(x), resnet50(x)
    assert y.shape == (2, 1000) and torch.isfinite(y).all()
    if kind != 'rga':  # every module but RGA's sigmoid gates starts as the identity
        assert (y - y_ref).abs().max() < 1e-4


def test_module_placement():
    model = timm.create_model('nl_resnet50', device='meta')
    names = [n for n, _ in model.named_children()]
    assert names[:4] == ['conv1', 'bn1', 'act1', 'maxpool']
    assert [n for n, _ in model.layer2.named_children()] == ['0', '1', '1_nl', '2', '3', '3_nl']
    assert [n for n, _ in model.layer3.named_children()] == ['0', '1', '1_nl', '2', '3', '3_nl', '4', '5', '5_nl']
    afnb = timm.create_model('afnb_resnet50', device='meta')
    assert [n for n, _ in afnb.layer4.named_children()] == ['0', '1', '2', '2_afnb']
    assert type(afnb.layer4) is FusionStage and type(afnb.layer3) is ContextStage
    rga = timm.create_model('rga_resnet50', device='meta')
    assert [getattr(rga, f'layer{i + 1}')[-1].spatial_size for i in range(4)] == [(56, 56), (28, 28), (14, 14), (7, 7)]


def test_afnb_fuses_layer3_into_layer4():
    torch.manual_seed(0)
    model = timm.create_model('afnb_resnet50', num_classes=10).eval()
    afnb = model.layer4[-1]
    nn.init.normal_(afnb.proj.weight, std=0.02)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        low = model.layer3(model.layer2(model.layer1(model.maxpool(model.act1(model.bn1(model.conv1(x)))))))
        high = low
        for blk in list(model.layer4)[:-1]:
            high = blk(high)
        expected = high + afnb.context(low, high)
        assert (model.forward_features(x) - expected).abs().max() < 1e-5


def test_ocr_regions_and_aux_logits():
    torch.manual_seed(0)
    model = timm.create_model('ocr_resnet50', num_classes=7).eval()
    assert model.layer4[-1].num_regions == 7
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, regions = model.forward_with_regions(x)
        assert torch.equal(logits, model(x))
    assert regions.shape == (2, 7, 2, 2)
    assert timm.create_model('ocr_resnet50', num_classes=7, ocr_regions=32, device='meta').layer4[-1].num_regions == 32
    with pytest.raises(ValueError, match='OCR'):
        timm.create_model('cc_resnet50', device='meta').forward_with_regions(torch.empty(1, 3, 64, 64, device='meta'))


@pytest.mark.parametrize('name', [
    'rga_resnet50',
    *[pytest.param(n, marks=pytest.mark.slow) for n in MODELS if n != 'rga_resnet50'],
])
def test_small_and_non_square_inputs_train_step(name):
    model = timm.create_model(name, num_classes=5).train()
    for size in [(32, 48)] if name == 'rga_resnet50' else [(32, 32), (64, 96)]:
        x = torch.randn(2, 3, *size)
        loss = model(x).logsumexp(-1).mean()
        loss.backward()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
        model.zero_grad()


def test_grad_checkpointing_and_intermediates_match():
    model = timm.create_model('afnb_resnet50', num_classes=0).eval()
    nn.init.normal_(model.layer4[-1].proj.weight, std=0.02)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out, inter = model.forward_intermediates(x)
        assert [t.shape[1] for t in inter] == [64, 256, 512, 1024, 2048]
        assert torch.equal(inter[-1], out)
        model.set_grad_checkpointing()
        assert (model.forward_features(x) - out).abs().max() < 1e-5


@pytest.mark.parametrize('name', MODELS)
def test_block_and_layers_overrides_build_and_run(name):
    # the modules' widths follow the model's feature_info (BasicBlock: 64..512 channels), not ResNet-50's
    model = timm.create_model(name, block=timm.models.resnet.BasicBlock, layers=(2, 2, 2, 2), num_classes=3).eval()
    stage_chs = [info['num_chs'] for info in model.feature_info[1:]]
    assert stage_chs == [64, 128, 256, 512]
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 3) and torch.isfinite(out).all()
        model.set_grad_checkpointing()
        assert (model(x) - out).abs().max() < 1e-5


def test_unknown_context_is_refused():
    with pytest.raises(ValueError, match='unknown context'):
        ContextResNet('xx', block=timm.models.resnet.Bottleneck, layers=(1, 1, 1, 1), device='meta')
