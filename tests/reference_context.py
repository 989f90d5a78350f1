"""Shared float64 helpers of the context-layer references (tests/test_context_layers.py, tests/test_zoo_options.py):
explicit channel products and BatchNorm formulas on one image, no module code reused."""
import torch
from torch import nn


def randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere (zero-initialised gammas / BNs would hide the attention) and random
    BN running statistics; float64, eval mode."""
    g = torch.Generator().manual_seed(seed)
    module = module.double().eval()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g, dtype=torch.double) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g, dtype=torch.double) + 0.5)
    return module


def conv1x1(x, conv):
    """1x1 conv as an explicit channel matrix product; x (C, ...) of one image."""
    w = conv.weight[:, :, 0, 0]
    y = torch.einsum('oc,c...->o...', w, x)
    if conv.bias is not None:
        y = y + conv.bias.view(-1, *([1] * (x.dim() - 1)))
    return y


def bn(x, m):
    shape = (-1,) + (1,) * (x.dim() - 1)
    return (x - m.running_mean.view(shape)) / torch.sqrt(m.running_var.view(shape) + m.eps) * m.weight.view(shape) \
        + m.bias.view(shape)


def cbr(x, seq):
    """conv1x1 -> BN -> ReLU given as a Sequential (conv, bn, relu)."""
    return bn(conv1x1(x, seq[0]), seq[1]).relu()


def softmax(v):
    e = torch.exp(v - v.max())
    return e / e.sum()
