"""timm-attn: attention architectures (SAN, ...) as timm models.

``import timm_attn`` registers every model with timm's registry. Installed with pip, the plugin is
also imported automatically the first time a program imports ``timm`` (see ``timm_attn._autoload``),
so timm's own scripts see the models; set ``TIMM_ATTN_AUTOLOAD=0`` to switch that off.
"""
__version__ = '0.1.0'

from . import layers, models
from .hub import HUB_NAMESPACE

__all__ = ['layers', 'models', 'HUB_NAMESPACE', '__version__']
