"""Conv -> BatchNorm [-> ReLU] as a plain ``nn.Sequential`` (keys ``0.*`` conv, ``1.*`` BN): the one conv-BN builder.

The context modules (APNB / AFNB, OCR, RGA, IAU) and BAM embed features with this unit; their official code
writes it as an ``nn.Sequential`` too, so the keys ``<name>.0.weight``, ``<name>.1.running_mean`` ... match
the official checkpoints. timm's ``ConvNormAct`` would name them ``conv`` / ``bn``. Where the official code
chains several units in one ``nn.Sequential`` (keys ``0`` .. ``n``), unpack them: ``nn.Sequential(*conv_bn(..),
*conv_bn(..))``.
"""
from typing import Any, Dict, Optional

from torch import nn

__all__ = ['conv_bn']


def conv_bn(
        in_chs: int,
        out_chs: int,
        kernel_size: int = 1,
        dilation: int = 1,
        bias: bool = False,
        relu: bool = False,
        inplace: bool = True,
        zero_init: bool = False,
        dd: Optional[Dict[str, Any]] = None,
) -> nn.Sequential:
    """``nn.Sequential(Conv2d, BatchNorm2d[, ReLU])``: a 'same' (odd ``kernel_size``) stride-1 conv with padding
    ``dilation * (kernel_size // 2)``. ``zero_init``: the BN weight starts at 0 (a residual branch that is the
    identity at init); ``dd``: the ``device`` / ``dtype`` dict of the caller."""
    dd = dd or {}
    conv = nn.Conv2d(
        in_chs, out_chs, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation, bias=bias, **dd)
    bn = nn.BatchNorm2d(out_chs, **dd)
    if zero_init:
        nn.init.zeros_(bn.weight)
    return nn.Sequential(conv, bn, nn.ReLU(inplace=inplace)) if relu else nn.Sequential(conv, bn)
