"""Helpers shared by the families' ``checkpoint_filter_fn``: unwrapping official checkpoints and
refusing ones that do not fit the model with a message instead of a ``load_state_dict`` traceback."""
import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import torch
from torch import nn

from timm.models import clean_state_dict

__all__ = ['CheckpointMismatchError', 'unwrap_state_dict', 'check_state_dict', 'load_tensors_only',
           'read_checkpoint', 'map_official_resnet']

_WRAPPER_KEYS = ('state_dict', 'model', 'state_dict_ema', 'model_ema')
_EMA_KEYS = ('state_dict_ema', 'model_ema')


class CheckpointMismatchError(ValueError):
    """A checkpoint whose keys or shapes do not match the model it is loaded into."""


def unwrap_state_dict(checkpoint: Mapping[str, Any], use_ema: bool = False) -> Dict[str, torch.Tensor]:
    """Return the tensors of a training checkpoint: looks inside 'state_dict' / 'model' and strips the
    DataParallel ('module.') and torch.compile ('_orig_mod.') prefixes. ``use_ema`` looks inside
    'state_dict_ema' / 'model_ema' first, as ``timm.models.load_state_dict`` does."""
    for key in (_EMA_KEYS + _WRAPPER_KEYS if use_ema else _WRAPPER_KEYS):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            checkpoint = checkpoint[key]
            break
    return clean_state_dict(dict(checkpoint))  # timm's: strips 'module.' / '_orig_mod.' in either order


def map_official_resnet(
        state_dict: Mapping[str, Any],
        rules: Sequence[Tuple[str, Union[str, Callable[[re.Match], str]]]],
        drop: Sequence[str] = (),
) -> Dict[str, torch.Tensor]:
    """An official torchvision-style ResNet checkpoint (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
    ``downsample.0`` / ``.1``, ``fc``: the names of timm's ``ResNet``), as published (bare, in 'state_dict' /
    'model', 'module.' prefixed), in timm's layout: the backbone keys stay, every ``(pattern, repl)`` of
    ``rules`` (``re.sub`` arguments, applied in order, each to every key) renames the attention modules';
    keys matching a pattern of ``drop`` (``re.search``: official buffers that are a function of the
    architecture) are left out."""
    converted = {}
    for k, v in unwrap_state_dict(state_dict).items():
        if any(re.search(pattern, k) for pattern in drop):
            continue
        for pattern, repl in rules:
            k = re.sub(pattern, repl, k)
        converted[k] = v
    return converted


StateDict = TypeVar('StateDict', bound=Mapping[str, torch.Tensor])


def check_state_dict(
        state_dict: StateDict,
        model: nn.Module,
        what: str,
        adaptable: Iterable[str] = (),
        show: int = 5,
) -> StateDict:
    """Return ``state_dict`` when it fits ``model``; else raise ``CheckpointMismatchError`` naming the first
    missing, unexpected and mis-shaped keys.

    ``adaptable`` lists keys whose shape timm itself adapts after the filter (the classifier when
    num_classes differs, the first conv when in_chans differs); their shapes are not compared, and they
    may be absent from the model (a classifier dropped with num_classes=0).
    """
    expected = model.state_dict()
    adaptable = set(adaptable)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected and k not in adaptable]
    shapes = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}'
        for k, v in expected.items()
        if k in state_dict and k not in adaptable and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return state_dict
    lines = [f'checkpoint does not fit {what}:']
    for title, items in (('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatches', shapes)):
        if items:
            more = f' (+{len(items) - show} more)' if len(items) > show else ''
            lines.append(f'  {len(items)} {title}: ' + ', '.join(items[:show]) + more)
    lines.append('  Is it a checkpoint of another variant or architecture?')
    raise CheckpointMismatchError('\n'.join(lines))


class _Opaque:
    """Stand-in for a pickled object of a class outside torch's weights-only allowlist: it accepts
    whatever the pickle stream hands it (constructor arguments, state) and does nothing with it."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):  # a global used as a reduce callable
        return _Opaque()


def load_tensors_only(path: str) -> Dict[str, Any]:
    """Load a training checkpoint that ``torch.load(weights_only=True)`` refuses only because it also
    pickles objects of other classes (e.g. the yacs ``config`` that Swin-style ``save_checkpoint``
    stores next to ``'model'``). Globals on torch's weights-only allowlist load as usual; every other
    global becomes an inert ``_Opaque`` placeholder, so nothing of the file's choosing is imported or
    called. Returns the checkpoint with the placeholders dropped, and ``'_skipped'``: the names of
    the globals that were replaced.

    Every callable the stream can reach comes from ``find_class`` (REDUCE, NEWOBJ, the extension
    registry and dotted names all go through it), so it is an allowlisted global or a placeholder;
    BUILD may set attributes, ``__class__`` included, only to such objects. A stream that uses a
    placeholder where the real object is needed raises ``ValueError`` (tests/test_checkpoint_safety.py
    tries o.pth's ``partial`` / ``getattr`` / ``posix.system`` chain, BUILD with slot state, NEWOBJ on
    allowlisted classes and ``__class__`` swaps)."""
    import _compat_pickle
    import pickle
    import types

    from torch._weights_only_unpickler import _get_allowed_globals

    allowed = _get_allowed_globals()
    skipped = []

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            # protocol 0-2 streams name Python 2 modules ('__builtin__.set'): map them as pickle itself does
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            key = f'{module}.{name}'
            if key in allowed:
                return allowed[key]
            skipped.append(key)
            return type(name, (_Opaque,), {'__module__': 'timm_attn.opaque'})

    pickle_module = types.SimpleNamespace(Unpickler=Unpickler, load=pickle.load, __name__='tensors_only_pickle')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=False, pickle_module=pickle_module)
    except Exception as e:  # a placeholder used where the stream needs the real object: a crafted or broken file
        raise ValueError(f'{path} cannot be read as a checkpoint: {type(e).__name__}: {e} (globals outside '
                         f"torch's weights-only allowlist, replaced: {sorted(set(skipped))})") from e

    def strip(obj):  # drop the placeholders from (nested) dicts
        if isinstance(obj, Mapping):
            return {k: strip(v) for k, v in obj.items() if not isinstance(v, _Opaque)}
        return obj

    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{path} does not hold a dict of tensors (found {type(checkpoint).__name__})')
    checkpoint = strip(checkpoint)
    checkpoint['_skipped'] = sorted(set(skipped))
    return checkpoint


def read_checkpoint(path: str, use_ema: bool = True) -> Tuple[Dict[str, torch.Tensor], Optional[List[str]]]:
    """The state dict of a checkpoint file, read once: ``.safetensors``, or ``torch.load(weights_only=True)``
    (``argparse.Namespace`` allowed, as timm does for its train.py checkpoints),
    falling back to ``load_tensors_only`` for a file that also pickles objects of other classes; then
    unwrapped like ``timm.models.load_state_dict(path, use_ema)`` (``unwrap_state_dict``). Returns the
    state dict and the names of the pickled globals that were replaced (``None`` when the file loaded
    weights-only)."""
    import argparse
    import pickle
    skipped = None
    if str(path).endswith('.safetensors'):
        import safetensors.torch
        checkpoint = safetensors.torch.load_file(path, device='cpu')
    else:
        try:
            # argparse.Namespace: timm train.py's 'args', allowed as timm's own load_state_dict does
            with torch.serialization.safe_globals([argparse.Namespace]):
                checkpoint = torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError:
            checkpoint = load_tensors_only(path)
            skipped = checkpoint.pop('_skipped')
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{path} does not hold a dict of tensors (found {type(checkpoint).__name__})')
    return unwrap_state_dict(checkpoint, use_ema=use_ema), skipped
