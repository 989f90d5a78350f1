"""Every registered model against a committed manifest: state-dict keys and shapes, parameter count, and the
outputs (eval and train mode) for weights and input that depend only on the key names and a fixed seed.

The manifest pins what a refactoring must not change. The weights are not the models' own initialisation (which
depends on the order modules are built in): each tensor is filled from a generator seeded by the CRC-32 of its
key, so the same keys with the same shapes give the same model whatever the code's layout.

Regenerate (only for a deliberate change of keys or outputs): ``python tests/test_model_manifest.py --write``."""
import json
import math
import os
import sys
import zlib

import pytest
import torch

import timm
from timm_attn.models import plugin_models, reinit_non_persistent_buffers

MANIFEST = os.path.join(os.path.dirname(__file__), 'data', 'model_manifest.json')
LARGE = ('coatnet_4', 'coatnet_5', 'coatnet_6', 'coatnet_7')  # keys and shapes only (meta device)
RTOL, ATOL = 1e-4, 1e-4  # float64 sums over float32 outputs, whose kernels differ a little across torch releases


def _input_side(name):
    if name.startswith(('san', 'acmix_san')):
        return 128
    if 'swin' in name:
        return 224
    return 64


def _kwargs(name):
    return dict(img_size=64) if name.startswith('coatnet') else {}


def _fill(model):
    """Weights from the key names: fan-in scaled normals for matrices and kernels, running variances near
    one, and small values (0.15-0.35) for the scales of normalisation layers, so that the residual branches of
    deep networks stay finite in eval mode."""
    with torch.no_grad():
        for key, t in model.state_dict(keep_vars=True).items():
            if not t.is_floating_point():
                continue
            g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
            if t.dim() > 1:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) / math.sqrt(max(fan_in, 1)))
            elif key.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif key.endswith('weight') or key.endswith('gamma') and t.numel() > 1:
                t.copy_(torch.rand(t.shape, generator=g) * 0.2 + 0.15)
            else:
                t.copy_((torch.rand(t.shape, generator=g) - 0.5) * 0.2)


def _build(name):
    with torch.device('meta'):
        model = timm.create_model(name, **_kwargs(name))
    return model


def _train_without_randomness(model):
    """Training mode (batch statistics, recompute paths) with dropout / drop-path / drop-block off: their random
    streams differ across torch releases."""
    model.train()
    for m in model.modules():
        if 'Drop' in type(m).__name__:
            m.eval()
    return model


def _stats(y):
    y = y.detach().double().flatten()
    assert torch.isfinite(y).all()
    return dict(sum=y.sum().item(), abs=y.abs().sum().item(), sq=(y * y).sum().item(), head=y[:6].tolist())


def describe(name, outputs=True):
    model = _build(name)
    sd = model.state_dict()
    entry = dict(
        params=sum(p.numel() for p in model.parameters()),
        keys=[[k, list(v.shape), str(v.dtype).replace('torch.', '')] for k, v in sd.items()],
    )
    if outputs and name not in LARGE:
        model = model.to_empty(device='cpu')
        _fill(model)
        reinit_non_persistent_buffers(model)
        side = _input_side(name)
        x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            entry['eval'] = _stats(model.eval()(x))
            entry['train'] = _stats(_train_without_randomness(model)(x))
    return entry


def _manifest():
    with open(MANIFEST) as f:
        return json.load(f)


def test_manifest_covers_exactly_the_registered_models():
    assert sorted(_manifest()) == sorted(plugin_models())


@pytest.mark.parametrize('name', plugin_models())
def test_model_matches_manifest(name):
    torch.manual_seed(0)
    expected = _manifest()[name]
    got = describe(name)
    exp_keys = {k: (s, d) for k, s, d in expected['keys']}
    got_keys = {k: (s, d) for k, s, d in got['keys']}
    assert sorted(set(got_keys) - set(exp_keys)) == [], 'new keys'
    assert sorted(set(exp_keys) - set(got_keys)) == [], 'missing keys'
    assert [k for k, *_ in got['keys']] == [k for k, *_ in expected['keys']], 'key order'
    assert {k: v for k, v in got_keys.items() if v != exp_keys[k]} == {}, 'shapes / dtypes'
    assert got['params'] == expected['params']
    for mode in ('eval', 'train'):
        if mode in expected:
            for stat, value in expected[mode].items():
                assert got[mode][stat] == pytest.approx(value, rel=RTOL, abs=ATOL), (mode, stat)


if __name__ == '__main__' and '--write' in sys.argv:
    torch.set_num_threads(2)
    manifest = {}
    for n in plugin_models():
        torch.manual_seed(0)
        manifest[n] = describe(n)
        print(n, manifest[n]['params'], manifest[n].get('eval', {}).get('abs'), manifest[n].get('train', {}).get('abs'),
              flush=True)
    with open(MANIFEST, 'w') as f:
        json.dump(manifest, f, indent=0, sort_keys=True)
        f.write('\n')
