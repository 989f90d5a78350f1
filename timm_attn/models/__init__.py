"""Model families; importing this package registers every model with timm."""
from . import acmix, attention_resnet, coatnet, context_resnet, gsa, resattnet, san
from ._builder import PretrainedWeightsError
from ._checkpoint import CheckpointMismatchError
from .acmix import ACmixResNet, ACmixSwinTransformer
from .attention_resnet import AttentionResNet
from .coatnet import CoAtNet
from .context_resnet import ContextResNet
from .gsa import GSAResNet
from .resattnet import ResidualAttentionNet
from .san import SAN

__all__ = [
    'acmix', 'attention_resnet', 'coatnet', 'context_resnet', 'gsa', 'resattnet', 'san',
    'ACmixResNet', 'ACmixSwinTransformer', 'AttentionResNet', 'CoAtNet', 'ContextResNet', 'GSAResNet',
    'ResidualAttentionNet', 'SAN', 'PretrainedWeightsError', 'CheckpointMismatchError',
]
