"""``tensor_cache``: an ``lru_cache`` for functions that build constant tensors (index maps, masks, grids),
bypassed while a graph is being captured.

Under ``torch.export`` (non-strict), ``torch.compile`` and ``torch.jit.trace`` the tensors a function builds are
fake or symbolic; cached, they would be returned to later eager calls (``torch.export`` of ACmix once left a
``FakeTensor`` position grid that every later eager forward of the process used). While capturing, the function
runs uncached, so that its ops are part of the graph and the cache only ever holds real tensors.
"""
import functools
from typing import Callable, TypeVar

import torch

__all__ = ['is_capturing', 'tensor_cache']

F = TypeVar('F', bound=Callable)


def is_capturing() -> bool:
    """True while torch.compile / torch.export / torch.jit.trace record a graph (also the ONNX exporter)."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def tensor_cache(maxsize: int) -> Callable[[F], F]:
    """``functools.lru_cache(maxsize)`` outside graph capture; a plain call inside it."""
    def decorate(fn: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(fn)

        @functools.wraps(fn)
        def wrapper(*args):
            if is_capturing():
                return fn(*args)
            return cached(*args)

        wrapper.cache_clear = cached.cache_clear
        wrapper.cache_info = cached.cache_info
        return wrapper
    return decorate
