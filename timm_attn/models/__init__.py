"""Model families; importing this package registers every model with timm."""
from . import coatnet, gsa, san
from ._builder import PretrainedWeightsError
from ._checkpoint import CheckpointMismatchError
from .coatnet import CoAtNet
from .gsa import GSAResNet
from .san import SAN

__all__ = ['coatnet', 'gsa', 'san', 'CoAtNet', 'GSAResNet', 'SAN', 'PretrainedWeightsError', 'CheckpointMismatchError']
