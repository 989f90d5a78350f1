"""GSA-Net: the GSA module against loop references of the paper's formulas (outputs and gradients), the
equivariances the paper argues, the networks' sizes against same-depth ResNets, input sizes, autocast,
checkpoints, the timm API and the shipped train.py recipes."""
from importlib import resources

import pytest
import torch
import torch.nn.functional as F
import yaml

import timm
from timm_attn.bench import create_bench_model
from timm_attn.flops import count_gmacs
from timm_attn.layers.global_self_attention import GlobalSelfAttention, axial_positional_attention, relative_keys
from timm_attn.models.gsa import GSABottleneck, GSAResNet

from peer import SCRIPTS, assert_train_py_options, needs_scripts, train_one_epoch
from reference_gsa import reference_axis, reference_content, reference_gsa, reference_positional, reference_qkv


IMAGENET = ['gsa_resnet26', 'gsa_resnet38', 'gsa_resnet50', 'gsa_resnet101']
CIFAR = [f'{n}_cifar' for n in IMAGENET]
BASELINES = {'gsa_resnet26': 'resnet26_paper', 'gsa_resnet38': 'resnet38_paper', 'gsa_resnet50': 'resnet50',
             'gsa_resnet101': 'resnet101'}
# measured on this implementation: params (M), GMACs (ImageNet at 224, 1000 classes; CIFAR at 32, 100 classes)
PARAMS_GMACS = {
    'gsa_resnet26': (10.35, 2.31), 'gsa_resnet38': (14.20, 2.95), 'gsa_resnet50': (18.05, 3.58),
    'gsa_resnet101': (30.40, 6.09),
    'gsa_resnet26_cifar': (8.49, 0.69), 'gsa_resnet38_cifar': (12.34, 0.89), 'gsa_resnet50_cifar': (16.19, 1.09),
    'gsa_resnet101_cifar': (28.52, 1.90),
}


def _params_gmacs(model, size: int):
    return sum(p.numel() for p in model.parameters()) / 1e6, count_gmacs(model, size)


def _layer(dtype=torch.float32, **kwargs):
    kwargs = dict(dict(num_heads=2, dim_key=6, max_size=6), **kwargs)
    layer = GlobalSelfAttention(8, 8, **kwargs).to(dtype)
    with torch.no_grad():  # non-trivial running statistics for the eval-mode BatchNorm
        layer.pos_norm.running_mean.normal_()
        layer.pos_norm.running_var.uniform_(0.5, 2.)
        layer.pos_norm.weight.uniform_(0.5, 1.5)
        layer.pos_norm.bias.normal_()
    return layer


# (options, map size): the dense path (window covering the axis), the sliding-window path (L < axis), a
# window narrower than the axis on the dense path (L=5 on 4 rows), softmax on both paths, per-head
# embeddings + output projection + normalised queries + qkv bias, and a map larger than the table
CASES = [
    (dict(), (5, 6)),
    (dict(rel_pos_length=3), (5, 6)),
    (dict(rel_pos_length=5), (4, 7)),
    (dict(rel_pos_length=3, pos_softmax=True), (5, 6)),
    (dict(pos_softmax=True), (4, 5)),
    (dict(shared_pos_embed=False, out_proj=True, norm_queries=True, qkv_bias=True), (5, 6)),
    (dict(max_size=2), (4, 5)),
]


@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('kwargs,size', CASES)
def test_module_matches_loop_reference(kwargs, size, training):
    torch.manual_seed(0)
    layer = _layer(**kwargs).train(training)
    x = torch.randn(2, 8, *size, requires_grad=True)
    out = layer(x)
    expected = reference_gsa(layer, x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(out)
    params = [x] + [p for p in layer.parameters()]
    got = torch.autograd.grad((out * grad).sum(), params)
    want = torch.autograd.grad((expected * grad).sum(), params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('recompute', [False, True])
@pytest.mark.parametrize('lines_per_chunk', [1, 3, None])
@pytest.mark.parametrize('size', [(5, 6), (7, 4), (1, 3)])
def test_training_dense_axial_pass_equals_the_general_path(size, lines_per_chunk, recompute, monkeypatch):
    """Eager training of the default positional attention runs ``_DenseAxialPass`` (logits remade per chunk of
    lines in backward): outputs, gradients of the input and of every parameter (both tables included) and the
    BatchNorm's running statistics equal those of the general path (``axial_positional_attention``), float64,
    chunks of 1 / 3 lines (chunks straddling (image, head) groups) or the device's default."""
    from timm_attn.layers import global_self_attention as gsa
    if lines_per_chunk:
        monkeypatch.setenv('TIMM_ATTN_CHUNK_NUMEL', str(lines_per_chunk * max(size) ** 2))
    torch.manual_seed(7)
    layers = [_layer(torch.float64, recompute=recompute).train() for _ in range(2)]
    layers[1].load_state_dict(layers[0].state_dict())
    x = torch.randn(3, 8, *size, dtype=torch.float64)
    calls = []
    apply = gsa._DenseAxialPass.apply
    monkeypatch.setattr(gsa._DenseAxialPass, 'apply', lambda *args: calls.append(1) or apply(*args))
    results = []
    for layer, dense in zip(layers, (True, False)):
        if not dense:
            monkeypatch.setattr(GlobalSelfAttention, '_use_dense_axial_pass', lambda self, q, v: False)
        xi = x.clone().requires_grad_()
        out = layer(xi)
        grad = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
        params = [xi] + list(layer.parameters())
        results.append([out] + list(torch.autograd.grad((out * grad).sum(), params)) + list(layer.buffers()))
        if dense:
            assert len(calls) == (4 if recompute else 2)  # two axes (and their recomputation)
    assert len(calls) == (4 if recompute else 2)
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)


def test_dense_axial_pass_is_not_taken_where_it_does_not_apply():
    """Softmax, per-head tables, windows narrower than the map and autocast keep the general path."""
    torch.manual_seed(8)
    x = torch.randn(2, 8, 5, 6)
    for kwargs in (dict(pos_softmax=True), dict(shared_pos_embed=False), dict(rel_pos_length=3)):
        layer = _layer(recompute=False, **kwargs).train()
        q, _, v = layer.project(x)
        assert not layer._use_dense_axial_pass(q, v)
    layer = _layer(recompute=False).train()
    q, _, v = layer.project(x)
    assert layer._use_dense_axial_pass(q, v)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not layer._use_dense_axial_pass(q, v)
    with torch.no_grad():
        assert not layer._use_dense_axial_pass(q, v)
    meta = GlobalSelfAttention(8, 8, num_heads=2, max_size=6, device='meta').train()  # no autocast state on 'meta'
    q, _, v = meta.project(torch.empty(2, 8, 5, 6, device='meta'))
    assert not meta._use_dense_axial_pass(q, v)
    assert meta(torch.empty(2, 8, 5, 6, device='meta')).shape == (2, 8, 5, 6)


@pytest.mark.parametrize('chunk', [1, 3, 2 ** 19, None])
@pytest.mark.parametrize('kwargs,size', CASES)
def test_inference_path_matches_loop_reference(kwargs, size, chunk):
    """Eval without autograd (chunked positional pass, BatchNorm as an affine map, where it applies) against
    the loop reference, chunks of 1 / 3 (image, head) groups (a chunk straddling images), the whole batch or
    the default (None: sized by the device)."""
    torch.manual_seed(0)
    layer = _layer(**kwargs).eval()
    assert layer.inference_chunk_numel is None
    layer.inference_chunk_numel = chunk and chunk * size[0] * size[1] * max(size)
    x = torch.randn(3, 8, *size)
    expected = reference_gsa(layer, x)
    with torch.no_grad():
        out = layer(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('size', [(8, 6), (2, 2), (7, 6), (6, 9)])
def test_stem_max_pool_equals_max_pool2d(size):
    from timm_attn.layers._ops import StemMaxPool
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size)
    x[0, 0, 1, 1] = float('nan')
    with torch.no_grad():
        out = StemMaxPool()(x)
    assert torch.equal(out.nan_to_num(), torch.nn.functional.max_pool2d(x, 3, 2, 1).nan_to_num())
    assert torch.equal(out.isnan(), torch.nn.functional.max_pool2d(x, 3, 2, 1).isnan())
    assert isinstance(GSAResNet(layers=(1, 1, 1, 1), num_classes=10).maxpool, StemMaxPool)


def _assert_close_to_scale(got: torch.Tensor, want: torch.Tensor) -> None:
    """fp32 rounding of a reordered sum (folded BatchNorms): 1e-5 of the output's scale."""
    torch.testing.assert_close(got, want, atol=1e-5 * want.abs().max().item(), rtol=1e-5)


@pytest.mark.parametrize('size', [(8, 6), (2, 2), (7, 6), (5, 9), (1, 1)])
def test_avg_pool_2x2_equals_avg_pool2d(size):
    """Strided sums on even sides, the stock kernel on odd ones (partial windows) and with autograd."""
    from timm_attn.layers import avg_pool_2x2
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size, requires_grad=True)
    want = F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)
    with torch.no_grad():
        got = avg_pool_2x2(x)
    torch.testing.assert_close(got, want.detach(), atol=1e-6, rtol=1e-6)
    avg_pool_2x2(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.autograd.grad(want.sum(), x)[0])


def test_bottleneck_inference_path_folds_batchnorms_and_follows_weight_changes():
    """Eval without autograd (conv + BN folded, cached) equals the plain eval forward, for a downsampling
    block and an identity-shortcut block, and the cache follows in-place weight changes and load_state_dict."""
    torch.manual_seed(0)
    model = GSAResNet(layers=(1, 2, 1, 1), img_size=32, num_classes=10).eval()
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            with torch.no_grad():
                mod.running_mean.normal_(0, 0.1)
                mod.running_var.uniform_(0.5, 2)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.1)
    # a downsampling block on even (strided-sum pooling) and odd sides, an identity-shortcut block
    for block, size in ((model.layer2[0], (12, 10)), (model.layer2[0], (11, 7)), (model.layer2[1], (6, 5))):
        x = torch.randn(2, block.conv1.in_channels, *size)
        with torch.no_grad():
            fast = block(x)
        _assert_close_to_scale(fast, block(x))  # grad enabled: the plain path
        with torch.no_grad():
            block.bn3.running_var.mul_(2)
            block.conv1.weight.mul_(-1)
            fast = block(x)
        _assert_close_to_scale(fast, block(x))
        state = {k: v * torch.empty_like(v).uniform_(0.5, 1.5) if k.endswith('weight') else v
                 for k, v in block.state_dict().items()}
        block.load_state_dict(state)
        with torch.no_grad():
            fast = block(x)
        _assert_close_to_scale(fast, block(x))


@pytest.mark.parametrize('kwargs,size', [(dict(), (5, 6)), (dict(rel_pos_length=3, norm_queries=True), (6, 5))])
def test_branches_separately(kwargs, size):
    """Content and positional outputs each against their loop formula (fp32, 1e-5), gradients too."""
    torch.manual_seed(1)
    layer = _layer(**kwargs).eval()
    x = torch.randn(2, 8, *size)
    q, k, v = layer.project(x)
    rq, _, _ = reference_qkv(layer, x)
    torch.testing.assert_close(q, rq, atol=1e-5, rtol=1e-5)
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    content, pos = layer.content_branch(q, k, v), layer.positional_branch(q, v)
    ref_content, ref_pos = reference_content(q, k, v, layer.norm_queries), reference_positional(layer, q, v, False)
    torch.testing.assert_close(content, ref_content, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pos, ref_pos, atol=1e-5, rtol=1e-5)
    for ours, ref in ((content, ref_content), (pos, ref_pos)):
        grad = torch.randn_like(ours)
        got = torch.autograd.grad((ours * grad).sum(), (q, k, v), allow_unused=True)
        want = torch.autograd.grad((ref * grad).sum(), (q, k, v), allow_unused=True)
        for g, w in zip(got, want):
            assert (g is None) == (w is None)
            if g is not None:
                torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_axial_attention_single_axis_and_keys():
    """One axis against the loop formula, including a map wider than the table (outermost embedding
    reused); the gathered keys are R[a' - a]."""
    torch.manual_seed(2)
    table = torch.randn(5, 3)  # offsets -2..2
    q, v = torch.randn(1, 1, 3, 4, 7), torch.randn(1, 1, 2, 4, 7)  # (B, heads, d, H, W): rows of 7 pixels
    out = axial_positional_attention(q.permute(0, 1, 3, 4, 2), v.permute(0, 1, 3, 4, 2), table, 2 ** 30)
    expected = reference_axis(q, v, table, None, False, axis=1)
    torch.testing.assert_close(out.permute(0, 1, 4, 2, 3), expected, atol=1e-5, rtol=1e-5)
    keys = relative_keys(table, 7, 2 ** 30)
    assert keys.shape == (7, 3, 7)
    for a in range(7):
        for a2 in range(7):
            torch.testing.assert_close(keys[a, :, a2], table[min(max(a2 - a + 2, 0), 4)])
    windowed = relative_keys(table, 7, 1)
    assert windowed[0, :, 2].abs().sum() == 0 and torch.equal(windowed[3, :, 4], table[3])


def test_positional_branch_is_translation_equivariant():
    """Paper: the positional attention depends on relative positions only. An image supported inside the
    map, shifted within it, gives the shifted output (zero padding, no wrap-around; BN in eval with a
    zero shift so that zero stays zero)."""
    torch.manual_seed(3)
    layer = GlobalSelfAttention(8, 8, num_heads=2, max_size=12).eval()
    with torch.no_grad():
        layer.pos_norm.running_var.uniform_(0.5, 2.)
    x = torch.zeros(1, 8, 12, 12)
    x[:, :, 2:6, 1:6] = torch.randn(1, 8, 4, 5)
    shifted = torch.roll(x, shifts=(5, 4), dims=(2, 3))  # the support stays inside the map
    with torch.no_grad():
        q, _, v = layer.project(x)
        qs, _, vs = layer.project(shifted)
        out, out_shifted = layer.positional_branch(q, v), layer.positional_branch(qs, vs)
    assert out.abs().sum() > 0
    torch.testing.assert_close(out_shifted, torch.roll(out, shifts=(5, 4), dims=(3, 4)), atol=1e-5, rtol=1e-5)
    # the content branch is not translation-equivariant in this sense only through the map's border: it
    # has no position at all (next test)


def test_content_branch_is_permutation_equivariant():
    """Paper: the content attention ignores positions. Permuting the pixels permutes its output alike."""
    torch.manual_seed(4)
    layer = GlobalSelfAttention(8, 8, num_heads=2, max_size=5).eval()
    x = torch.randn(2, 8, 5, 6)
    perm = torch.randperm(30)
    xp = x.flatten(2)[:, :, perm].view(2, 8, 5, 6)
    with torch.no_grad():
        out = layer.content_branch(*layer.project(x))
        out_p = layer.content_branch(*layer.project(xp))
        pos, pos_p = layer.positional_branch(*layer.project(x)[::2]), layer.positional_branch(*layer.project(xp)[::2])
    torch.testing.assert_close(out_p.flatten(3), out.flatten(3)[..., perm], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(pos_p.flatten(3), pos.flatten(3)[..., perm], atol=1e-3)  # positional branch: not


def test_module_arguments_are_checked():
    with pytest.raises(ValueError, match='odd'):
        GlobalSelfAttention(8, rel_pos_length=4)
    with pytest.raises(ValueError, match='divisible by num_heads'):
        GlobalSelfAttention(12, num_heads=8)
    layer = GlobalSelfAttention(16, 32, num_heads=4, dim_key=8, rel_pos_length=7, shared_pos_embed=False,
                                out_proj=True)
    assert layer.qkv.weight.shape == (8 + 8 + 32, 16, 1, 1)
    assert layer.rel_pos_col.shape == (4, 7, 2) and layer.proj is not None
    assert GlobalSelfAttention(16, max_size=10).rel_pos_row.shape == (19, 2)


@pytest.mark.parametrize('name', sorted(PARAMS_GMACS))
def test_params_and_gmacs(name):
    size = 32 if name.endswith('_cifar') else 224
    params, gmacs = _params_gmacs(timm.create_model(name, device='meta'), size)
    assert params == pytest.approx(PARAMS_GMACS[name][0], abs=0.01)
    assert gmacs == pytest.approx(PARAMS_GMACS[name][1], abs=0.01)


@pytest.mark.parametrize('name', IMAGENET)
def test_fewer_params_and_gmacs_than_the_same_depth_resnet(name):
    """The paper's claim: fewer parameters and FLOPs than the convolutional ResNet of the same depth
    (for 26 / 38 the [1, 2, 4, 1] / [2, 3, 5, 2] bottleneck ResNets of timm_attn.bench)."""
    ours = _params_gmacs(timm.create_model(name, device='meta'), 224)
    base = _params_gmacs(create_bench_model(BASELINES[name], device='meta'), 224)
    assert ours[0] < 0.8 * base[0] and ours[1] < base[1]


def test_block_layout():
    model = timm.create_model('gsa_resnet50', device='meta')
    assert [len(s) for s in (model.layer1, model.layer2, model.layer3, model.layer4)] == [3, 4, 6, 3]
    assert not any(isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)
                   for n, m in model.named_modules() if n.startswith('layer'))  # no spatial convs in the stages
    block = model.layer2[0]
    assert isinstance(block, GSABottleneck) and isinstance(block.pool, torch.nn.AvgPool2d)
    assert isinstance(block.downsample[0], torch.nn.AvgPool2d)
    # tables sized for the block's own map at 224: layer2's first block attends at 56, the others at 28
    assert block.attn.rel_pos_col.shape == (111, 16) and model.layer2[1].attn.rel_pos_col.shape == (55, 16)
    assert model.conv1.kernel_size == (7, 7)
    cifar = timm.create_model('gsa_resnet26_cifar', device='meta')
    assert cifar.conv1.kernel_size == (3, 3) and cifar.conv1.stride == (1, 1)
    assert isinstance(cifar.maxpool, torch.nn.Identity) and cifar.num_classes == 100
    assert [f['reduction'] for f in cifar.feature_info] == [1, 1, 2, 4, 8]
    assert cifar.layer1[0].attn.rel_pos_col.shape == (63, 8)


@pytest.mark.parametrize('name,size', [
    ('gsa_resnet26', (64, 96)), ('gsa_resnet26', (33, 47)), ('gsa_resnet26', (17, 9)),
    ('gsa_resnet26_cifar', (48, 40)), ('gsa_resnet26_cifar', (8, 8)),
])
def test_any_input_size(name, size):
    """Non-square, odd, smaller than the stage count's reduction, larger than the tables (CIFAR at 48)."""
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size))
    assert out.shape == (1, 7) and torch.isfinite(out).all()


def test_window_option_and_large_map_in_a_model():
    model = timm.create_model('gsa_resnet26_cifar', rel_pos_length=5, pos_softmax=True, num_classes=3).eval()
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 40, 24))).all()
    assert model.layer1[0].attn.rel_pos_col.shape == (5, 8)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_outputs_are_finite(dtype):
    torch.manual_seed(0)
    model = timm.create_model('gsa_resnet26_cifar').eval()
    x = torch.randn(2, 3, 16, 16)  # CPU fp16 matmuls are slow: a small input
    with torch.no_grad():
        ref = model(x)
        with torch.autocast('cpu', dtype=dtype):
            out = model(x)
    assert out.dtype == dtype and torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max() + 0.1
    model.train()
    with torch.autocast('cpu', dtype=dtype):
        loss = model(x).float().logsumexp(-1).mean()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_training_step_reaches_embeddings_and_grad_checkpointing_agrees():
    torch.manual_seed(0)
    model = timm.create_model('gsa_resnet26_cifar', num_classes=3, zero_init_last=False)
    x = torch.randn(2, 3, 16, 16)
    model(x).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    nwd = model.no_weight_decay()
    assert len(nwd) == 2 * 8 and all(grads[n].abs().sum() > 0 for n in nwd)
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model(x).sum().backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], atol=1e-4, rtol=1e-4)


def test_features_and_intermediates():
    model = timm.create_model('gsa_resnet26', features_only=True).eval()
    assert model.feature_info.reduction() == [2, 4, 8, 16, 32]
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, 64, 32, 32), (1, 256, 16, 16), (1, 512, 8, 8),
                                               (1, 1024, 4, 4), (1, 2048, 2, 2)]
    cifar = timm.create_model('gsa_resnet26_cifar', features_only=True, out_indices=(2, 3, 4)).eval()
    with torch.no_grad():
        feats = cifar(torch.randn(1, 3, 32, 32))
    assert [tuple(f.shape) for f in feats] == [(1, 512, 16, 16), (1, 1024, 8, 8), (1, 2048, 4, 4)]
    full = timm.create_model('gsa_resnet26_cifar').eval()
    with torch.no_grad():
        last = full.forward_intermediates(torch.randn(1, 3, 32, 32), indices=[2], intermediates_only=True)
    assert [t.shape[-1] for t in last] == [16]


def test_checkpoint_round_trip_and_mismatch(tmp_path):
    from safetensors.torch import save_file
    torch.manual_seed(0)
    src = timm.create_model('gsa_resnet26_cifar').eval()
    path = tmp_path / 'model.safetensors'
    save_file(src.state_dict(), str(path))
    model = timm.create_model('gsa_resnet26_cifar', pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), src(x))
    with pytest.raises(Exception, match='does not fit'):  # tables sized for another img_size
        timm.create_model('gsa_resnet26_cifar', pretrained=True, img_size=64,
                          pretrained_cfg_overlay=dict(file=str(path)))


def test_pretrained_tags_and_cfgs():
    tags = timm.list_pretrained('gsa_*')
    assert sorted(tags) == sorted([f'{n}.in1k' for n in IMAGENET] + [f'{n}.cifar100' for n in CIFAR])
    cfg = timm.models.get_pretrained_cfg('gsa_resnet50_cifar.cifar100').to_dict()
    assert cfg['input_size'] == (3, 32, 32) and cfg['num_classes'] == 100 and cfg['pool_size'] == (4, 4)
    assert cfg['hf_hub_id'].endswith('/gsa_resnet50_cifar.cifar100') and cfg['paper_ids'] == 'arXiv:2010.03019'
    cfg = timm.models.get_pretrained_cfg('gsa_resnet50.in1k').to_dict()
    assert cfg['input_size'] == (3, 224, 224) and cfg['first_conv'] == 'conv1' and cfg['classifier'] == 'fc'
    assert isinstance(timm.create_model('gsa_resnet38', device='meta'), GSAResNet)


RECIPES = [f'{n}_in1k.yaml' for n in IMAGENET] + [f'{n}_cifar100.yaml' for n in IMAGENET]


@pytest.mark.parametrize('recipe', RECIPES)
def test_recipes_are_package_data_and_train_py_options(recipe):
    cfg = yaml.safe_load((resources.files('timm_attn') / 'recipes' / recipe).read_text())
    depth = recipe.split('_')[1]
    if recipe.endswith('_in1k.yaml'):
        assert cfg['model'] == f'gsa_{depth}' and cfg['num_classes'] == 1000 and cfg['img_size'] == 224
    else:
        assert cfg['model'] == f'gsa_{depth}_cifar' and cfg['num_classes'] == 100 and cfg['img_size'] == 32
        assert cfg['dataset'] == 'torch/cifar100'
    assert cfg['model'] in timm.list_models('gsa_*')
    if SCRIPTS:
        assert_train_py_options(cfg)


def test_cards_name_the_recipe():
    from timm_attn.cards import render_card
    card = render_card('gsa_resnet50_cifar.cifar100', stats=dict(params_m=16.19, gmacs=1.09, acts_m=1.))
    assert 'timm_attn/recipes/gsa_resnet50_cifar100.yaml' in card and 'torch/cifar100' not in card.split('```bash')[0]


@needs_scripts
def test_recipe_runs_with_timm_train(tmp_path):
    # '--dataset ""': the recipe names torch/cifar100, the test feeds an ImageFolder
    log = train_one_epoch('gsa_resnet26_cifar100.yaml', tmp_path, size=40, extra_args=['--dataset', ''])
    assert 'gsa_resnet26_cifar' in log


def test_recompute_in_training_matches_the_plain_path():
    """``recompute=True`` (default) keeps only the input for backward: same outputs, gradients and BN
    running statistics as the plain path."""
    torch.manual_seed(5)
    plain = _layer(recompute=False).train()
    recomputed = _layer(recompute=True).train()
    recomputed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 8, 5, 6)
    grads = []
    for layer in (plain, recomputed):
        xi = x.clone().requires_grad_()
        out = layer(xi)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append([xi.grad] + [p.grad for p in layer.parameters()])
    for g, w in zip(*grads):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=1e-5)
    for name, buf in plain.named_buffers():
        torch.testing.assert_close(dict(recomputed.named_buffers())[name], buf)


def test_recompute_per_stage():
    """Default: the first two stages recompute (the largest maps); one flag sets every stage; a wrong count is
    refused."""
    flags = lambda m: [[b.attn.recompute for b in s] for s in (m.layer1, m.layer2, m.layer3, m.layer4)]
    assert flags(timm.create_model('gsa_resnet26')) == [[True], [True, True], [False] * 4, [False]]
    assert flags(timm.create_model('gsa_resnet26', recompute=False)) == [[False], [False] * 2, [False] * 4, [False]]
    assert flags(timm.create_model('gsa_resnet26', recompute=(False, True, True, False))) == \
        [[False], [True] * 2, [True] * 4, [False]]
    with pytest.raises(ValueError, match='one per stage'):
        timm.create_model('gsa_resnet26', recompute=(True, False))


def test_torchscript_and_fx():
    torch.manual_seed(6)
    layer = _layer(rel_pos_length=3, qkv_bias=True).eval()
    scripted = torch.jit.script(layer)
    x = torch.randn(1, 8, 5, 6)
    torch.testing.assert_close(scripted(x), layer(x))
    from timm.models._features_fx import create_feature_extractor
    model = timm.create_model('gsa_resnet26_cifar').eval()
    fx = create_feature_extractor(model, return_nodes=['layer2'])
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        expected = model.forward_intermediates(x, indices=[2], intermediates_only=True)[0]
        torch.testing.assert_close(fx(x)['layer2'], expected)
