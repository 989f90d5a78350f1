"""Multiply-adds and activations of one image through a model: the one counter behind the bench, the Hub
cards and the tests.

The count is torch's ``FlopCounterMode`` (convolutions and matrix products) with one rule that makes
it independent of the device and of the kernels it picks: ``scaled_dot_product_attention`` runs on its
math backend, so attention counts as its two matrix products (Q K^T and A V) everywhere. Left to
itself, SDPA dispatches to a fused kernel chosen per device and torch release; the CPU's fused kernel
(``_scaled_dot_product_flash_attention_for_cpu``) has no flop formula in some releases and counts as
zero, so the same model gave fewer GMACs on the CPU than on the meta device. Every other counted op
(``convolution``, ``mm``, ``addmm``, ``bmm``, ``baddbmm``) is dispatched above the backend kernels and
counts the same on CPU, CUDA and meta.

Counting on the meta device computes nothing: the largest models take a second.
"""
from typing import Dict, Sequence, Union

__all__ = ['count_gmacs', 'count_macs_and_activations']

# ops whose outputs are the activations (the fvcore convention: outputs of convolutions and matrix products)
_ACTIVATION_OPS = ('convolution', 'mm', 'bmm', 'baddbmm', 'addmm')


def count_macs_and_activations(model, input_size: Union[int, Sequence[int]]) -> Dict[str, float]:
    """``dict(gmacs=..., acts_m=...)`` for one image of ``input_size`` ((C, H, W), or a side for 3 x side x
    side) through ``model`` in eval mode without autograd, on the device of its parameters (meta
    included). GMACs are FLOPs / 2 / 1e9; activations (M) are the elements that convolutions and matrix
    products output."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class _Activations(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func.overloadpacket.__name__ in _ACTIVATION_OPS and isinstance(out, torch.Tensor):
                self.count += out.numel()
            return out

    if isinstance(input_size, int):
        input_size = (3, input_size, input_size)
    param = next(model.parameters())
    x = torch.randn(1, *input_size, device=param.device, dtype=param.dtype)
    flops, acts = FlopCounterMode(display=False), _Activations()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), flops, acts:
            model(x)
    finally:
        model.train(was_training)
    return dict(gmacs=flops.get_total_flops() / 2 / 1e9, acts_m=acts.count / 1e6)


def count_gmacs(model, img_size: Union[int, Sequence[int]], in_chans: int = 3) -> float:
    """GMACs of one ``in_chans`` x ``img_size`` image through ``model`` (see the module docstring)."""
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    return count_macs_and_activations(model, (in_chans, *size))['gmacs']
