"""Model families; importing this package registers every model with timm."""
from . import coatnet, san
from ._builder import PretrainedWeightsError
from ._checkpoint import CheckpointMismatchError
from .coatnet import CoAtNet
from .san import SAN

__all__ = ['coatnet', 'san', 'CoAtNet', 'SAN', 'PretrainedWeightsError', 'CheckpointMismatchError']
