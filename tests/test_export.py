"""Export: ``torch.export.export`` and timm's own ``onnx_export.py`` (unchanged, from ``$TIMM_SCRIPTS``) for one
model of each family, and the export-only code paths against the eager ones.

timm's script builds the model with ``exportable=True`` and exports through ``torch.onnx.export``'s TorchScript
tracer, which can record neither a Python ``autograd.Function`` nor ``as_strided`` / ``Tensor.unfold``: under
``torch.jit.is_tracing()`` SAN's aggregation, the sliding-window attention and GSA's relative keys take plain-op
paths that compute the same values. The ONNX graph is then run by onnxruntime (an optional test dependency) and
compared with the eager model on the same input.
"""
import os

import pytest
import timm
import torch

import timm_attn  # noqa: F401
from timm_attn.layers.global_self_attention import relative_keys
from timm_attn.layers.san.aggregation import aggregate_neighbours
from timm_attn.layers.sliding_window_attention import sliding_window_attention_plain

from peer import SCRIPTS, run_peer_script, script

# (model, input size, kwargs): the smallest of each family at the smallest size it accepts
FAMILIES = [
    ('san10_patchwise', 128, {}),
    ('san10_pairwise', 128, {}),
    ('acmix_resnet26', 64, {}),
    ('acmix_swin_tiny_patch4_window7_224', 224, {}),
    ('gsa_resnet26', 64, {}),
    ('coatnet_0', 224, {}),
    ('resattnet56', 64, {}),
    ('cbam_resnet50', 64, {}),
    ('pvt_tiny', 224, {}),
    ('acmix_san10', 128, {}),
]
QUICK = ('san10_patchwise', 'gsa_resnet26')  # the default run; the rest behind the slow marker


def _params(names=None):
    return [pytest.param(*f, id=f[0], marks=() if f[0] in (names or QUICK) else pytest.mark.slow) for f in FAMILIES]


def _model(name, **kwargs):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10, **kwargs).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that folded eval paths are exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def test_traced_aggregation_equals_eager():
    torch.manual_seed(0)
    x, w = torch.randn(2, 8, 9, 10), torch.randn(2, 2, 9, 25)
    fn = lambda x, w: aggregate_neighbours(x, w, 3, 2, 1)  # noqa: E731
    traced = torch.jit.trace(fn, (x, w))
    torch.testing.assert_close(traced(x, w), fn(x, w), rtol=1e-6, atol=1e-6)


def test_traced_window_rows_equal_strided_views():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 5, 6), torch.randn(2, 4, 13, 15), torch.randn(2, 4, 13, 15)
    fn = lambda q, k, v: sliding_window_attention_plain(q, k, v, 5, 2)  # noqa: E731
    traced = torch.jit.trace(fn, (q, k, v))
    torch.testing.assert_close(traced(q, k, v), fn(q, k, v), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('shape,size,radius', [((7, 4), 5, 10), ((3, 7, 4), 6, 2), ((9, 4), 9, 3)])
def test_traced_relative_keys_equal_unfold(shape, size, radius):
    table = torch.randn(shape)
    fn = lambda t: relative_keys(t, size, radius)  # noqa: E731
    traced = torch.jit.trace(fn, (table,))
    torch.testing.assert_close(traced(table), fn(table), rtol=0, atol=0)


@pytest.mark.parametrize('name,size,kwargs', _params())
def test_torch_export_matches_eager(name, size, kwargs):
    model = _model(name, **kwargs)
    x = torch.randn(2, 3, size, size)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        expected = model(x)
    assert _rel_err(exported.module()(x), expected) < 1e-5


needs_onnx_export = pytest.mark.skipif(
    not SCRIPTS or not os.path.isfile(script('onnx_export.py')),
    reason="TIMM_SCRIPTS is not set (or has no onnx_export.py): timm's onnx_export.py is in timm's GitHub "
           "repository only; the README says how to get it")


@needs_onnx_export
@pytest.mark.parametrize('name,size,kwargs', _params(('san10_patchwise',)))
def test_timm_onnx_export_matches_eager(name, size, kwargs, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    model = _model(name, **kwargs)
    checkpoint = tmp_path / 'checkpoint.pth'
    torch.save(model.state_dict(), checkpoint)
    onnx_file = tmp_path / f'{name}.onnx'
    out = run_peer_script('onnx_export.py', [
        onnx_file, '--model', name, '--num-classes', 10, '--img-size', size, '--checkpoint', checkpoint],
        timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    x = torch.randn(2, 3, size, size)
    session = ort.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(torch.from_numpy(onnx_out), expected, rtol=1e-4, atol=1e-4)
