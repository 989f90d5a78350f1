"""Model families; importing this package registers every model with timm."""
from . import attention_resnet, coatnet, resattnet, san
from .attention_resnet import AttentionResNet
from ._builder import PretrainedWeightsError
from ._checkpoint import CheckpointMismatchError
from .coatnet import CoAtNet
from .resattnet import ResidualAttentionNet
from .san import SAN

__all__ = [
    'attention_resnet', 'coatnet', 'resattnet', 'san', 'AttentionResNet', 'CoAtNet', 'ResidualAttentionNet', 'SAN',
    'PretrainedWeightsError', 'CheckpointMismatchError',
]
