"""torch.compile: one graph per model (no graph breaks) in eval and in training, and compiled training equal to
eager: outputs, gradients and BatchNorm buffers after one step.

The eager fast paths that dynamo cannot capture in one graph (recomputation in backward through
``torch.utils.checkpoint`` with BatchNorm updates, ``out=`` writes into strided slices, ``as_strided`` views)
give way to plain ops while a graph is captured (``timm_attn.layers._ops.caching.is_capturing``).

Gradient comparison: the largest difference over the largest reference value of each parameter's gradient,
floored at 1e-6 of the model's largest gradient: a bias in front of a BatchNorm has a gradient that is zero up
to rounding, whose relative error means nothing.
"""
import copy
import os

import pytest
import timm
import torch
import torch._dynamo

import timm_attn  # noqa: F401

# (model, input side): the smallest model of each family at a small input it accepts
FAMILIES = {
    'san10_patchwise': 128,
    'san10_pairwise': 128,
    'acmix_resnet26': 64,
    'acmix_swin_tiny_patch4_window7_224': 224,
    'gsa_resnet26': 64,
    'coatnet_0': 224,
    'pvt_tiny': 64,
    'resattnet56': 64,
    'cbam_resnet50': 64,
    'da_resnet50': 64,
}
# the default run: the families whose eager paths differ most from plain ops; the rest behind the slow marker
QUICK_BREAKS = {('san10_pairwise', 'eval'), ('acmix_resnet26', 'eval'), ('gsa_resnet26', 'train')}


def _model(name, dtype=torch.float32):
    """The model with its BatchNorms' statistics and biases away from their initial values.

    Non-zero BN biases keep the comparisons away from ReLU's kink: with zero biases, the position channels of
    SAN pairwise's relation (p_i - p_j, whose batch mean is zero) give BN outputs of exactly zero up to rounding
    (|y| ~ 1e-17) at the centre offset, where the ReLU's derivative, hence gamma.norm1.bias's gradient, is decided
    by the rounding of the mean: any two correct implementations (eager, inductor) may differ there."""
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=5).to(dtype)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1)
    return model


# both modes where eager has its own eval and training paths; training (which runs the eval ops too) elsewhere
BOTH_MODES = ('san10_patchwise', 'san10_pairwise', 'acmix_resnet26', 'gsa_resnet26')


def _breaks_params():
    return [pytest.param(name, mode, id=f'{name}-{mode}',
                         marks=() if (name, mode) in QUICK_BREAKS else pytest.mark.slow)
            for name in FAMILIES for mode in ('eval', 'train') if mode == 'train' or name in BOTH_MODES]


@pytest.mark.parametrize('name,mode', _breaks_params())
def test_one_graph(name, mode):
    model = _model(name)
    model.train(mode == 'train')
    x = torch.randn(2, 3, FAMILIES[name], FAMILIES[name])

    def step(x):
        if mode == 'train':
            return model(x).square().mean()
        with torch.no_grad():
            return model(x)

    torch._dynamo.reset()
    explained = torch._dynamo.explain(step)(x)
    reasons = [b.reason.splitlines()[0] for b in explained.break_reasons]
    assert explained.graph_break_count == 0, reasons[:5]


def _train_step(model, x):
    out = model(x)
    out.square().mean().backward()
    return out.detach()


def _rel(a, b, floor=0.):
    return ((a - b).abs().max() / max(b.abs().max().item(), floor, 1e-300)).item()


def compare_compiled_training(name, dtype, backend, noise=False):
    """One training step, compiled and eager: (output difference, worst buffer difference, {parameter: (gradient
    difference, rounding noise)}), relative to eager. With ``noise``, a gradient's rounding noise is its largest
    difference from eager's in two eager steps that sum in other orders (on one thread, and on a channels_last
    input); else 0."""
    side = FAMILIES[name]
    eager = _model(name, dtype).train()
    compiled = copy.deepcopy(eager)
    x = torch.randn(2, 3, side, side, dtype=dtype, generator=torch.Generator().manual_seed(1))
    reordered = []
    if noise:
        one_thread, channels_last = copy.deepcopy(eager), copy.deepcopy(eager)
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            _train_step(one_thread, x)
        finally:
            torch.set_num_threads(threads)
        _train_step(channels_last, x.contiguous(memory_format=torch.channels_last))
        reordered = [dict(one_thread.named_parameters()), dict(channels_last.named_parameters())]
    torch._dynamo.reset()
    ref = _train_step(eager, x)
    out = _train_step(torch.compile(compiled, backend=backend), x)

    floor = 1e-6 * max(p.grad.abs().max().item() for p in eager.parameters() if p.grad is not None)
    grads = {}
    for (pname, e), c in zip(eager.named_parameters(), compiled.parameters()):
        if e.grad is not None:
            assert c.grad is not None, pname
            grads[pname] = (_rel(c.grad, e.grad, floor),
                            max([_rel(r[pname].grad, e.grad, floor) for r in reordered], default=0.))
    buffers = [_rel(c.float(), e.float(), 1e-6) for e, c in zip(eager.buffers(), compiled.buffers())]
    return _rel(out, ref), max(buffers, default=0.), grads  # PVT has no buffers


@pytest.mark.parametrize('name', ['gsa_resnet26', pytest.param('acmix_resnet26', marks=pytest.mark.slow),
                                  pytest.param('san10_patchwise', marks=pytest.mark.slow),
                                  pytest.param('san10_pairwise', marks=pytest.mark.slow)])
def test_compiled_training_equals_eager_aot(name):
    """dynamo + AOT autograd (the graph and its backward, without inductor's kernels): float64, to 1e-10."""
    out, buf, grads = compare_compiled_training(name, torch.float64, 'aot_eager')
    grad = max(g for g, _ in grads.values())
    assert out < 1e-10 and grad < 1e-10 and buf < 1e-10, (out, grad, buf)


# inductor compiles each model for minutes on a 2-core CPU: opt-in (on a GPU machine, scripts/gpu_check.py
# compares the compiled variants of every family)
needs_inductor_opt_in = pytest.mark.skipif(
    not os.environ.get('TIMM_ATTN_TEST_INDUCTOR'),
    reason='set TIMM_ATTN_TEST_INDUCTOR=1 to compare inductor-compiled training with eager (minutes per model)')


@pytest.mark.slow
@needs_inductor_opt_in
@pytest.mark.parametrize('name', list(FAMILIES))
def test_compiled_training_equals_eager_float64(name):
    """inductor, float64: compiled training agrees with eager to 1e-8."""
    out, buf, grads = compare_compiled_training(name, torch.float64, 'inductor')
    grad = max(g for g, _ in grads.values())
    assert out < 1e-8 and grad < 1e-8 and buf < 1e-8, (out, grad, buf)


@pytest.mark.slow
@needs_inductor_opt_in
@pytest.mark.parametrize('name', ['san10_patchwise', 'acmix_resnet26', 'gsa_resnet26'])
def test_compiled_training_equals_eager_float32(name):
    """inductor, float32: outputs and buffers within 1e-4 of eager; each gradient within 1e-3 of eager's, or within
    10 times its rounding noise. Gradients that are sums cancelling to a small part of their terms move by
    1e-3 to 1e-2 of their size with the order of the sums alone (acmix_resnet26: the bias of the position conv,
    which cancels in p_i - p_j, and the scalars rate1 / rate2 and conv3.bias on a channels_last input)."""
    out, buf, grads = compare_compiled_training(name, torch.float32, 'inductor', noise=True)
    assert out < 1e-4 and buf < 1e-4, (out, buf)
    off = {k: v for k, v in grads.items() if v[0] > max(1e-3, 10 * v[1])}
    assert not off, off
