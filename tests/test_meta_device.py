"""Every plugin model on the meta device: built under ``with torch.device('meta')`` (timm's test suite and
the FSDP / large-checkpoint recipe), materialised with ``to_empty`` + ``load_state_dict`` +
``reinit_non_persistent_buffers``, and counted by ``timm_attn.flops`` with the same GMACs as on the CPU."""
import pytest
import torch

import timm
from timm_attn.flops import count_gmacs
from timm_attn.models import plugin_models, reinit_non_persistent_buffers

LARGE = ('coatnet_4', 'coatnet_5', 'coatnet_6', 'coatnet_7')  # 275M-2.4B parameters
MODELS = [n for n in plugin_models() if n not in LARGE]
# one model per family (and per model file) in the default run; the slow run counts all of them
GMACS_DEFAULT = ('san10_pairwise', 'san10_patchwise', 'acmix_resnet26', 'acmix_swin_tiny_patch4_window7_224',
                 'gsa_resnet26', 'gsa_resnet26_cifar', 'coatnet_0', 'resattnet56', 'cbam_resnet50', 'cc_resnet50',
                 'pvt_tiny')


def _small(name):
    """(create_model kwargs, input side): the smallest input each family takes, to keep the runs short."""
    if name.startswith(('san', 'acmix_san')):
        return {}, 128  # reflection padding of the last stage
    if 'swin' in name:
        return {}, 224  # Swin checks its input against img_size
    if name.startswith('coatnet'):
        return dict(img_size=64), 64  # relative-bias tables are built for img_size
    return {}, 64


def _poison(model):
    """What ``to_empty`` may leave: NaN in every floating tensor, out-of-range values in integer ones (fixed
    values, where uninitialised memory would make the test pass or fail by chance)."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            t.fill_(float('nan') if t.is_floating_point() else True if t.dtype == torch.bool else 2 ** 30)


def _from_meta(name, state_dict, **kwargs):
    with torch.device('meta'):
        model = timm.create_model(name, **kwargs)
    assert all(t.is_meta for t in model.state_dict().values())
    model = model.to_empty(device='cpu')
    _poison(model)
    model.load_state_dict(state_dict)
    reinit_non_persistent_buffers(model)
    return model.eval()


@pytest.mark.parametrize('name', MODELS)
def test_meta_init_to_empty_reproduces_the_model(name):
    kwargs, size = _small(name)
    torch.manual_seed(0)
    ref = timm.create_model(name, **kwargs).eval()
    model = _from_meta(name, ref.state_dict(), **kwargs)
    # non-persistent buffers (index tables, DCT bases, Swin's masks) are back, not only the saved ones
    ref_buffers = dict(ref.named_buffers())
    for key, buf in model.named_buffers():
        assert torch.equal(buf, ref_buffers[key]), key
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))


def test_without_reinit_the_non_persistent_buffers_stay_garbage():
    """The test above is able to fail: a model whose index buffer is not rebuilt does not compute."""
    torch.manual_seed(0)
    ref = timm.create_model('coatnet_0', img_size=64).eval()
    with torch.device('meta'):
        model = timm.create_model('coatnet_0', img_size=64)
    model = model.to_empty(device='cpu')
    _poison(model)
    model.load_state_dict(ref.state_dict())
    with pytest.raises((RuntimeError, IndexError)):
        model.eval()(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=() if n in GMACS_DEFAULT else pytest.mark.slow) for n in plugin_models()
    if n not in LARGE])
def test_gmacs_same_on_cpu_and_meta(name):
    """One count whatever kernels the device picks: the CPU's fused attention, the meta device's math path
    and the plugin's CPU-only inference paths all give the same multiply-adds."""
    kwargs, size = _small(name)
    cpu = count_gmacs(timm.create_model(name, **kwargs), size)
    meta = count_gmacs(timm.create_model(name, device='meta', **kwargs), size)
    assert cpu > 0 and cpu == meta


@pytest.mark.slow
# CI: CoAtNet-4 and 5 (the same code as 6 and 7, in a third of the time)
@pytest.mark.parametrize('name', [n if n in ('coatnet_4', 'coatnet_5') else
                                  pytest.param(n, marks=pytest.mark.exhaustive) for n in LARGE])
def test_meta_init_large_coatnet(name, tmp_path):
    """CoAtNet-4..7 (up to 2.4B parameters, 10 GB in fp32): the reference model's state dict goes through a
    file, memory-mapped back, so the two models are never in memory together; the GMACs on the CPU equal
    the meta device's."""
    kwargs, size = _small(name)
    torch.manual_seed(0)
    ref = timm.create_model(name, **kwargs).eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected = ref(x)
    torch.save(ref.state_dict(), tmp_path / 'sd.pth')
    del ref
    state_dict = torch.load(tmp_path / 'sd.pth', mmap=True, weights_only=True)
    model = _from_meta(name, state_dict, **kwargs)
    del state_dict
    with torch.no_grad():
        assert torch.equal(model(x), expected)
    assert count_gmacs(model, size) == count_gmacs(timm.create_model(name, device='meta', **kwargs), size)
