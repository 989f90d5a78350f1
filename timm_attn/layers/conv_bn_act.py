"""Conv -> BatchNorm -> ReLU as a plain ``nn.Sequential`` (keys ``0.*`` conv, ``1.*`` BN).

The context modules (APNB / AFNB, OCR, RGA, IAU) all embed features with this unit; their official code
writes it as an ``nn.Sequential`` too, so the keys ``<name>.0.weight``, ``<name>.1.running_mean`` ... match
the official checkpoints. timm's ``ConvNormAct`` would name them ``conv`` / ``bn``.
"""
from typing import Any, Dict, Optional

from torch import nn

__all__ = ['conv_bn_relu']


def conv_bn_relu(
        in_chs: int,
        out_chs: int,
        kernel_size: int = 1,
        bias: bool = False,
        inplace: bool = True,
        dd: Optional[Dict[str, Any]] = None,
) -> nn.Sequential:
    """``nn.Sequential(Conv2d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, bias), BatchNorm2d, ReLU)``:
    a 'same' (odd ``kernel_size``) stride-1 conv; ``dd``: the ``device`` / ``dtype`` dict of the caller."""
    dd = dd or {}
    return nn.Sequential(
        nn.Conv2d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, bias=bias, **dd),
        nn.BatchNorm2d(out_chs, **dd),
        nn.ReLU(inplace=inplace),
    )
