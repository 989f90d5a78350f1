"""Attention layers by name: the plugin's modules, then timm's.

    get_attn('fca')            -> MultiSpectralAttention
    get_attn('se')             -> timm.layers.SEModule (timm's own names pass through to timm.layers.get_attn)
    create_attn('cbam', 256)   -> CBAM(256)

timm's ``ResNet`` / ``ByobNet`` resolve a string ``attn_layer`` with timm's own factory, which asserts on
names it does not know; give them ``get_attn(name)`` (a class or partial) instead of the plugin's string.
``ATTN_LAYERS`` is a plain dict (name -> class or functools.partial taking ``(channels, **kwargs)``):
new modules register by adding an entry.
"""
from functools import partial
from typing import Any, Callable, Dict, Optional, Union

from torch import nn

from timm.layers import get_attn as timm_get_attn

from .context import IAU, ChannelAttention, ChannelIAU, CrissCrossAttention, DoubleAttention, DualAttention, \
    PositionAttention, PyramidNonLocal, RelationAwareAttention, SpatialIAU
from .gates import BAM, CBAM, SCSE, ChannelSE, GatherExcite, GSoPAttention, MultiSpectralAttention, \
    SpatialPyramidAttention, SpatialSE

__all__ = ['ATTN_LAYERS', 'get_attn', 'create_attn']

_GE_THETA_PLUS = partial(GatherExcite, extra_params=True, use_mlp=True)

ATTN_LAYERS: Dict[str, Callable[..., nn.Module]] = {
    # Gather-Excite, global extent (the paper's best setting); 'ge' is the paper's best variant, GE-theta-plus
    'ge': _GE_THETA_PLUS,
    'ge_theta_minus': GatherExcite,
    'ge_theta': partial(GatherExcite, extra_params=True),
    'ge_theta_plus': _GE_THETA_PLUS,
    'spa': SpatialPyramidAttention,
    'cbam': CBAM,  # paper-faithful CBAM (timm's 'cbam' differs: see timm_attn.layers.gates.cbam); timm's: 'timm_cbam'
    'bam': BAM,
    'cse': ChannelSE,
    'sse': SpatialSE,
    'scse': SCSE,
    'fca': MultiSpectralAttention,
    'gsop': GSoPAttention,
    # context modules (segmentation / re-ID heads in their papers), usable per block too
    'a2': DoubleAttention,
    'da': DualAttention,
    'da_pam': PositionAttention,
    'da_cam': ChannelAttention,
    'cc': CrissCrossAttention,
    'apnb': PyramidNonLocal,
    'iau': IAU,
    'ciau': ChannelIAU,
    'siau': SpatialIAU,
    'rga': RelationAwareAttention,
}


def get_attn(
        attn_type: Union[str, bool, None, Callable[..., nn.Module], nn.Module],
) -> Optional[Callable[..., nn.Module]]:
    """The class (or partial) for ``attn_type``: a plugin name, one of timm's names ('se', 'eca', 'gc', 'sk',
    'nl', ...; 'timm_<name>' forces timm's), a class / partial (returned as is) or None / False (None).

    Raises ValueError naming the known names for an unknown string (timm's factory asserts instead)."""
    if isinstance(attn_type, str):
        name = attn_type.lower()
        if name in ATTN_LAYERS:
            return ATTN_LAYERS[name]
        timm_name = name[len('timm_'):] if name.startswith('timm_') else name
        try:
            return timm_get_attn(timm_name)
        except AssertionError:
            raise ValueError(
                f'unknown attention layer {attn_type!r}; plugin names: {", ".join(sorted(ATTN_LAYERS))}; '
                f"timm's names: se, ese, eca, ecam, ceca, ge, gc, gca, cbam, lcbam, coord, scoord, ela, strip, sk, "
                f'splat, lambda, bottleneck, halo, nl, bat (prefix timm_ to pick timm\'s over a plugin name)') from None
    return timm_get_attn(attn_type)


def create_attn(attn_type, channels: int, **kwargs: Any) -> Optional[nn.Module]:
    """``get_attn(attn_type)(channels, **kwargs)``, or None when ``attn_type`` is None / False."""
    module_cls = get_attn(attn_type)
    return None if module_cls is None else module_cls(channels, **kwargs)
