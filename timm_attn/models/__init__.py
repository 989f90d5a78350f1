"""Model families; importing this package registers every model with timm."""
from . import acmix, coatnet, san
from ._builder import PretrainedWeightsError
from ._checkpoint import CheckpointMismatchError
from .acmix import ACmixResNet, ACmixSwinTransformer
from .coatnet import CoAtNet
from .san import SAN

__all__ = ['acmix', 'coatnet', 'san', 'ACmixResNet', 'ACmixSwinTransformer', 'CoAtNet', 'SAN', 'PretrainedWeightsError', 'CheckpointMismatchError']
