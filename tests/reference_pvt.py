"""Independent reference for PVT v1, written from the paper and the structure of the official ``pvt.py``
(whai362/PVT, branch v1 / master ``classification/pvt.py``), with the OFFICIAL state-dict key names.

It does not import the plugin: ``official_state_dict`` lists the keys and shapes of the official model's
``state_dict()`` (``patch_embed{i}``, ``pos_embed{i}``, ``block{i}.{j}``, ``cls_token``, ``norm``, ``head``)
and ``official_forward`` runs the official eval forward on such a dict with explicit attention (softmax of
scaled dot products, no fused kernels), including the official ``_get_pos_embed`` test (resize unless the token
count equals stage 1's at the build size).
"""
import math

import torch
import torch.nn.functional as F

EMBED_DIMS = (64, 128, 320, 512)
NUM_HEADS = (1, 2, 5, 8)
MLP_RATIOS = (8, 8, 4, 4)
SR_RATIOS = (8, 4, 2, 1)
DEPTHS = {'pvt_tiny': (2, 2, 2, 2), 'pvt_small': (3, 4, 6, 3), 'pvt_medium': (3, 4, 18, 3),
          'pvt_large': (3, 8, 27, 3)}


def official_shapes(depths, img_size=224, num_classes=1000, in_chans=3, embed_dims=EMBED_DIMS,
                    mlp_ratios=MLP_RATIOS, sr_ratios=SR_RATIOS):
    """(key, shape) of every tensor of the official ``PyramidVisionTransformer(patch_size=4, qkv_bias=True, ...)``
    ``state_dict()`` (its keys and shapes; not in its order)."""
    shapes = []
    for i in range(4):
        c = embed_dims[i]
        c_in = in_chans if i == 0 else embed_dims[i - 1]
        patch = 4 if i == 0 else 2
        side = img_size // 4 if i == 0 else (img_size // (2 ** (i + 1))) // 2  # official PatchEmbed.H
        n = side * side + (1 if i == 3 else 0)
        shapes += [(f'pos_embed{i + 1}', (1, n, c)),
                   (f'patch_embed{i + 1}.proj.weight', (c, c_in, patch, patch)),
                   (f'patch_embed{i + 1}.proj.bias', (c,)),
                   (f'patch_embed{i + 1}.norm.weight', (c,)), (f'patch_embed{i + 1}.norm.bias', (c,))]
        hidden = int(c * mlp_ratios[i])
        for j in range(depths[i]):
            p = f'block{i + 1}.{j}.'
            shapes += [(p + 'norm1.weight', (c,)), (p + 'norm1.bias', (c,)),
                       (p + 'attn.q.weight', (c, c)), (p + 'attn.q.bias', (c,)),
                       (p + 'attn.kv.weight', (2 * c, c)), (p + 'attn.kv.bias', (2 * c,)),
                       (p + 'attn.proj.weight', (c, c)), (p + 'attn.proj.bias', (c,))]
            r = sr_ratios[i]
            if r > 1:
                shapes += [(p + 'attn.sr.weight', (c, c, r, r)), (p + 'attn.sr.bias', (c,)),
                           (p + 'attn.norm.weight', (c,)), (p + 'attn.norm.bias', (c,))]
            shapes += [(p + 'norm2.weight', (c,)), (p + 'norm2.bias', (c,)),
                       (p + 'mlp.fc1.weight', (hidden, c)), (p + 'mlp.fc1.bias', (hidden,)),
                       (p + 'mlp.fc2.weight', (c, hidden)), (p + 'mlp.fc2.bias', (c,))]
    c = embed_dims[3]
    shapes += [('norm.weight', (c,)), ('norm.bias', (c,)), ('cls_token', (1, 1, c)),
               ('head.weight', (num_classes, c)), ('head.bias', (num_classes,))]
    return shapes


def official_state_dict(depths, seed=0, **kwargs):
    """Random tensors under the official keys: fan-in scaled weights, norm scales around one, small biases,
    position embeddings / class token of std 0.5 (so that their effect is visible)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in official_shapes(depths, **kwargs):
        if key.startswith(('pos_embed', 'cls_token')):
            t = torch.randn(shape, generator=g) * 0.5
        elif key.endswith('norm.weight') or key.endswith(('norm1.weight', 'norm2.weight')):
            t = torch.rand(shape, generator=g) * 0.5 + 0.75
        elif key.endswith('weight'):
            fan_in = math.prod(shape[1:])
            t = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        else:
            t = torch.randn(shape, generator=g) * 0.1
        sd[key] = t
    return sd


def _layer_norm(x, sd, key, eps):
    return F.layer_norm(x, x.shape[-1:], sd[key + '.weight'], sd[key + '.bias'], eps)


def _linear(x, sd, key):
    return x @ sd[key + '.weight'].t() + sd[key + '.bias']


def _attention(x, sd, p, heads, sr, h, w):
    b, n, c = x.shape
    d = c // heads
    q = _linear(x, sd, p + 'q').reshape(b, n, heads, d).permute(0, 2, 1, 3)
    if sr > 1:
        grid = x.permute(0, 2, 1).reshape(b, c, h, w)
        grid = F.conv2d(grid, sd[p + 'sr.weight'], sd[p + 'sr.bias'], stride=sr)
        x = _layer_norm(grid.reshape(b, c, -1).permute(0, 2, 1), sd, p + 'norm', 1e-5)
    kv = _linear(x, sd, p + 'kv').reshape(b, -1, 2, heads, d).permute(2, 0, 3, 1, 4)
    k, v = kv[0], kv[1]
    attn = ((q @ k.transpose(-2, -1)) * d ** -0.5).softmax(dim=-1)
    x = (attn @ v).transpose(1, 2).reshape(b, n, c)
    return _linear(x, sd, p + 'proj')


def _get_pos_embed(pos_embed, side, h, w, stage1_tokens):
    """The official ``_get_pos_embed``: resize unless H * W equals stage 1's token count at the build size."""
    if h * w == stage1_tokens:
        return pos_embed
    return F.interpolate(pos_embed.reshape(1, side, side, -1).permute(0, 3, 1, 2), size=(h, w),
                         mode='bilinear').reshape(1, -1, h * w).permute(0, 2, 1)


def official_forward(sd, x, depths, img_size=224, num_heads=NUM_HEADS, sr_ratios=SR_RATIOS):
    """Logits of the official PVT v1 (eval: no dropout / drop path) for images ``x``, in float64."""
    sd = {k: v.double() for k, v in sd.items()}
    x = x.double()
    b = x.shape[0]
    stage1_tokens = (img_size // 4) ** 2
    for i in range(4):
        patch = 4 if i == 0 else 2
        x = F.conv2d(x, sd[f'patch_embed{i + 1}.proj.weight'], sd[f'patch_embed{i + 1}.proj.bias'], stride=patch)
        h, w = x.shape[-2:]
        x = _layer_norm(x.flatten(2).transpose(1, 2), sd, f'patch_embed{i + 1}.norm', 1e-5)
        pos_embed = sd[f'pos_embed{i + 1}']
        side = img_size // 4 if i == 0 else (img_size // (2 ** (i + 1))) // 2
        if i == 3:
            x = torch.cat((sd['cls_token'].expand(b, -1, -1), x), dim=1)
            pos_embed = torch.cat(
                (pos_embed[:, :1], _get_pos_embed(pos_embed[:, 1:], side, h, w, stage1_tokens)), dim=1)
        else:
            pos_embed = _get_pos_embed(pos_embed, side, h, w, stage1_tokens)
        x = x + pos_embed
        for j in range(depths[i]):
            p = f'block{i + 1}.{j}.'
            x = x + _attention(_layer_norm(x, sd, p + 'norm1', 1e-6), sd, p + 'attn.', num_heads[i], sr_ratios[i],
                               h, w)
            y = F.gelu(_linear(_layer_norm(x, sd, p + 'norm2', 1e-6), sd, p + 'mlp.fc1'))
            x = x + _linear(y, sd, p + 'mlp.fc2')
        if i < 3:
            x = x.reshape(b, h, w, -1).permute(0, 3, 1, 2)
    x = _layer_norm(x, sd, 'norm', 1e-6)
    return _linear(x[:, 0], sd, 'head')
