"""What timm's ``ResNet`` asks of a bottleneck whose 3x3 conv is replaced by an attention module.

``timm.models.resnet.make_blocks`` passes every block the same keyword arguments (``cardinality``,
``aa_layer``, ``dilation``, ``first_dilation``, ...). GSA-Net's and ACmix's bottlenecks take the ones
they use by name and hand the rest to ``check_bottleneck_args``, which refuses the settings the
attention module cannot honour instead of silently building another network.
"""
from typing import Optional

__all__ = ['check_bottleneck_args']


def check_bottleneck_args(
        block: str,
        cardinality: int = 1,
        aa_layer: Optional[type] = None,
        dilation: int = 1,
        first_dilation: Optional[int] = None,
        allow_dilation: bool = False,
) -> None:
    """Raise ValueError for grouped widths (``cardinality != 1``) or anti-aliased strides (``aa_layer``),
    which have no counterpart in the attention module, and for dilation (timm's ``output_stride`` 8 / 16)
    unless ``allow_dilation`` (global attention has no footprint to dilate). An argument timm does not
    pass raises TypeError."""
    if cardinality != 1 or aa_layer is not None:
        raise ValueError(f'{block} supports neither grouped widths (cardinality) nor anti-aliasing (aa_layer)')
    if not allow_dilation and (dilation != 1 or (first_dilation or 1) != 1):
        raise ValueError(f'{block} supports output_stride 32 only (its attention has no dilation)')
