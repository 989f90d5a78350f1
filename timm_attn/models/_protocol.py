"""Pieces of timm's model protocol that the plugin's own model classes share."""
from torch import nn

__all__ = ['reset_head']


def reset_head(model: nn.Module, num_classes: int, **head_kwargs) -> None:
    """``model.head.reset(num_classes, **head_kwargs)`` for ``reset_classifier``, with the new layers on the
    model's device and dtype and in its train / eval mode.

    timm's contract (its test suite builds models on the meta device): ``reset_classifier(0)`` then
    ``reset_classifier(2)`` on a model moved to another device / dtype must not bring back a CPU float32
    ``nn.Linear`` in training mode. timm's heads take the device and dtype of their own parameters, and
    a head without a classifier (``ClassifierHead`` after ``reset(0)``) has none, so the new layers are
    moved here."""
    ref = next(model.parameters())
    model.num_classes = num_classes
    model.head.reset(num_classes, **head_kwargs)
    model.head.to(device=ref.device, dtype=ref.dtype).train(model.training)
