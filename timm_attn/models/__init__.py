"""Model families; importing this package registers every model with timm."""
from . import san
from ._builder import PretrainedWeightsError
from ._checkpoint import CheckpointMismatchError
from .san import SAN

__all__ = ['san', 'SAN', 'PretrainedWeightsError', 'CheckpointMismatchError']
