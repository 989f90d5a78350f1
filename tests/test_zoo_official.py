"""Official checkpoints of the ResNet attention zoo (CBAM, BAM, ECA-Net50 / 101, FcaNet-50 / 101): random
weights in the official layout and wrapping (tests/reference_zoo_official.py, an independent
re-implementation of the official networks), loaded through timm (``pretrained_cfg_overlay=dict(file=...)``)
and scripts/convert_official.py, against the official forward; the tags build the official networks (BAM:
product of the branches)."""
import importlib.util
import os

import pytest
import torch

import timm
import timm_attn  # noqa: F401
from timm_attn.models import CheckpointMismatchError

from reference_zoo_official import official_network, randomize, save_official

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATOL = 1e-4
# CBAM / BAM: the official head is nn.AvgPool2d(7), so 224 inputs only; ECA: any size
# FcaNet: the DCT sizes are fixed (56 / 28 / 14 / 7), other inputs pooled to them as in the official code
SIZES = {'cbam_resnet50': 224, 'bam_resnet50': 224, 'eca_resnet50': 64, 'eca_resnet101': 64,
         'fca_resnet50': 64, 'fca_resnet101': 64}
MODELS = list(SIZES)


def _official(name, tmp_path):
    ref = randomize(official_network(name))
    path = os.path.join(tmp_path, f'{name}.pth.tar')
    save_official(ref, path)
    return ref, path


def _diff(model, ref, size):
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    assert theirs.abs().max() > 1e-2  # a meaningful comparison, not two vanishing outputs
    return (ours - theirs).abs().max().item()


@pytest.mark.parametrize('name', MODELS)
def test_official_checkpoint_loads_and_matches_reference(tmp_path, name):
    ref, path = _official(name, tmp_path)
    model = timm.create_model(f'{name}.in1k', pretrained=True, pretrained_cfg_overlay=dict(file=path)).eval()
    n_ours = sum(p.numel() for p in model.parameters())
    assert n_ours == sum(p.numel() for p in ref.parameters())
    if name.startswith('fca_'):  # the official DCT filter (dropped on load) is what our bases compute
        block = model.layer2[0].se
        filt = torch.einsum('fh,fw->fhw', block.basis_h, block.basis_w).repeat_interleave(512 // 16, 0)
        assert torch.allclose(filt, ref.layer2[0].att.dct_layer.weight, atol=1e-6)
    diff = _diff(model, ref, SIZES[name])
    print(f'{name}.in1k: {n_ours} params, max abs diff vs official reference {diff:.2e}')
    assert diff < ATOL


@pytest.mark.parametrize('name', ['cbam_resnet50', 'bam_resnet50', 'eca_resnet50', 'fca_resnet50'])
def test_convert_official_script_matches_reference(tmp_path, name):
    script = os.path.join(ROOT, 'scripts', 'convert_official.py')
    spec = importlib.util.spec_from_file_location('convert_official', script)
    convert_official = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert_official)
    ref, path = _official(name, tmp_path)
    out = os.path.join(tmp_path, 'hub', f'{name}.in1k')
    assert convert_official.main([name, path, '--out', out]) == 0
    assert 'license: mit' in open(os.path.join(out, 'README.md')).read()
    model = timm.create_model(f'{name}.in1k', pretrained=True, pretrained_cfg_overlay=dict(
        file=os.path.join(out, 'model.safetensors'))).eval()
    assert _diff(model, ref, SIZES[name]) < ATOL


def test_bam_tag_builds_the_official_product():
    plain, tagged = timm.create_model('bam_resnet50'), timm.create_model('bam_resnet50.in1k')
    assert plain.layer1[-1].combine == 'sum' and tagged.layer1[-1].combine == 'product'
    assert sum(p.numel() for p in tagged.parameters()) == 25_915_099 == sum(p.numel() for p in plain.parameters())
    ref = official_network('bam_resnet50')
    assert sum(p.numel() for p in ref.parameters()) == 25_915_099


def test_eca_kernel_sizes_are_the_official_ksize():
    for name, ksize in (('eca_resnet50', (3, 5, 5, 7)), ('eca_resnet101', (3, 3, 5, 7))):
        model = timm.create_model(name, device='meta')
        assert tuple(getattr(model, f'layer{i + 1}')[0].se.conv.kernel_size[0] for i in range(4)) == ksize


def test_checkpoint_of_another_network_is_refused(tmp_path):
    _, path = _official('eca_resnet50', tmp_path)
    with pytest.raises(CheckpointMismatchError, match='missing keys'):
        timm.create_model('cbam_resnet50.in1k', pretrained=True, pretrained_cfg_overlay=dict(file=path))


def test_gc_layernorm_has_the_official_eps():
    model = timm.create_model('gc_resnet50', device='meta')
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 16 and all(m.eps == 1e-5 for m in norms)  # official nn.LayerNorm([planes, 1, 1])
