"""SAN operators against the independent unfold reference (tests/reference.py)."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from timm_attn.layers import (
    PAIRWISE_RELATIONS, PATCHWISE_RELATIONS, PairwiseSelfAttention, PatchwiseSelfAttention, aggregate_neighbours,
    pairwise_relation, patchwise_relation,
)

from reference import ref_aggregation, ref_pairwise, ref_patchwise

GEOMETRIES = [  # (k, stride, dilation, H, W)
    (3, 1, 1, 9, 11),
    (7, 1, 1, 12, 10),
    (5, 2, 1, 11, 13),
    (3, 1, 2, 9, 8),
    (5, 3, 2, 14, 17),
    (7, 2, 1, 8, 8),
]


@pytest.mark.parametrize('size', [(8, 6), (2, 2), (7, 9), (3, 4)])
def test_max_pool_2x2_equals_max_pool2d_values_and_gradients(size):
    """Strided maxima without autograd, the stock kernel under autograd: same values, and the same gradient
    as ``F.max_pool2d`` also where a window holds tied maxima (ReLU zeros, repeated values)."""
    from timm_attn.layers import max_pool_2x2
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size).relu_().round_().requires_grad_()  # many ties inside the windows
    want = torch.nn.functional.max_pool2d(x, 2, 2)
    with torch.no_grad():
        assert torch.equal(max_pool_2x2(x), want)
    got = max_pool_2x2(x)
    assert torch.equal(got, want)
    g = torch.randn_like(want)
    assert torch.equal(torch.autograd.grad(got, x, g)[0], torch.autograd.grad(want, x, g)[0])


@pytest.mark.parametrize('k,s,d,h,w', GEOMETRIES)
def test_aggregation_matches_unfold_reference(k, s, d, h, w):
    g = torch.Generator().manual_seed(k * 100 + s * 10 + d)
    x = torch.randn(2, 12, h, w, generator=g)
    ho, wo = (h - 1) // s + 1, (w - 1) // s + 1
    wt = torch.randn(2, 4, k * k, ho * wo, generator=g)
    x1, w1 = x.clone().requires_grad_(), wt.clone().requires_grad_()
    x2, w2 = x.clone().requires_grad_(), wt.clone().requires_grad_()
    y = aggregate_neighbours(x1, w1, k, s, d)
    y_ref = ref_aggregation(x2, w2, k, s, d)
    assert y.shape == (2, 12, ho, wo)
    assert (y - y_ref).abs().max() <= 1e-5
    go = torch.randn_like(y)
    y.backward(go)
    y_ref.backward(go)
    assert (x1.grad - x2.grad).abs().max() <= 1e-5
    assert (w1.grad - w2.grad).abs().max() <= 1e-5


@pytest.mark.parametrize('k,s,d', [(3, 1, 1), (3, 2, 1), (3, 1, 2), (5, 2, 2)])
def test_aggregation_gradcheck(k, s, d):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 7, 6, dtype=torch.double, generator=g, requires_grad=True)
    ho, wo = (7 - 1) // s + 1, (6 - 1) // s + 1
    w = torch.randn(1, 2, k * k, ho * wo, dtype=torch.double, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: aggregate_neighbours(a, b, k, s, d), (x, w))


def test_aggregation_weight_channels_are_interleaved():
    """Output channel c uses weight channel c % C_w (official layout), not c // (C / C_w)."""
    x = torch.ones(1, 4, 5, 5)
    w = torch.zeros(1, 2, 9, 25)
    w[:, 1, 4] = 1.0  # weight channel 1, centre offset
    y = aggregate_neighbours(x, w, 3)
    assert torch.equal(y[0, :, 2, 2], torch.tensor([0., 1., 0., 1.]))


class _LargestTensor(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize('train', [False, True])
def test_aggregation_never_materialises_the_value_unfold(train):
    n, c, h, w, k = 2, 32, 16, 16, 7
    x = torch.randn(n, c, h, w, requires_grad=train)
    wt = torch.randn(n, 4, k * k, h * w, requires_grad=train)
    mode = _LargestTensor()
    with mode:
        y = aggregate_neighbours(x, wt, k)
        if train:
            y.sum().backward()
    assert mode.largest < n * c * k * k * h * w // 4, mode.largest  # the unfold would be n*c*k*k*h*w
    # the reference does materialise it: the check above can fail
    mode = _LargestTensor()
    with mode, torch.no_grad():
        ref_aggregation(x, wt, k)
    assert mode.largest >= n * c * k * k * h * w


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_aggregation_low_precision(dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 10, 9, generator=g)
    w = torch.softmax(torch.randn(2, 2, 9, 90, generator=g), 2)
    y = aggregate_neighbours(x.to(dtype), w.to(dtype), 3)
    assert y.dtype == dtype
    assert torch.allclose(y.float(), ref_aggregation(x, w, 3), atol=3e-2, rtol=3e-2)
    # mixed (autocast gives fp32 softmax weights and low-precision values): promoted, fp32 accumulation
    assert aggregate_neighbours(x.to(dtype), w, 3).dtype == torch.float32


def test_aggregation_bad_input():
    with pytest.raises(ValueError, match='odd'):
        aggregate_neighbours(torch.randn(1, 4, 8, 8), torch.randn(1, 2, 16, 64), 4)
    with pytest.raises(ValueError, match='does not fit'):
        aggregate_neighbours(torch.randn(1, 4, 8, 8), torch.randn(1, 2, 9, 63), 3)
    with pytest.raises(ValueError, match='multiple'):
        aggregate_neighbours(torch.randn(1, 5, 8, 8), torch.randn(1, 2, 9, 64), 3)
    with pytest.raises(ValueError, match='too small'):
        aggregate_neighbours(torch.randn(1, 4, 3, 8), torch.randn(1, 2, 49, 24), 7)


def test_aggregation_compiles():
    """Captured whole by dynamo (custom autograd.Function included), forward and backward."""
    x = torch.randn(2, 8, 9, 10, requires_grad=True)
    w = torch.randn(2, 2, 9, 90, requires_grad=True)
    fn = torch.compile(lambda a, b: aggregate_neighbours(a, b, 3), backend='aot_eager', fullgraph=True)
    y = fn(x, w)
    assert (y - ref_aggregation(x, w, 3)).abs().max() <= 1e-5
    y.sum().backward()
    assert x.grad is not None and w.grad is not None


@pytest.mark.parametrize('relation', PAIRWISE_RELATIONS)
@pytest.mark.parametrize('k,s,d', [(3, 1, 1), (5, 2, 1), (3, 1, 2)])
def test_pairwise_relation_matches_reference(relation, k, s, d):
    g = torch.Generator().manual_seed(2)
    x1, x2 = torch.randn(2, 3, 9, 10, generator=g), torch.randn(2, 3, 9, 10, generator=g)
    out = pairwise_relation(x1, x2, k, s, d, relation)
    assert (out - ref_pairwise(x1, x2, k, s, d, relation)).abs().max() <= 1e-5


@pytest.mark.parametrize('relation', PATCHWISE_RELATIONS)
@pytest.mark.parametrize('k,s,d', [(3, 1, 1), (3, 2, 1), (3, 1, 2)])
def test_patchwise_relation_matches_reference(relation, k, s, d):
    g = torch.Generator().manual_seed(3)
    x1, x2 = torch.randn(2, 3, 7, 8, generator=g), torch.randn(2, 3, 7, 8, generator=g)
    out = patchwise_relation(x1, x2, k, s, d, relation)
    assert (out - ref_patchwise(x1, x2, k, s, d, relation)).abs().max() <= 1e-5


def test_relation_gradcheck():
    g = torch.Generator().manual_seed(4)
    x1 = torch.randn(1, 2, 6, 5, dtype=torch.double, generator=g, requires_grad=True)
    x2 = torch.randn(1, 2, 6, 5, dtype=torch.double, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_relation(a, b, 3, 2, 1, 'subtraction'), (x1, x2))
    assert torch.autograd.gradcheck(lambda a, b: patchwise_relation(a, b, 3, 1, 2, 'concatenation'), (x1, x2))


def test_relation_bad_input():
    x = torch.randn(1, 2, 6, 6)
    with pytest.raises(ValueError, match='unknown pairwise relation'):
        pairwise_relation(x, x, 3, relation='star')
    with pytest.raises(ValueError, match='one shape'):
        patchwise_relation(x, torch.randn(1, 3, 6, 6), 3)


@pytest.mark.parametrize('cls,relation', [(PairwiseSelfAttention, r) for r in PAIRWISE_RELATIONS]
                         + [(PatchwiseSelfAttention, r) for r in PATCHWISE_RELATIONS])
@pytest.mark.parametrize('stride', [1, 2])
def test_attention_modules_every_relation(cls, relation, stride):
    """Every ablation relation builds, runs forward/backward, and eval inference == eval autograd."""
    torch.manual_seed(0)
    m = cls(16, 4, 16, share_planes=4, kernel_size=3, stride=stride, relation=relation)
    x = torch.randn(2, 16, 9, 7)
    y = m(x)
    assert y.shape == (2, 16, (9 - 1) // stride + 1, (7 - 1) // stride + 1)
    y.square().mean().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.eval()
    with torch.no_grad():
        fast = m(x)
    with torch.enable_grad():
        slow = m(x)
    assert (fast - slow).abs().max() <= 1e-5


def test_pairwise_without_position_encoding():
    with_pos = PairwiseSelfAttention(16, 4, 16)
    without = PairwiseSelfAttention(16, 4, 16, pos_embed=False)
    n_with = sum(p.numel() for p in with_pos.parameters())
    n_without = sum(p.numel() for p in without.parameters())
    # conv_p (2x2 + 2) and the two extra input channels of gamma (BN 2x2, conv 2 x rel)
    assert n_with - n_without == 6 + 4 + 2 * 4
    assert without(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)


def test_attention_bad_config():
    with pytest.raises(ValueError, match='share_planes'):
        PairwiseSelfAttention(16, 4, 12, share_planes=8)
    with pytest.raises(ValueError, match='unknown patchwise relation'):
        PatchwiseSelfAttention(16, 4, 16, relation='dot')


def test_bn_relu_conv_matches_modules_in_training():
    import copy
    from torch import nn
    from timm_attn.layers._ops import bn_relu_conv1x1
    torch.manual_seed(0)
    bn, conv = nn.BatchNorm2d(6), nn.Conv2d(6, 4, 1)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    bn_ref, conv_ref = copy.deepcopy(bn), copy.deepcopy(conv)
    x = torch.randn(3, 6, 5, 7) * 2 + 1
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = bn_relu_conv1x1(x1, bn, conv)
    ref = conv_ref(torch.relu(bn_ref(x2)))
    g = torch.randn_like(out)
    out.backward(g)
    ref.backward(g)
    assert (out - ref).abs().max() <= 1e-5
    assert (x1.grad - x2.grad).abs().max() <= 1e-5
    for p, q in zip([*bn.parameters(), *conv.parameters()], [*bn_ref.parameters(), *conv_ref.parameters()]):
        assert (p.grad - q.grad).abs().max() <= 1e-4
    for b, c in zip(bn.buffers(), bn_ref.buffers()):
        assert torch.allclose(b.float(), c.float(), atol=1e-6)
    # a recomputation (update_stats=False) leaves the running statistics exactly as they are
    before = [b.clone() for b in bn.buffers()]
    bn_relu_conv1x1(x, bn, conv, update_stats=False)
    assert all(torch.equal(a, b) for a, b in zip(before, bn.buffers()))


def test_bn_relu_conv_gradcheck():
    from torch import nn
    from timm_attn.layers._ops import bn_relu_conv1x1
    torch.manual_seed(1)
    bn, conv = nn.BatchNorm2d(3).double(), nn.Conv2d(3, 2, 1).double()
    x = torch.randn(2, 3, 3, 4, dtype=torch.double, requires_grad=True)
    params = (bn.weight, bn.bias, conv.weight, conv.bias)
    assert torch.autograd.gradcheck(lambda x, *p: bn_relu_conv1x1(x, bn, conv, update_stats=False), (x, *params))
