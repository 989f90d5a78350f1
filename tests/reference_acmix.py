"""Independent reference for ACmix, written from the official formulas with explicit unfolds.

Literal transcription of the official ``ACmix.forward`` (``ResNet/test_bottleneck.py``) and of the
ACmix part of ``WindowAttention_acmix`` (Swin): every window is unfolded, the q . pe_q term is kept,
the conv path concatenates q, k, v as the official code does. Slow, for small shapes only.
"""
import torch
import torch.nn.functional as F


def reflect_index(size: int, pad: int):
    """Mirror-periodic source index of each padded position (ReflectionPad2d where pad < size)."""
    out = []
    for i in range(-pad, size + pad):
        if size == 1:
            out.append(0)
            continue
        period = 2 * (size - 1)
        j = i % period
        out.append(j if j < size else period - j)
    return out


def reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if pad < h and pad < w:
        return F.pad(x, (pad,) * 4, mode='reflect')
    return x[..., reflect_index(h, pad), :][..., reflect_index(w, pad)]


def acmix_reference(m, x: torch.Tensor) -> torch.Tensor:
    """Output of an ``ACmix`` module ``m`` (official state_dict names) for x, in float64 math."""
    x = x.double()
    p = {k: v.double() for k, v in m.state_dict().items()}
    head, kernel, stride = m.head, m.kernel_att, m.stride
    q = F.conv2d(x, p['conv1.weight'], p['conv1.bias'])
    k = F.conv2d(x, p['conv2.weight'], p['conv2.bias'])
    v = F.conv2d(x, p['conv3.weight'], p['conv3.bias'])
    b, c, h, w = q.shape
    d = c // head
    h_out, w_out = (h - 1) // stride + 1, (w - 1) // stride + 1
    loc_w = torch.linspace(-1.0, 1.0, w, dtype=torch.float64).unsqueeze(0).repeat(h, 1)
    loc_h = torch.linspace(-1.0, 1.0, h, dtype=torch.float64).unsqueeze(1).repeat(1, w)
    loc = torch.cat([loc_w.unsqueeze(0), loc_h.unsqueeze(0)], 0).unsqueeze(0)
    pe = F.conv2d(loc, p['conv_p.weight'], p['conv_p.bias'])

    q_att = q.view(b * head, d, h, w) * d ** -0.5
    k_att = k.view(b * head, d, h, w)
    v_att = v.view(b * head, d, h, w)
    q_att, q_pe = q_att[:, :, ::stride, ::stride], pe[:, :, ::stride, ::stride]
    pad = kernel // 2

    def unfold(t):  # (n, d, k*k, h_out, w_out); the padded map has H - 1 + k rows -> h_out windows
        return F.unfold(reflect_pad(t, pad), kernel, stride=stride).view(t.shape[0], d, kernel * kernel, h_out, w_out)

    unfold_k, unfold_pe, unfold_v = unfold(k_att), unfold(pe), unfold(v_att)
    att = (q_att.unsqueeze(2) * (unfold_k + q_pe.unsqueeze(2) - unfold_pe)).sum(1)
    att = att.softmax(1)
    out_att = (att.unsqueeze(1) * unfold_v).sum(2).view(b, c, h_out, w_out)

    kk = m.kernel_conv ** 2
    f_all = F.conv2d(torch.cat([q.view(b, head, d, h * w), k.view(b, head, d, h * w),
                                v.view(b, head, d, h * w)], 1), p['fc.weight'])
    f_conv = f_all.permute(0, 2, 1, 3).reshape(b, d * kk, h, w)
    out_conv = F.conv2d(f_conv, p['dep_conv.weight'], None, stride=stride, padding=m.kernel_conv // 2, groups=d)
    return p['rate1'] * out_att + p['rate2'] * out_conv



def _window_partition(x, ws):
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, c)


def _window_reverse(windows, ws, h, w):
    b = int(windows.shape[0] / (h * w / ws / ws))
    x = windows.view(b, h // ws, w // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


def swin_acmix_attention_reference(m, x: torch.Tensor, mask=None) -> torch.Tensor:
    """Official ``WindowAttention_acmix.forward`` for x (B, H, W, C) (H, W multiples of the window), float64.
    ``m`` holds the parameters under the official names (qkv, proj, relative_position_bias_table, fc, dep_conv,
    rate1, rate2) and its ``window_size`` / ``num_heads``."""
    p = {k: v.double() for k, v in m.state_dict().items()}
    x = x.double()
    b, h, w, c = x.shape
    nh, ws = m.num_heads, m.window_size[0]
    qkv = F.linear(x, p['qkv.weight'], p['qkv.bias'])
    f_all = qkv.reshape(b, h * w, 3 * nh, -1).permute(0, 2, 1, 3)
    f_conv = F.conv2d(f_all, p['fc.weight'], p['fc.bias']).permute(0, 3, 1, 2).reshape(b, 9 * c // nh, h, w)
    out_conv = F.conv2d(f_conv, p['dep_conv.weight'], None, padding=1, groups=c // nh).permute(0, 2, 3, 1)

    qkv = _window_partition(qkv, ws)
    b_ = qkv.shape[0]
    n = ws * ws
    qkv = qkv.view(-1, n, 3 * c).reshape(b_, n, 3, nh, c // nh).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = (q * (c // nh) ** -0.5) @ k.transpose(-2, -1)
    coords = torch.stack(torch.meshgrid([torch.arange(ws), torch.arange(ws)], indexing='ij')).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
    index = rel[:, :, 0] * (2 * ws - 1) + rel[:, :, 1]
    bias = p['relative_position_bias_table'][index.view(-1)].view(n, n, -1).permute(2, 0, 1)
    attn = attn + bias.unsqueeze(0)
    if mask is not None:
        nw = mask.shape[0]
        attn = attn.view(b_ // nw, nw, nh, n, n) + mask.double().unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, nh, n, n)
    attn = attn.softmax(-1)
    out = (attn @ v).transpose(1, 2).reshape(b_, n, c)
    out = F.linear(out, p['proj.weight'], p['proj.bias'])
    out = _window_reverse(out.view(-1, ws, ws, c), ws, h, w)
    return p['rate1'] * out + p['rate2'] * out_conv
