"""Model families; importing this package registers every model with timm."""
# timm's walker over modules with ``init_non_persistent_buffers()`` (not exported by ``timm.models``):
# after ``to_empty()`` it recomputes the buffers that checkpoints do not hold, in timm's models and ours
from timm.models._manipulate import reinit_non_persistent_buffers

from . import acmix, acmix_san_pvt, attention_resnet, coatnet, gsa, pvt, resattnet, san
from ._builder import PretrainedWeightsError
from ._checkpoint import CheckpointMismatchError
from .acmix import ACmixResNet, ACmixSwinTransformer
from .acmix_san_pvt import ACmixPvt, ACmixSAN
from .attention_resnet import AttentionResNet, ContextResNet, SecondOrderResNet
from .coatnet import CoAtNet
from .gsa import GSAResNet
from .pvt import PyramidVisionTransformer
from .resattnet import ResidualAttentionNet
from .san import SAN


def plugin_models(pattern: str = '*') -> list:
    """Sorted names of the registered models that timm-attn provides (timm's public registry API)."""
    import timm
    return [n for n in timm.list_models(pattern) if timm.models.model_entrypoint(n).__module__.startswith('timm_attn.')]


__all__ = [
    'acmix', 'acmix_san_pvt', 'attention_resnet', 'coatnet', 'gsa', 'pvt', 'resattnet', 'san',
    'ACmixPvt', 'ACmixResNet', 'ACmixSAN', 'ACmixSwinTransformer', 'AttentionResNet', 'CoAtNet', 'ContextResNet',
    'GSAResNet', 'PyramidVisionTransformer', 'ResidualAttentionNet', 'SAN', 'SecondOrderResNet',
    'PretrainedWeightsError', 'CheckpointMismatchError', 'plugin_models', 'reinit_non_persistent_buffers',
]
