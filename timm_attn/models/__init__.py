"""Model families; importing this package registers every model with timm."""
from . import coatnet, san
from . import context_resnet
from ._builder import PretrainedWeightsError
from ._checkpoint import CheckpointMismatchError
from .coatnet import CoAtNet
from .context_resnet import ContextResNet
from .san import SAN

__all__ = ['coatnet', 'san', 'context_resnet', 'CoAtNet', 'ContextResNet', 'SAN', 'PretrainedWeightsError', 'CheckpointMismatchError']
