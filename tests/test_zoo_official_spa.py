"""SPANet (ma-xu/SPANet): ``SpatialPyramidAttention`` against the official ``SPPSELayer``, and ``spa_resnet50``
loading checkpoints in the official layout (the official layer as ``se`` in a torchvision-style ResNet-50:
tests/reference_spa.py) strictly, bare, in 'state_dict' and 'module.' prefixed, against that network's
forward. The official repository released CIFAR-100 networks only (pre-activation ResNets): no ImageNet
checkpoint, so no ``.in1k`` tag; its SPPSEResNet50 checkpoint is refused with a message."""
import os

import pytest
import torch

import timm
import timm_attn  # noqa: F401
from timm_attn.card_data import attention_resnet as card
from timm_attn.layers.gates.spa import SpatialPyramidAttention
from timm_attn.models import CheckpointMismatchError
from timm_attn.models.attention_resnet import TAG_ARGS, checkpoint_filter_fn

from reference_spa import CifarSPPSEResNet50, OfficialSPA, save_cifar_official, spa_resnet50_official_layout
from reference_zoo_official import randomize

ATOL = 1e-4


@pytest.mark.parametrize('size', [(1, 1), (3, 5), (7, 7), (13, 9)])
def test_spa_layer_is_the_official_sppselayer(size):
    c = 64
    ref = randomize(OfficialSPA(c))
    ours = SpatialPyramidAttention(c).eval()
    ours.load_state_dict({'fc1.weight': ref.fc[0].weight, 'fc2.weight': ref.fc[2].weight})  # strict
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == 64 * 21 * 4 + 4 * 64
    x = torch.randn(2, c, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)


@pytest.fixture(scope='module')
def official():
    return randomize(spa_resnet50_official_layout())


def _wrapped(state, wrap):
    if wrap == 'bare':
        return dict(state)
    if wrap == 'state_dict':
        return {'state_dict': dict(state), 'epoch': 90}
    return {'state_dict': {f'module.{k}': v for k, v in state.items()}, 'epoch': 90}  # DataParallel


@pytest.mark.parametrize('wrap', ['bare', 'state_dict', 'module'])
def test_spa_resnet50_loads_official_layout_and_matches(tmp_path, official, wrap):
    path = os.path.join(tmp_path, 'spa_resnet50.pth.tar')
    torch.save(_wrapped(official.state_dict(), wrap), path)
    model = timm.create_model('spa_resnet50', pretrained=True, pretrained_cfg_overlay=dict(file=path)).eval()
    n_ours = sum(p.numel() for p in model.parameters())
    assert n_ours == sum(p.numel() for p in official.parameters()) == 53_221_416
    # strict: every key of the model, nothing else
    assert set(checkpoint_filter_fn(_wrapped(official.state_dict(), wrap), model)) == set(model.state_dict())
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))  # uneven 2x2 / 4x4 bins
    with torch.no_grad():
        ours, theirs = model(x), official(x)
    assert theirs.abs().max() > 1e-2
    diff = (ours - theirs).abs().max().item()
    print(f'spa_resnet50 ({wrap}): max abs diff vs official-layout reference {diff:.2e}')
    assert diff < ATOL


def test_spa_resnet50_own_layout_passes_through():
    model = timm.create_model('spa_resnet50', num_classes=10, img_size=64)
    state = model.state_dict()
    converted = checkpoint_filter_fn(state, model)
    assert converted.keys() == state.keys() and all(converted[k] is state[k] for k in state)


@pytest.mark.parametrize('published', [True, False])
def test_official_cifar_checkpoint_is_refused(tmp_path, published):
    ref = CifarSPPSEResNet50().eval()
    with torch.no_grad():
        assert ref(torch.randn(1, 3, 32, 32)).shape == (1, 100)  # the reference is the runnable CIFAR network
    path = os.path.join(tmp_path, 'ckpt_cifar_100_SPPSEResNet50.t7')
    if published:
        save_cifar_official(ref, path)  # {'net': {'module.*'}, 'acc', 'epoch'}
    else:
        torch.save(ref.state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match='does not fit'):
        timm.create_model('spa_resnet50', pretrained=True, pretrained_cfg_overlay=dict(file=path))


def test_no_imagenet_tag_without_an_official_imagenet_checkpoint():
    assert not [n for n in timm.list_pretrained('spa_resnet50*') if n != 'spa_resnet50']
    assert 'spa_resnet50' not in card.OFFICIAL_CODE and not [k for k in TAG_ARGS if k.startswith('spa_')]
    notes = timm.models.get_pretrained_cfg('spa_resnet50').notes
    assert any('no ImageNet checkpoint' in n for n in notes)
