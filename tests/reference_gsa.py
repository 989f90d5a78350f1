"""Independent loop references for the GSA module, written from the paper's formulas (pixel by pixel,
offset by offset) for small shapes. They share nothing with ``timm_attn.layers.global_self_attention``
but the module's parameters."""
import torch


def reference_qkv(layer, x):
    """1x1 convolutions as a per-pixel matrix product: (B, C, H, W) -> q, k (B, heads, d_k, H, W), v."""
    weight = layer.qkv.weight.reshape(layer.qkv.weight.shape[0], -1)
    y = torch.einsum('oc,bchw->bohw', weight, x)
    if layer.qkv.bias is not None:
        y = y + layer.qkv.bias.view(1, -1, 1, 1)
    dk, dv, n = layer.dim_key, layer.dim_out, layer.num_heads
    b, _, h, w = x.shape
    q, k, v = y[:, :dk], y[:, dk:2 * dk], y[:, 2 * dk:]
    return q.reshape(b, n, dk // n, h, w), k.reshape(b, n, dk // n, h, w), v.reshape(b, n, dv // n, h, w)


def reference_content(q, k, v, norm_queries=False):
    """F_c[p] = sum_c q[c, p] * sum_p' softmax_p'(k[c, :])[p'] v[:, p'], per head, with explicit loops."""
    b, n, dk, h, w = q.shape
    dv = v.shape[2]
    out = torch.zeros(b, n, dv, h, w, dtype=q.dtype)
    for bi in range(b):
        for hd in range(n):
            # softmax of each key channel over the positions, by hand
            kk = k[bi, hd].reshape(dk, h * w)
            e = torch.exp(kk - kk.max(dim=1, keepdim=True).values)
            ks = e / e.sum(dim=1, keepdim=True)
            vv = v[bi, hd].reshape(dv, h * w)
            context = torch.zeros(dk, dv, dtype=q.dtype)
            for c in range(dk):
                for p in range(h * w):
                    context[c] = context[c] + ks[c, p] * vv[:, p]
            for y in range(h):
                for x in range(w):
                    qq = q[bi, hd, :, y, x]
                    if norm_queries:
                        qq = torch.exp(qq - qq.max()) / torch.exp(qq - qq.max()).sum()
                    acc = torch.zeros(dv, dtype=q.dtype)
                    for c in range(dk):
                        acc = acc + qq[c] * context[c]
                    out[bi, hd, :, y, x] = acc
    return out


def _embedding(table, head, offset):
    """R[offset] of ``head``: centre of the table at len // 2, offsets beyond it clamped to its ends."""
    t = table if table.dim() == 2 else table[head]
    centre = t.shape[0] // 2
    return t[min(max(offset + centre, 0), t.shape[0] - 1)]


def reference_axis(q, v, table, length, softmax, axis):
    """Column (axis=0) or row (axis=1) attention of the paper:
    out[a, b] = sum_{a' in the map, |a' - a| <= (L - 1) / 2} w(q[a, b] . R[a' - a]) v[a', b]
    (``length`` None: every a' of the axis), w the identity or a softmax over those a'."""
    b, n, _, h, w = q.shape
    dv = v.shape[2]
    out = torch.zeros(b, n, dv, h, w, dtype=q.dtype)
    size = h if axis == 0 else w
    for bi in range(b):
        for hd in range(n):
            for y in range(h):
                for x in range(w):
                    a = y if axis == 0 else x
                    keys = [a2 for a2 in range(size) if length is None or abs(a2 - a) <= (length - 1) // 2]
                    logits = torch.stack([q[bi, hd, :, y, x] @ _embedding(table, hd, a2 - a) for a2 in keys])
                    if softmax:
                        logits = torch.exp(logits - logits.max())
                        logits = logits / logits.sum()
                    acc = torch.zeros(dv, dtype=q.dtype)
                    for weight, a2 in zip(logits, keys):
                        acc = acc + weight * (v[bi, hd, :, a2, x] if axis == 0 else v[bi, hd, :, y, a2])
                    out[bi, hd, :, y, x] = acc
    return out


def reference_batch_norm(bn, x, training):
    """BatchNorm2d of (B, heads, d, H, W) over the heads * d channels: batch statistics (biased variance)
    in training, running statistics in eval."""
    b, n, d, h, w = x.shape
    flat = x.reshape(b, n * d, h, w)
    if training:
        mean = flat.mean(dim=(0, 2, 3))
        var = ((flat - mean.view(1, -1, 1, 1)) ** 2).mean(dim=(0, 2, 3))
    else:
        mean, var = bn.running_mean, bn.running_var
    y = (flat - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + bn.eps)
    y = y * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    return y.reshape(b, n, d, h, w)


def reference_positional(layer, q, v, training):
    length = layer.rel_pos_length
    col = reference_axis(q, v, layer.rel_pos_col, length, layer.pos_softmax, axis=0)
    col = reference_batch_norm(layer.pos_norm, col, training)
    return reference_axis(q, col, layer.rel_pos_row, length, layer.pos_softmax, axis=1)


def reference_gsa(layer, x):
    """The whole module: F_c + F_p (then the optional 1x1 projection)."""
    q, k, v = reference_qkv(layer, x)
    out = reference_content(q, k, v, layer.norm_queries) + reference_positional(layer, q, v, layer.training)
    b, _, h, w = x.shape
    out = out.reshape(b, layer.dim_out, h, w)
    if layer.proj is not None:
        out = torch.einsum('oc,bchw->bohw', layer.proj.weight.reshape(layer.dim_out, -1), out) \
            + layer.proj.bias.view(1, -1, 1, 1)
    return out
