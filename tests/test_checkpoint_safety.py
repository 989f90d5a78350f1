"""Crafted checkpoints against ``read_checkpoint`` / ``load_tensors_only``.

``load_tensors_only`` runs a plain ``pickle.Unpickler`` whose ``find_class`` hands out only globals on
torch's weights-only allowlist (others become inert placeholders). These files try to reach something
else through the unusual corners of the pickle machine: the malicious o.pth once committed to this
repository (``functools.partial`` whose function is swapped by BUILD, ``getattr``, ``posix.system``),
BUILD with slot state, NEWOBJ on allowlisted classes, ``__class__`` swaps, and allowlisted rebuild
functions fed a forbidden callable. Each file is also loaded with plain pickle as the control: there
the payload runs (it touches a marker file in ``tmp_path``), so the test can tell when it is stopped.
An audit hook records whether a command, exec or compile was attempted during the safe load.
"""
import collections
import functools
import os
import pickle
import sys
import types

import pytest
import torch

from timm_attn.models._checkpoint import load_tensors_only, read_checkpoint

_DANGEROUS_EVENTS = ('os.system', 'os.exec', 'os.posix_spawn', 'os.spawn', 'os.fork', 'subprocess.Popen',
                     'exec', 'compile', 'ctypes.dlopen', 'socket.connect')
_audit = {'on': False, 'events': []}


def _hook(event, args):
    if _audit['on'] and event.startswith(_DANGEROUS_EVENTS):
        _audit['events'].append(event)


sys.addaudithook(_hook)  # audit hooks cannot be removed: it records only while _audit['on']


class Raw:
    """Raw pickle opcodes (bytes) interleaved with objects pickled as usual, written by RawPickler: the
    stream an attacker writes by hand."""

    def __init__(self, *parts):
        self.parts = parts


class RawPickler(pickle._Pickler):  # the pure-Python pickler, so that save() can be extended
    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Raw):
            for part in obj.parts:
                self.write(part) if isinstance(part, bytes) else self.save(part)
            return
        super().save(obj, save_persistent_id)


def _save_crafted(obj, path):
    """``torch.save`` (zip container, tensors as persistent ids) with ``Raw`` parts written verbatim."""
    torch.save(obj, path, pickle_module=types.SimpleNamespace(Pickler=RawPickler, __name__='pickle'))


class CommandCounter(collections.Counter):
    """A Counter whose item assignment runs a command: the class that a ``__class__`` swap installs."""

    def __setitem__(self, key, value):
        os.system(f'touch {value}')


def _o_pth(marker):
    """The payload of the o.pth removed from the repository root (commit 3b3a3e5): next to real weights,
    NEWOBJ + BUILD on an allowlisted class, a REDUCE of ``posix.system``, and a ``functools.partial``
    (of ``print`` here, of ``getattr(C, '__new__')`` there) whose function and arguments BUILD replaces
    before it is called."""
    w = {'w': torch.arange(2.)}
    return {
        'model': w,
        'a': Raw(collections.OrderedDict, pickle.EMPTY_TUPLE, pickle.NEWOBJ, {'x': 3}, pickle.BUILD),
        'b': Raw(os.system, (f'touch {marker}-system',), pickle.REDUCE),
        'c': Raw(functools.partial, (print,), pickle.REDUCE,
                 (os.system, (f'touch {marker}-partial',), None, None), pickle.BUILD,
                 pickle.EMPTY_TUPLE, pickle.REDUCE),
        'd': Raw(getattr, (collections.OrderedDict, '__new__'), pickle.REDUCE),
        'model_ema': w,
    }


def _class_swap(marker):
    """NEWOBJ on the allowlisted ``collections.Counter``, BUILD with slot state ``{'__class__': ...}``,
    then SETITEMS: under plain pickle the item assignment is CommandCounter's and runs a command."""
    return {'model': {'w': torch.ones(2)},
            'swap': Raw(collections.Counter, pickle.EMPTY_TUPLE, pickle.NEWOBJ,
                        (None, {'__class__': CommandCounter}), pickle.BUILD,
                        pickle.MARK, 'k', f'{marker}-counter', pickle.SETITEMS)}


def _rebuild_with_forbidden_callable(marker):
    """``torch._tensor._rebuild_from_type_v2`` (allowlisted) calls its first argument: here ``posix.system``."""
    from torch._tensor import _rebuild_from_type_v2
    return {'model': {'w': torch.ones(2)},
            'r': Raw(_rebuild_from_type_v2, (os.system, torch.Tensor, (f'touch {marker}-rebuild',), {}),
                     pickle.REDUCE)}


def _dotted_name(marker):
    """PROTO 4 switched on mid-stream, then STACK_GLOBAL of ``torch.serialization`` / ``os.system``: protocol 4
    resolves dotted names by walking attributes from a module torch's allowlist draws on."""
    return {'model': {'w': torch.ones(2)},
            'x': Raw(pickle.PROTO + b'\x04', 'torch.serialization', 'os.system', pickle.STACK_GLOBAL,
                     (f'touch {marker}-dotted',), pickle.REDUCE)}


def _plain_load(path):
    return torch.load(path, weights_only=False)


def _safe_load(path):
    _audit.update(on=True, events=[])
    try:
        return load_tensors_only(str(path))
    except ValueError as e:
        return e
    finally:
        _audit['on'] = False


def _markers(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith('ran'))


def test_o_pth_payload_runs_nothing(tmp_path):
    marker = tmp_path / 'ran'
    path = tmp_path / 'o.pth'
    _save_crafted(_o_pth(marker), path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    _plain_load(path)  # control: plain unpickling runs both commands
    assert _markers(tmp_path) == ['ran-partial', 'ran-system']
    for p in tmp_path.iterdir():
        if p.name.startswith('ran'):
            p.unlink()

    out = _safe_load(path)
    assert _markers(tmp_path) == [] and _audit['events'] == []
    # the placeholders are dropped, the tensors load
    assert not isinstance(out, Exception)
    assert torch.equal(out['model']['w'], torch.arange(2.)) and torch.equal(out['model_ema']['w'], torch.arange(2.))
    assert {'posix.system', 'functools.partial', 'builtins.getattr'} <= set(out['_skipped'])
    state_dict, skipped = read_checkpoint(str(path))
    assert set(state_dict) == {'w'} and 'posix.system' in skipped and _markers(tmp_path) == []


@pytest.mark.filterwarnings('ignore:Detected pickle protocol 4')
@pytest.mark.parametrize('payload', [_class_swap, _rebuild_with_forbidden_callable, _dotted_name])
def test_allowlisted_globals_used_in_unusual_ways_call_nothing_else(payload, tmp_path):
    marker = tmp_path / 'ran'
    path = tmp_path / 'crafted.pth'
    _save_crafted(payload(marker), path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    try:
        _plain_load(path)  # control
    except Exception:
        pass
    assert _markers(tmp_path), 'the control load did not run the payload: the file does not test anything'
    for p in tmp_path.iterdir():
        if p.name.startswith('ran'):
            p.unlink()

    out = _safe_load(path)
    assert _markers(tmp_path) == [] and _audit['events'] == []
    if isinstance(out, Exception):  # a placeholder where the stream needs the real object: a clear refusal
        assert 'cannot be read as a checkpoint' in str(out)
        with pytest.raises(ValueError, match='cannot be read as a checkpoint'):
            read_checkpoint(str(path))
    else:
        assert torch.equal(out['model']['w'], torch.ones(2)) and out['_skipped']
    assert _markers(tmp_path) == []
