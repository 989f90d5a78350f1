"""Context-attention layers (A2, DANet PAM / CAM, criss-cross, APNB / AFNB, OCR, IAU, RGA) against
independent references written from the papers' formulas (explicit loops over positions / channels on
small shapes, float64), and every input size from 1 x 1 to non-square maps."""
import math

import pytest
import torch
from torch import nn

from timm_attn.layers.context.asymmetric_nonlocal import FusionNonLocal, PyramidNonLocal
from timm_attn.layers.context.criss_cross import CrissCrossAttention
from timm_attn.layers.context.double_attention import DoubleAttention
from timm_attn.layers.context.dual_attention import ChannelAttention, DualAttention, PositionAttention
from timm_attn.layers.context.iau import IAU, SpatialIAU
from timm_attn.layers.context.object_context import ObjectContext
from timm_attn.layers.context.rga import RelationAwareAttention

from reference_context import bn, cbr, conv1x1, randomise, softmax

TOL = 1e-5
SIZES = [(1, 1), (1, 5), (4, 1), (2, 3), (7, 7), (13, 6)]


# ---------------------------------------------------------------- helpers (no module code reused)
def adaptive_bins(n, s):
    return [(math.floor(i * n / s), math.ceil((i + 1) * n / s)) for i in range(s)]


def adaptive_pool(x, out_h, out_w):
    """x (C, H, W) -> (C, out_h, out_w) with PyTorch's adaptive bins, by loops."""
    c, h, w = x.shape
    out = torch.zeros(c, out_h, out_w, dtype=x.dtype)
    for i, (h0, h1) in enumerate(adaptive_bins(h, out_h)):
        for j, (w0, w1) in enumerate(adaptive_bins(w, out_w)):
            out[:, i, j] = x[:, h0:h1, w0:w1].mean(dim=(1, 2))
    return out


# ---------------------------------------------------------------- A2
def ref_double_attention(x, m: DoubleAttention):
    out = []
    for xb in x:
        _c, h, w = xb.shape
        a = conv1x1(xb, m.features).reshape(-1, h * w)          # m x N
        b = conv1x1(xb, m.attn_gather).reshape(-1, h * w)       # n x N
        v = conv1x1(xb, m.attn_distribute).reshape(-1, h * w)   # n x N
        g = torch.stack([sum(softmax(b[j])[i] * a[:, i] for i in range(h * w)) for j in range(b.shape[0])], 1)
        z = torch.stack([g @ softmax(v[:, i]) for i in range(h * w)], 1).reshape(-1, h, w)
        out.append(xb + bn(conv1x1(z, m.proj), m.norm))
    return torch.stack(out)


@pytest.mark.parametrize('h,w', [(1, 1), (2, 3), (4, 5)])
def test_double_attention_matches_formula(h, w):
    m = randomise(DoubleAttention(8, gather_channels=4, distribute_channels=3))
    x = torch.randn(2, 8, h, w, dtype=torch.double)
    assert (m(x) - ref_double_attention(x, m)).abs().max() < TOL


def test_double_attention_starts_as_identity():
    m = DoubleAttention(16).eval()
    x = torch.randn(2, 16, 5, 3)
    assert torch.equal(m(x), x)


# ---------------------------------------------------------------- DANet
def ref_pam(x, m: PositionAttention):
    out = []
    for xb in x:
        c, h, w = xb.shape
        q = conv1x1(xb, m.query).reshape(-1, h * w)
        k = conv1x1(xb, m.key).reshape(-1, h * w)
        v = conv1x1(xb, m.value).reshape(c, h * w)
        e = torch.zeros(c, h * w, dtype=x.dtype)
        for j in range(h * w):
            s = softmax(torch.stack([q[:, j] @ k[:, i] for i in range(h * w)]))  # s_ji over i
            e[:, j] = sum(s[i] * v[:, i] for i in range(h * w))
        out.append(m.gamma * e.reshape(c, h, w) + xb)
    return torch.stack(out)


def ref_cam(x, gamma, official: bool):
    out = []
    for xb in x:
        c = xb.shape[0]
        a = xb.reshape(c, -1)
        energy = a @ a.T
        if official:  # the official code, literally: softmax(rowmax(energy) - energy)
            energy = energy.max(dim=-1, keepdim=True)[0] - energy
        att = torch.stack([softmax(energy[i]) for i in range(c)])
        out.append(gamma * (att @ a).reshape(xb.shape) + xb)
    return torch.stack(out)


@pytest.mark.parametrize('h,w', [(1, 1), (3, 2), (4, 4)])
def test_position_attention_matches_formula(h, w):
    m = randomise(PositionAttention(16))
    x = torch.randn(2, 16, h, w, dtype=torch.double)
    assert m.query.out_channels == 2  # C / 8
    assert (m(x) - ref_pam(x, m)).abs().max() < TOL


@pytest.mark.parametrize('official', [True, False])
def test_channel_attention_matches_official_code_and_paper(official):
    m = randomise(ChannelAttention(6, official=official))
    x = torch.randn(2, 6, 3, 4, dtype=torch.double) * 0.3
    assert (m(x) - ref_cam(x, m.gamma, official)).abs().max() < TOL


def test_dual_attention_sums_both_modules():
    m = randomise(DualAttention(16))
    x = torch.randn(2, 16, 3, 5, dtype=torch.double) * 0.3
    expected = ref_pam(x, m.pam) + ref_cam(x, m.cam.gamma, True) - x
    assert (m(x) - expected).abs().max() < TOL
    fresh = DualAttention(16).eval()
    assert torch.equal(fresh(x.float()), x.float())  # gamma = beta = 0 at init


# ---------------------------------------------------------------- criss-cross
def ref_criss_cross(x, m: CrissCrossAttention, recurrence: int):
    for _ in range(recurrence):
        out = []
        for xb in x:
            _c, h, w = xb.shape
            q, k, v = conv1x1(xb, m.query), conv1x1(xb, m.key), conv1x1(xb, m.value)
            y = torch.zeros_like(xb)
            for i in range(h):
                for j in range(w):
                    # the criss-cross set: the column without the position itself, then the whole row
                    positions = [(r, j) for r in range(h) if r != i] + [(i, s) for s in range(w)]
                    assert len(positions) == h + w - 1
                    a = softmax(torch.stack([q[:, i, j] @ k[:, r, s] for r, s in positions]))
                    y[:, i, j] = sum(a[n] * v[:, r, s] for n, (r, s) in enumerate(positions))
            out.append(m.gamma * y + xb)
        x = torch.stack(out)
    return x


@pytest.mark.parametrize('h,w,r', [(1, 1, 2), (1, 4, 1), (3, 1, 2), (3, 4, 2), (4, 3, 3)])
def test_criss_cross_matches_formula(h, w, r):
    m = randomise(CrissCrossAttention(16, recurrence=r))
    x = torch.randn(2, 16, h, w, dtype=torch.double) * 0.5
    assert (m(x) - ref_criss_cross(x, m, r)).abs().max() < TOL


def test_criss_cross_gradcheck_with_masked_self():
    m = randomise(CrissCrossAttention(4, reduction=2, recurrence=2))
    x = torch.randn(1, 4, 2, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,))


def test_criss_cross_rejects_zero_recurrence():
    with pytest.raises(ValueError, match='recurrence'):
        CrissCrossAttention(8, recurrence=0)


# ---------------------------------------------------------------- APNB / AFNB
def ref_pyramid(x, sizes=(1, 3, 6, 8)):
    return torch.cat([adaptive_pool(x, s, s).reshape(x.shape[0], -1) for s in sizes], 1)  # (C, 110)


def ref_asym_context(query, key, value, proj):
    ck, h, w = query.shape
    kp, vp = ref_pyramid(key), ref_pyramid(value)
    assert kp.shape[1] == 110
    q = query.reshape(ck, -1)
    ctx = torch.stack([vp @ softmax(q[:, i] @ kp / math.sqrt(ck)) for i in range(h * w)], 1)
    return conv1x1(ctx.reshape(-1, h, w), proj)


@pytest.mark.parametrize('h,w', [(1, 1), (2, 5), (9, 7)])
@pytest.mark.parametrize('fuse', ['add', 'concat'])
def test_apnb_matches_formula(h, w, fuse):
    m = randomise(PyramidNonLocal(8, key_channels=4, value_channels=6, fuse=fuse))
    x = torch.randn(2, 8, h, w, dtype=torch.double)
    out = []
    for xb in x:
        k = cbr(xb, m.key)  # query and key share one embedding (official f_query = f_key)
        y = ref_asym_context(k, k, conv1x1(xb, m.value), m.proj)
        if fuse == 'add':
            out.append(xb + y)
        else:
            out.append(bn(conv1x1(torch.cat([y, xb]), m.fusion[0]), m.fusion[1]).relu())
    assert (m(x) - torch.stack(out)).abs().max() < TOL


@pytest.mark.parametrize('low_hw,high_hw', [((1, 1), (1, 1)), ((6, 5), (3, 3)), ((10, 4), (5, 2))])
def test_afnb_matches_formula(low_hw, high_hw):
    m = randomise(FusionNonLocal(8, 6, key_channels=4, value_channels=5, fuse='concat'))
    low = torch.randn(2, 6, *low_hw, dtype=torch.double)
    high = torch.randn(2, 8, *high_hw, dtype=torch.double)
    out = []
    for lb, hb in zip(low, high):
        y = ref_asym_context(cbr(hb, m.query), cbr(lb, m.key), conv1x1(lb, m.value), m.proj)
        out.append(bn(conv1x1(torch.cat([y, hb]), m.fusion[0]), m.fusion[1]))  # official: BN, no ReLU
    assert (m(low, high) - torch.stack(out)).abs().max() < TOL


def test_asymmetric_blocks_start_as_identity_and_check_fuse():
    x = torch.randn(2, 16, 4, 3)
    assert torch.equal(PyramidNonLocal(16).eval()(x), x)
    assert torch.equal(FusionNonLocal(16, 8).eval()(torch.randn(2, 8, 8, 6), x), x)
    with pytest.raises(ValueError, match='fuse'):
        PyramidNonLocal(16, fuse='sum')


# ---------------------------------------------------------------- OCR
def ref_ocr(x, m: ObjectContext):
    outs, regions = [], []
    for xb in x:
        c, h, w = xb.shape
        logits = conv1x1(cbr(xb, m.aux_head[0]), m.aux_head[1])             # K x H x W
        feats = m.pixel(xb.unsqueeze(0))[0].reshape(-1, h * w)              # mid x N (3x3 conv + BN + ReLU)
        k_regions = logits.shape[0]
        f = torch.stack([sum(softmax(logits[k].reshape(-1))[i] * feats[:, i] for i in range(h * w))
                         for k in range(k_regions)], 1)                     # mid x K, eq. 2
        fk = f.unsqueeze(-1)
        psi = cbr(cbr(fk, m.f_object[0]), m.f_object[1])[..., 0]           # Ck x K
        delta = cbr(fk, m.f_down)[..., 0]                                   # Ck x K
        phi = cbr(cbr(feats, m.f_pixel[0]), m.f_pixel[1])                  # Ck x N
        ck = phi.shape[0]
        y = torch.stack([delta @ softmax(phi[:, i] @ psi / math.sqrt(ck)) for i in range(h * w)], 1)  # eq. 3-4
        y = cbr(y, m.f_up)
        z = cbr(torch.cat([y, feats]), m.fuse[0])                            # eq. 5, official [context; x]
        outs.append(xb + bn(conv1x1(z, m.proj), m.norm).reshape(c, h, w))
        regions.append(logits)
    return torch.stack(outs), torch.stack(regions)


@pytest.mark.parametrize('h,w', [(1, 1), (3, 4)])
def test_ocr_matches_formula(h, w):
    m = randomise(ObjectContext(8, num_regions=3, mid_channels=6, key_channels=4))
    x = torch.randn(2, 8, h, w, dtype=torch.double)
    out, regions = m.forward_with_regions(x)
    ref_out, ref_regions = ref_ocr(x, m)
    assert regions.shape == (2, 3, h, w)
    assert (regions - ref_regions).abs().max() < TOL
    assert (out - ref_out).abs().max() < TOL
    assert torch.equal(m(x), out)


# ---------------------------------------------------------------- IAU
def ref_iau(x, m: IAU):
    out = []
    for xb in x:
        c, h, w = xb.shape
        a = xb.reshape(c, -1)
        att = torch.stack([softmax(torch.stack([a[i] @ a[j] for j in range(c)])) for i in range(c)])
        z = xb + bn(conv1x1((att @ a).reshape(c, h, w), m.channel.update[0]), m.channel.update[1])   # CIAU
        s = m.spatial
        parts = torch.sigmoid(bn(conv1x1(z, s.parts[0]), s.parts[1])).reshape(-1, h * w)      # P x N
        zf = z.reshape(c, -1)
        p = [sum(parts[k, i] * zf[:, i] for i in range(h * w)) for k in range(parts.shape[0])]
        nodes = [conv1x1(v, s.reduce) for v in p + [zf.mean(1)]]
        u, p = nodes[-1], nodes[:-1]
        num = len(p)
        agg = []
        for k in range(num):
            others = [j for j in range(num) if j != k]
            e = torch.stack([bn(conv1x1(torch.cat([(p[k] - p[j]).abs(), u]), s.relation[0]), s.relation[1])[0]
                             for j in others])
            att_k = softmax(e)
            neighbour = sum(att_k[n] * p[j] for n, j in enumerate(others))
            agg.append(bn(conv1x1(torch.cat([p[k], neighbour]), s.aggregate[0]), s.aggregate[1]).relu())
        v = torch.cat([sum(agg) / num, u])
        out.append(z + bn(conv1x1(v, s.update[0]), s.update[1]).view(c, 1, 1))
    return torch.stack(out)


@pytest.mark.parametrize('h,w', [(1, 1), (3, 5)])
def test_iau_matches_official_formula(h, w):
    m = randomise(IAU(8))
    x = torch.randn(2, 8, h, w, dtype=torch.double) * 0.3
    assert (m(x) - ref_iau(x, m)).abs().max() < TOL


def test_iau_identity_at_init_and_part_check():
    m = IAU(16).eval()
    x = torch.randn(2, 16, 5, 4)
    assert torch.equal(m(x), x)
    with pytest.raises(ValueError, match='num_parts'):
        SpatialIAU(16, num_parts=1)


# ---------------------------------------------------------------- RGA
def ref_rga_official(x, m: RelationAwareAttention):
    """The official RGA_Module.forward, literally (full N x N relations), for H x W = spatial_size."""
    b, c, h, w = x.shape
    theta_xs = m.theta_spatial(x).view(b, -1, h * w).permute(0, 2, 1)
    phi_xs = m.phi_spatial(x).view(b, -1, h * w)
    gs = torch.matmul(theta_xs, phi_xs)
    gs_joint = torch.cat((gs.permute(0, 2, 1).reshape(b, h * w, h, w), gs.reshape(b, h * w, h, w)), 1)
    ys = torch.cat((torch.mean(m.gx_spatial(x), dim=1, keepdim=True), m.gg_spatial(gs_joint)), 1)
    x = torch.sigmoid(m.W_spatial(ys).expand_as(x)) * x
    xc = x.view(b, c, -1).permute(0, 2, 1).unsqueeze(-1)
    theta_xc = m.theta_channel(xc).squeeze(-1).permute(0, 2, 1)
    phi_xc = m.phi_channel(xc).squeeze(-1)
    gc = torch.matmul(theta_xc, phi_xc)
    gc_joint = m.gg_channel(torch.cat((gc.permute(0, 2, 1).unsqueeze(-1), gc.unsqueeze(-1)), 1))
    yc = torch.cat((torch.mean(m.gx_channel(xc), dim=1, keepdim=True), gc_joint), 1)
    return torch.sigmoid(m.W_channel(yc).transpose(1, 2)) * x


def ref_rga_spatial_pooled(xb, m: RelationAwareAttention):
    """RGA-S at another size: the full relation vectors, pooled over the source grid by loops."""
    _c, h, w = xb.shape
    ph, pw = m.spatial_size
    theta = cbr(xb, m.theta_spatial).reshape(-1, h * w)
    phi = cbr(xb, m.phi_spatial).reshape(-1, h * w)
    r = theta.T @ phi                                                    # r[i, j] = theta_i . phi_j
    rel_in = adaptive_pool(r.T.reshape(h, w, h * w).permute(2, 0, 1), ph, pw)   # [j, p]: r_{j, p}
    rel_out = adaptive_pool(r.reshape(h, w, h * w).permute(2, 0, 1), ph, pw)    # [j, p]: r_{p, j}
    rel = torch.cat([rel_in.reshape(h * w, -1).T, rel_out.reshape(h * w, -1).T]).reshape(-1, h, w)
    g = cbr(xb, m.gx_spatial).mean(0, keepdim=True)
    y = torch.cat([g, cbr(rel, m.gg_spatial)])
    wn = m.W_spatial
    a = bn(conv1x1(bn(conv1x1(y, wn[0]), wn[1]).relu(), wn[3]), wn[4])
    return torch.sigmoid(a)


@pytest.mark.parametrize('size', [(4, 4), (3, 5)])
def test_rga_equals_official_module_at_its_size(size):
    m = randomise(RelationAwareAttention(16, size, channel_ratio=4, spatial_ratio=2, down_ratio=2))
    x = torch.randn(2, 16, *size, dtype=torch.double)
    assert (m(x) - ref_rga_official(x, m)).abs().max() < TOL


@pytest.mark.parametrize('h,w', [(1, 1), (2, 7), (6, 5), (9, 8)])
def test_rga_spatial_relations_pooled_at_other_sizes(h, w):
    m = randomise(RelationAwareAttention(16, (3, 4), channel_ratio=4, spatial_ratio=2, down_ratio=2))
    x = torch.randn(2, 16, h, w, dtype=torch.double)
    a = m.spatial_attention(x)
    assert a.shape == (2, 1, h, w)
    for xb, ab in zip(x, a):
        assert (ab - ref_rga_spatial_pooled(xb, m)).abs().max() < TOL


def test_rga_channel_branch_sees_the_pooled_map():
    m = randomise(RelationAwareAttention(16, (3, 4), use_spatial=False, channel_ratio=4, spatial_ratio=2,
                                         down_ratio=2))
    x = torch.randn(2, 16, 7, 9, dtype=torch.double)
    pooled = torch.stack([adaptive_pool(xb, 3, 4) for xb in x])
    expected = ref_rga_official_channel(pooled, m)
    assert (m.channel_attention(x) - expected).abs().max() < TOL


def ref_rga_official_channel(x, m):
    b, c, _h, _w = x.shape
    xc = x.view(b, c, -1).permute(0, 2, 1).unsqueeze(-1)
    gc = torch.matmul(m.theta_channel(xc).squeeze(-1).permute(0, 2, 1), m.phi_channel(xc).squeeze(-1))
    gc_joint = m.gg_channel(torch.cat((gc.permute(0, 2, 1).unsqueeze(-1), gc.unsqueeze(-1)), 1))
    yc = torch.cat((torch.mean(m.gx_channel(xc), dim=1, keepdim=True), gc_joint), 1)
    return torch.sigmoid(m.W_channel(yc).transpose(1, 2))


def test_rga_argument_errors():
    with pytest.raises(ValueError, match='use_spatial'):
        RelationAwareAttention(16, 4, use_spatial=False, use_channel=False)
    with pytest.raises(ValueError, match='spatial_size'):
        RelationAwareAttention(16, (0, 4))


# ---------------------------------------------------------------- every size, train + backward
def _all_layers():
    return {
        'a2': lambda: DoubleAttention(16),
        'pam': lambda: PositionAttention(16),
        'cam': lambda: ChannelAttention(16),
        'da': lambda: DualAttention(16),
        'cc': lambda: CrissCrossAttention(16),
        'apnb': lambda: PyramidNonLocal(16),
        'ocr': lambda: ObjectContext(16, 5, mid_channels=8, key_channels=4),
        'iau': lambda: IAU(16),
        'rga': lambda: RelationAwareAttention(16, (7, 7)),
    }


@pytest.mark.parametrize('name', sorted(_all_layers()))
def test_every_input_size_forward_backward(name):
    torch.manual_seed(0)
    m = _all_layers()[name]()
    for p in m.parameters():  # leave the identity init, so gradients reach the attention
        if p.dim() <= 1 and not p.detach().any():
            nn.init.normal_(p, std=0.1)
    for h, w in SIZES + [(40, 24)]:
        x = torch.randn(2, 16, h, w, requires_grad=True)
        m.train()
        y = m(x)
        assert y.shape == x.shape and torch.isfinite(y).all(), (name, h, w)
        y.square().mean().backward()
        assert torch.isfinite(x.grad).all()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in m.parameters())
        m.eval()
        with torch.no_grad():
            assert torch.isfinite(m(x)).all()
        m.zero_grad()


@pytest.mark.parametrize('low_hw,high_hw', [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((30, 18), (15, 9))])
def test_afnb_sizes(low_hw, high_hw):
    m = FusionNonLocal(16, 8, key_channels=4, value_channels=4).train()
    nn.init.normal_(m.proj.weight, std=0.1)
    low = torch.randn(2, 8, *low_hw, requires_grad=True)
    y = m(low, torch.randn(2, 16, *high_hw))
    assert y.shape == (2, 16, *high_hw)
    y.sum().backward()
    assert torch.isfinite(low.grad).all() and low.grad.abs().sum() > 0


def test_layers_build_on_meta_device():
    for m in [DoubleAttention(16, device='meta'), DualAttention(16, device='meta'),
              CrissCrossAttention(16, device='meta'), PyramidNonLocal(16, device='meta'),
              ObjectContext(16, 3, 8, 4, device='meta'), IAU(16, device='meta'),
              RelationAwareAttention(16, 4, device='meta')]:
        assert all(p.device.type == 'meta' for p in m.parameters())
        assert m.eval()(torch.empty(2, 16, 5, 3, device='meta')).shape == (2, 16, 5, 3)
    m = FusionNonLocal(16, 8, device='meta').eval()
    assert m(torch.empty(2, 8, 6, 4, device='meta'), torch.empty(2, 16, 3, 2, device='meta')).shape == (2, 16, 3, 2)
