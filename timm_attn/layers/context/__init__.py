"""Context modules: non-local style aggregation of global context (segmentation / re-ID heads in their papers)."""
from .asymmetric_nonlocal import FusionNonLocal, PyramidNonLocal, pyramid_pool
from .criss_cross import CrissCrossAttention
from .double_attention import DoubleAttention
from .dual_attention import ChannelAttention, DualAttention, PositionAttention
from .iau import IAU, ChannelIAU, SpatialIAU
from .object_context import ObjectContext
from .rga import RelationAwareAttention

__all__ = [
    'FusionNonLocal', 'PyramidNonLocal', 'pyramid_pool', 'CrissCrossAttention', 'DoubleAttention',
    'ChannelAttention', 'DualAttention', 'PositionAttention', 'IAU', 'ChannelIAU', 'SpatialIAU', 'ObjectContext',
    'RelationAwareAttention',
]
