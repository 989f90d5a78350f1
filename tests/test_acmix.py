"""ACmix: the layer against an independent transcription of the official formulas, the models' parameter
counts, official-layout checkpoints (ResNet and Swin), small / odd / non-square maps, autocast, errors."""
import os

import pytest
import torch
import torch.nn.functional as F

import timm
import timm_attn  # noqa: F401
from timm_attn.layers.acmix import ACmix
from timm_attn.layers.sliding_window_attention import mirror_pad, sliding_window_attention, \
    sliding_window_attention_plain
from timm_attn.models import CheckpointMismatchError
from timm_attn.models.acmix import ACmixSwinTransformerBlock, checkpoint_filter_fn

from reference_acmix import acmix_reference, swin_acmix_attention_reference

OFFICIAL_PARAMS = {
    'acmix_resnet26': 10_487_816,
    'acmix_resnet38': 14_410_896,
    'acmix_resnet50': 18_333_976,
    'acmix_swin_tiny_patch4_window7_224': 28_649_908,
    'acmix_swin_small_patch4_window7_224': 50_345_080,
}


def _randomize(module: torch.nn.Module, seed: int = 0, std: float = 0.3) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


@pytest.mark.parametrize('name', sorted(OFFICIAL_PARAMS))
def test_parameter_counts_equal_official(name):
    model = timm.create_model(name, device='meta')
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[name]


# (H, W, stride): square, odd with stride 2, non-square, and maps smaller than the reflection padding
SIZES = [(9, 9, 1), (8, 10, 2), (9, 7, 2), (5, 11, 1), (4, 4, 1), (3, 3, 1), (2, 5, 2), (1, 1, 1), (1, 4, 2)]


@pytest.mark.parametrize('h, w, stride', SIZES)
def test_acmix_matches_reference(h, w, stride):
    torch.manual_seed(0)
    m = ACmix(16, 16, stride=stride)
    _randomize(m)
    x = torch.randn(2, 16, h, w)
    y = m(x)
    assert y.shape == (2, 16, -(-h // stride), -(-w // stride))  # ceil(H / s), as the conv path
    assert _rel_err(y, acmix_reference(m, x)) < 1e-4


@pytest.mark.parametrize('h, w, stride', [(7, 9, 1), (9, 7, 2), (2, 3, 1)])
def test_acmix_gradients_match_reference(h, w, stride):
    torch.manual_seed(1)
    m = ACmix(8, 8, head=2, stride=stride)
    _randomize(m, seed=1)
    x = torch.randn(2, 8, h, w, requires_grad=True)
    g = torch.randn(2, 8, -(-h // stride), -(-w // stride))
    (m(x) * g).sum().backward()
    ours = [x.grad] + [p.grad for p in m.parameters()]

    ref_m = ACmix(8, 8, head=2, stride=stride).double()
    ref_m.load_state_dict(m.state_dict())
    xd = x.detach().double().requires_grad_()
    # acmix_reference reads the state_dict: rebuild it from differentiable leaves
    params = {k: v.detach().double().requires_grad_() for k, v in m.state_dict().items()}
    ref_m.state_dict = lambda: params
    (acmix_reference(ref_m, xd) * g.double()).sum().backward()
    refs = [xd.grad] + [params[n].grad for n, _ in m.named_parameters()]
    scale = max(b.abs().max().item() for b in refs)
    for (n, _), a, b in zip([('input', None)] + list(m.named_parameters()), ours, refs):
        # conv_p.bias gets no gradient in exact math (it cancels in k_j + pe_i - pe_j): compare to the scale
        err = (a.double() - b).abs().max().item() / max(b.abs().max().item(), 1e-3 * scale)
        assert err < 1e-4, n


@pytest.mark.parametrize('stride', [1, 2])
def test_sliding_window_attention_custom_backward_equals_autograd(stride):
    g = torch.Generator().manual_seed(2)
    q = torch.randn(3, 4, 5, 6, generator=g, dtype=torch.double, requires_grad=True)
    hp, wp = (5 - 1) * stride + 7, (6 - 1) * stride + 7
    k = torch.randn(3, 4, hp, wp, generator=g, dtype=torch.double, requires_grad=True)
    v = torch.randn(3, 4, hp, wp, generator=g, dtype=torch.double, requires_grad=True)
    go = torch.randn(3, 4, 5, 6, generator=g, dtype=torch.double)
    a = torch.autograd.grad(sliding_window_attention(q, k, v, 7, stride), (q, k, v), go)
    b = torch.autograd.grad(sliding_window_attention_plain(q, k, v, 7, stride), (q, k, v), go)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_mirror_pad_is_reflection_where_defined():
    x = torch.randn(2, 3, 5, 6)
    torch.testing.assert_close(mirror_pad(x, 3), F.pad(x, (3, 3, 3, 3), mode='reflect'))
    one = torch.randn(1, 2, 1, 1)
    assert torch.equal(mirror_pad(one, 3), one.expand(1, 2, 7, 7))
    two = torch.arange(2.).view(1, 1, 1, 2)  # columns bounce 0 1 0 1 ...
    assert mirror_pad(two, 3)[0, 0, 0].tolist() == [1., 0., 1., 0., 1., 0., 1., 0.]


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_acmix_autocast(dtype):
    torch.manual_seed(3)
    m = ACmix(16, 16, stride=2)
    x = torch.randn(2, 16, 9, 9, requires_grad=True)
    ref = m(x)
    with torch.autocast('cpu', dtype=dtype):
        y = m(x)
    assert torch.isfinite(y).all()  # fp32 after the (fp32) rates, as any fp32 parameter under autocast
    assert _rel_err(y.float(), ref) < 0.05
    y.float().sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(m.conv_p.weight.grad).all()


def test_acmix_half_model():
    m = ACmix(8, 8, head=2).to(torch.bfloat16)
    y = m(torch.randn(1, 8, 6, 6, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()


def test_position_grid_cache_survives_inference_mode():
    m = ACmix(8, 8, head=2)
    x = torch.randn(1, 8, 13, 11)  # a size no other test uses: the grid is first built here
    with torch.inference_mode():
        m(x)
    m(x).sum().backward()  # the cached grid is a normal tensor
    assert m.conv_p.weight.grad is not None


def test_acmix_errors():
    with pytest.raises(ValueError, match='divisible by head'):
        ACmix(16, 18, head=4)
    with pytest.raises(ValueError, match='dilation'):
        ACmix(16, 16, dilation=2)
    with pytest.raises(ValueError, match='odd'):
        ACmix(16, 16, kernel_att=6)
    with pytest.raises(ValueError, match=r'\(N, 16, H, W\)'):
        ACmix(16, 16)(torch.randn(1, 8, 5, 5))
    with pytest.raises(ValueError, match='output_stride'):
        timm.create_model('acmix_resnet26', output_stride=16)


# ---------------------------------------------------------------- official ResNet layout

def _official_resnet_state_dict(layers, num_classes=1000, seed=0):
    """Keys and shapes of ``ResNet_ImageNet.py``'s ``ACmix_ResNet(layers)`` (torchvision names)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}

    def add(name, *shape):
        sd[name] = torch.randn(*shape, generator=g) * 0.2

    def bn(name, c):
        add(f'{name}.weight', c)
        sd[f'{name}.weight'] = sd[f'{name}.weight'].abs() + 0.5
        add(f'{name}.bias', c)
        add(f'{name}.running_mean', c)
        sd[f'{name}.running_var'] = torch.rand(c, generator=g) + 0.5
        sd[f'{name}.num_batches_tracked'] = torch.tensor(100)

    add('conv1.weight', 64, 3, 7, 7)
    bn('bn1', 64)
    inplanes = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
        for j in range(n):
            p = f'layer{i + 1}.{j}'
            add(f'{p}.conv1.weight', planes, inplanes, 1, 1)
            bn(f'{p}.bn1', planes)
            d = planes // 4
            sd[f'{p}.conv2.rate1'] = torch.rand(1, generator=g)
            sd[f'{p}.conv2.rate2'] = torch.rand(1, generator=g)
            for c in ('conv1', 'conv2', 'conv3'):
                add(f'{p}.conv2.{c}.weight', planes, planes, 1, 1)
                add(f'{p}.conv2.{c}.bias', planes)
            add(f'{p}.conv2.conv_p.weight', d, 2, 1, 1)
            add(f'{p}.conv2.conv_p.bias', d)
            add(f'{p}.conv2.fc.weight', 9, 12, 1, 1)
            add(f'{p}.conv2.dep_conv.weight', planes, 9, 3, 3)
            bn(f'{p}.bn2', planes)
            add(f'{p}.conv3.weight', planes * 4, planes, 1, 1)
            bn(f'{p}.bn3', planes * 4)
            if j == 0:
                add(f'{p}.downsample.0.weight', planes * 4, inplanes, 1, 1)
                bn(f'{p}.downsample.1', planes * 4)
            inplanes = planes * 4
    add('fc.weight', num_classes, 2048)
    add('fc.bias', num_classes)
    return sd


class _Params:
    """Stand-in module for ``acmix_reference``: one ACmix's official tensors plus its hyper-parameters."""

    def __init__(self, sd, prefix, stride):
        self._sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        self.head, self.kernel_att, self.kernel_conv, self.stride = 4, 7, 3, stride

    def state_dict(self):
        return self._sd


def _official_resnet_forward(sd, layers, x):
    """The official ACmix-ResNet forward (eval), from the checkpoint's tensors, in float64."""
    sd64 = {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}

    def bn(t, name):
        return F.batch_norm(t, sd64[f'{name}.running_mean'], sd64[f'{name}.running_var'],
                            sd64[f'{name}.weight'], sd64[f'{name}.bias'], False, 0., 1e-5)

    x = F.relu(bn(F.conv2d(x.double(), sd64['conv1.weight'], stride=2, padding=3), 'bn1'))
    x = F.max_pool2d(x, 3, 2, 1)
    for i, n in enumerate(layers):
        for j in range(n):
            p = f'layer{i + 1}.{j}'
            stride = 2 if (i > 0 and j == 0) else 1
            out = F.relu(bn(F.conv2d(x, sd64[f'{p}.conv1.weight']), f'{p}.bn1'))
            out = acmix_reference(_Params(sd64, f'{p}.conv2.', stride), out)
            out = F.relu(bn(out, f'{p}.bn2'))
            out = bn(F.conv2d(out, sd64[f'{p}.conv3.weight']), f'{p}.bn3')
            if j == 0:
                x = bn(F.conv2d(x, sd64[f'{p}.downsample.0.weight'], stride=stride), f'{p}.downsample.1')
            x = F.relu(out + x)
    return F.linear(x.mean((2, 3)), sd64['fc.weight'], sd64['fc.bias'])


@pytest.mark.parametrize('wrap', ['bare', 'state_dict_module'])
def test_official_resnet_checkpoint_loads_and_matches(tmp_path, wrap):
    layers = (1, 2, 4, 1)
    sd = _official_resnet_state_dict(layers)
    ckpt = sd if wrap == 'bare' else {'epoch': 90, 'state_dict': {f'module.{k}': v for k, v in sd.items()}}
    path = os.path.join(tmp_path, 'checkpoint.pth.tar')
    torch.save(ckpt, path)
    model = timm.create_model('acmix_resnet26', pretrained=True, pretrained_cfg_overlay=dict(file=path)).eval()
    own = model.state_dict()
    assert set(own) == set(sd) and all(torch.equal(own[k], v) for k, v in sd.items())
    if wrap == 'bare':
        x = torch.randn(1, 3, 75, 61)  # odd, non-square; the last stage is 3x2 (smaller than the padding)
        with torch.no_grad():
            y = model(x)
        assert _rel_err(y, _official_resnet_forward(sd, layers, x)) < 1e-4


def test_resnet_checkpoint_of_another_depth_is_refused(tmp_path):
    path = os.path.join(tmp_path, 'r26.pth')
    torch.save(_official_resnet_state_dict((1, 2, 4, 1)), path)
    with pytest.raises(CheckpointMismatchError, match='missing keys'):
        timm.create_model('acmix_resnet38', pretrained=True, pretrained_cfg_overlay=dict(file=path))


def test_resnet_odd_sizes_and_training_step():
    model = timm.create_model('acmix_resnet26', num_classes=5)
    x = torch.randn(2, 3, 37, 50)
    y = model(x)
    assert y.shape == (2, 5)
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    feats = timm.create_model('acmix_resnet26', features_only=True)(torch.randn(1, 3, 33, 47))
    assert [f.shape[-2:] for f in feats] == [(17, 24), (9, 12), (5, 6), (3, 3), (2, 2)]


# ---------------------------------------------------------------- Swin

_SMALL_SWIN = dict(embed_dim=24, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 2), img_size=112)


def _official_swin_state_dict(model_args, num_classes=1000, seed=0):
    """Keys and shapes of ``SwinTransformer_acmix`` (original Swin names: downsample at the end of a stage,
    head.weight, persistent relative_position_index and attn_mask buffers)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    c, ws = model_args['embed_dim'], 7
    res = model_args['img_size'] // 4
    sd['patch_embed.proj.weight'] = torch.randn(c, 3, 4, 4, generator=g) * 0.1
    sd['patch_embed.proj.bias'] = torch.randn(c, generator=g) * 0.1
    sd['patch_embed.norm.weight'] = torch.rand(c, generator=g) + 0.5
    sd['patch_embed.norm.bias'] = torch.randn(c, generator=g) * 0.1
    dim = c
    for i, (depth, nh) in enumerate(zip(model_args['depths'], model_args['num_heads'])):
        win = min(ws, res)
        for j in range(depth):
            p = f'layers.{i}.blocks.{j}'
            for name, shape in [
                ('norm1.weight', (dim,)), ('norm1.bias', (dim,)),
                ('attn.relative_position_bias_table', ((2 * win - 1) ** 2, nh)),
                ('attn.qkv.weight', (3 * dim, dim)), ('attn.qkv.bias', (3 * dim,)),
                ('attn.proj.weight', (dim, dim)), ('attn.proj.bias', (dim,)),
                ('attn.fc.weight', (9, 3 * nh, 1, 1)), ('attn.fc.bias', (9,)),
                ('attn.dep_conv.weight', (dim, 9, 3, 3)), ('attn.rate1', (1,)), ('attn.rate2', (1,)),
                ('norm2.weight', (dim,)), ('norm2.bias', (dim,)),
                ('mlp.fc1.weight', (4 * dim, dim)), ('mlp.fc1.bias', (4 * dim,)),
                ('mlp.fc2.weight', (dim, 4 * dim)), ('mlp.fc2.bias', (dim,)),
            ]:
                sd[f'{p}.{name}'] = torch.randn(*shape, generator=g) * 0.1
            sd[f'{p}.attn.relative_position_index'] = torch.zeros(win * win, win * win, dtype=torch.long)
            if j % 2 == 1 and res > ws:
                sd[f'{p}.attn_mask'] = torch.zeros((res // win) ** 2, win * win, win * win)
        if i < len(model_args['depths']) - 1:
            sd[f'layers.{i}.downsample.reduction.weight'] = torch.randn(2 * dim, 4 * dim, generator=g) * 0.1
            sd[f'layers.{i}.downsample.norm.weight'] = torch.rand(4 * dim, generator=g) + 0.5
            sd[f'layers.{i}.downsample.norm.bias'] = torch.randn(4 * dim, generator=g) * 0.1
            dim, res = dim * 2, res // 2
    sd['norm.weight'] = torch.rand(dim, generator=g) + 0.5
    sd['norm.bias'] = torch.randn(dim, generator=g) * 0.1
    sd['head.weight'] = torch.randn(num_classes, dim, generator=g) * 0.1
    sd['head.bias'] = torch.randn(num_classes, generator=g) * 0.1
    return sd


def test_official_swin_checkpoint_loads(tmp_path):
    sd = _official_swin_state_dict(_SMALL_SWIN)
    path = os.path.join(tmp_path, 'acmix_swin.pth')
    torch.save({'model': sd, 'epoch': 300}, path)
    model = timm.create_model('acmix_swin_tiny_patch4_window7_224', pretrained=True,
                              pretrained_cfg_overlay=dict(file=path), **_SMALL_SWIN).eval()
    own = model.state_dict()
    # downsample moved to the next stage, head -> head.fc, the ACmix keys unchanged
    assert torch.equal(own['layers.1.downsample.reduction.weight'], sd['layers.0.downsample.reduction.weight'])
    assert torch.equal(own['head.fc.weight'], sd['head.weight'])
    for k in ('attn.fc.weight', 'attn.fc.bias', 'attn.dep_conv.weight', 'attn.rate1', 'attn.rate2'):
        assert torch.equal(own[f'layers.2.blocks.1.{k}'], sd[f'layers.2.blocks.1.{k}'])
    assert not any(k.endswith(('relative_position_index', 'attn_mask')) for k in own)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 112, 112))).all()


def test_swin_checkpoint_of_another_depth_is_refused(tmp_path):
    path = os.path.join(tmp_path, 'swin.pth')
    torch.save({'model': _official_swin_state_dict(_SMALL_SWIN)}, path)
    with pytest.raises(CheckpointMismatchError):
        timm.create_model('acmix_swin_tiny_patch4_window7_224', pretrained=True, pretrained_cfg_overlay=dict(file=path),
                          **dict(_SMALL_SWIN, depths=(2, 2, 4, 2)))


@pytest.mark.parametrize('shift', [0, 3])
def test_swin_block_attention_matches_official(shift):
    torch.manual_seed(4)
    blk = ACmixSwinTransformerBlock(12, (14, 14), num_heads=3, window_size=7, shift_size=shift)
    _randomize(blk.attn, seed=4, std=0.2)
    x = torch.randn(2, 14, 14, 12)
    y = blk._attn(x)
    # official block: roll(-shift) -> WindowAttention_acmix with the block's mask -> roll(+shift)
    xs = torch.roll(x, (-shift, -shift), (1, 2)) if shift else x
    ref = swin_acmix_attention_reference(blk.attn, xs, blk.attn_mask)
    ref = torch.roll(ref, (shift, shift), (1, 2)) if shift else ref
    assert _rel_err(y, ref) < 1e-4


def test_swin_features_and_dynamic_size():
    model = timm.create_model('acmix_swin_tiny_patch4_window7_224', features_only=True, **_SMALL_SWIN)
    feats = model(torch.randn(1, 3, 112, 112))
    assert [tuple(f.shape[1:3]) for f in feats] == [(28, 28), (14, 14), (7, 7), (4, 4)]
    model = timm.create_model('acmix_swin_tiny_patch4_window7_224', dynamic_img_size=True, **_SMALL_SWIN).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 96, 136)).shape == (1, 1000)


def test_filter_passes_own_layout_through():
    model = timm.create_model('acmix_resnet26', num_classes=3)
    sd = model.state_dict()
    assert checkpoint_filter_fn(dict(sd), model).keys() == sd.keys()


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('h, w, stride', [(20, 17, 1), (9, 7, 2), (31, 30, 2), (3, 5, 1)])
def test_acmix_inference_path_matches_reference(h, w, stride, channels_last):
    """Without autograd the window attention runs as masked tile matmuls over index gathers: same outputs,
    in the input's memory layout."""
    torch.manual_seed(5)
    m = ACmix(8, 8, head=2, stride=stride).eval()
    _randomize(m, seed=5)
    x = torch.randn(2, 8, h, w)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = m(x)
    assert _rel_err(y, acmix_reference(m, x.contiguous())) < 1e-4
    if channels_last and min(y.shape[-2:]) > 1:
        assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize('stride', [1, 2])
def test_partial_finetune_frozen_projections_backward(stride):
    """conv1/2/3 and conv_p frozen, fc / dep_conv / rates trained: the conv path keeps qkv for backward, so the
    attention must not overwrite it in place; the trainable weights get the gradients of the all-trainable module."""
    torch.manual_seed(6)
    m = ACmix(8, 8, head=2, stride=stride)
    _randomize(m, seed=6)
    full = ACmix(8, 8, head=2, stride=stride)
    full.load_state_dict(m.state_dict())
    frozen = ('conv1', 'conv2', 'conv3', 'conv_p')
    for name in frozen:
        getattr(m, name).requires_grad_(False)
    x = torch.randn(2, 8, 9, 7)
    g = torch.randn(2, 8, -(-9 // stride), -(-7 // stride))
    (m(x) * g).sum().backward()
    (full(x) * g).sum().backward()
    full_grads = dict(full.named_parameters())
    trained = [n for n, p in m.named_parameters() if p.requires_grad]
    assert sorted(trained) == ['dep_conv.weight', 'fc.weight', 'rate1', 'rate2']
    for n, p in m.named_parameters():
        if n in trained:
            torch.testing.assert_close(p.grad, full_grads[n].grad, msg=lambda msg, n=n: f'{n}: {msg}')
        else:
            assert p.grad is None, n


@pytest.mark.parametrize('h, w, stride', [(9, 9, 1), (8, 10, 2), (2, 5, 2)])
@pytest.mark.parametrize('channels_last', [False, True])
def test_training_gather_path_equals_sliding_window_path(h, w, stride, channels_last):
    """Eager training runs the gather attention (SDPA over masked query tiles, NHWC qkv on the CPU); half dtypes and
    compiled graphs run ``sliding_window_attention``. Both give the same output and gradients (float64), and the
    output keeps the input's memory layout."""
    torch.manual_seed(7)
    fast = ACmix(8, 8, head=2, stride=stride).double()
    _randomize(fast, seed=7)
    fast.double()
    slow = ACmix(8, 8, head=2, stride=stride).double()
    slow.load_state_dict(fast.state_dict())
    slow._use_gather_attention = lambda qkv: False
    slow._train_channels_last = lambda x: False
    x = torch.randn(2, 8, h, w, dtype=torch.double)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    g = torch.randn(2, 8, -(-h // stride), -(-w // stride), dtype=torch.double)
    ys = [fast(xs[0]), slow(xs[1])]
    assert ys[0].is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    torch.testing.assert_close(ys[0], ys[1], rtol=1e-10, atol=1e-10)
    (ys[0] * g).sum().backward()
    (ys[1] * g).sum().backward()
    torch.testing.assert_close(xs[0].grad, xs[1].grad, rtol=1e-10, atol=1e-10)
    for (n, a), b in zip(fast.named_parameters(), slow.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-10, msg=lambda msg, n=n: f'{n}: {msg}')
