"""Helpers shared by the families' ``checkpoint_filter_fn``: unwrapping official checkpoints and
refusing ones that do not fit the model with a message instead of a ``load_state_dict`` traceback."""
from typing import Any, Dict, Iterable, Mapping

import torch
from torch import nn

from timm.models import clean_state_dict

__all__ = ['CheckpointMismatchError', 'unwrap_state_dict', 'check_state_dict']

_WRAPPER_KEYS = ('state_dict', 'model', 'state_dict_ema', 'model_ema')


class CheckpointMismatchError(ValueError):
    """A checkpoint whose keys or shapes do not match the model it is loaded into."""


def unwrap_state_dict(checkpoint: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """Return the tensors of a training checkpoint: looks inside 'state_dict' / 'model' and strips the
    DataParallel ('module.') and torch.compile ('_orig_mod.') prefixes."""
    for key in _WRAPPER_KEYS:
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            checkpoint = checkpoint[key]
            break
    return clean_state_dict(dict(checkpoint))  # timm's: strips 'module.' / '_orig_mod.' in either order


def check_state_dict(
        state_dict: Mapping[str, torch.Tensor],
        model: nn.Module,
        what: str,
        adaptable: Iterable[str] = (),
        show: int = 5,
) -> None:
    """Raise ``CheckpointMismatchError`` naming the first missing, unexpected and mis-shaped keys.

    ``adaptable`` lists keys whose shape timm itself adapts after the filter (the classifier when
    num_classes differs, the first conv when in_chans differs); their shapes are not compared.
    """
    expected = model.state_dict()
    adaptable = set(adaptable)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}'
        for k, v in expected.items()
        if k in state_dict and k not in adaptable and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return
    lines = [f'checkpoint does not fit {what}:']
    for title, items in (('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatches', shapes)):
        if items:
            more = f' (+{len(items) - show} more)' if len(items) > show else ''
            lines.append(f'  {len(items)} {title}: ' + ', '.join(items[:show]) + more)
    lines.append('  Is it a checkpoint of another variant or architecture?')
    raise CheckpointMismatchError('\n'.join(lines))
