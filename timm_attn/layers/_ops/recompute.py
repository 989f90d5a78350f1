"""Recomputation in backward for layers that contain BatchNorm.

``torch.utils.checkpoint`` runs a function twice in a training step (forward, then again in backward),
and a BatchNorm inside would update its running statistics twice. Functions given to
``recompute_in_backward`` take an ``update_stats`` flag that is True only on the first call, and use
``batch_norm_train`` for their BatchNorms: the recomputation normalises with the same batch
statistics and updates the running ones with factor 0, so values, gradients and buffers are exactly
those of the plain layer, and the autograd graph of both calls is the same.

That holds for plain BatchNorms only (``is_plain_batchnorm``): ``recompute_in_backward`` is told the
BatchNorms of the recomputed function and runs it once, without recomputation, when any of them is not
plain (e.g. a ``SyncBatchNorm``, which ``batch_norm_train`` calls as a module): a recomputation would issue
its collective a second time and save other tensors than the first call (``CheckpointError``).
"""
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .caching import is_capturing

from .batchnorm import is_plain_batchnorm

__all__ = ['batch_norm_train', 'recompute_in_backward', 'running_stats_factor']


def running_stats_factor(bn: nn.BatchNorm2d, update_stats: bool) -> float:
    """The exponential-average factor ``nn.BatchNorm2d`` would use for this training step (counting the
    step), or 0.0 (running statistics left as they are) for a recomputation."""
    if not update_stats:
        return 0.0
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    return bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)


def batch_norm_train(bn: nn.BatchNorm2d, x: torch.Tensor, update_stats: bool = True) -> torch.Tensor:
    """``bn(x)`` in training mode; with ``update_stats=False`` the running statistics stay as they are.
    A BatchNorm that is not plain (``is_plain_batchnorm``) is called; it cannot skip its update."""
    if not is_plain_batchnorm(bn):
        if not update_stats:
            raise RuntimeError(f'{type(bn).__name__} is not a plain BatchNorm: it cannot be recomputed')
        return bn(x)
    factor = running_stats_factor(bn, update_stats)
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, True, factor, bn.eps)


def recompute_in_backward(
        fn: Callable[..., torch.Tensor], *args: torch.Tensor, norms: Iterable[nn.Module] = (),
) -> torch.Tensor:
    """``fn(update_stats, *args)``, keeping only ``args`` and the result for backward. ``norms``: the BatchNorms
    ``fn`` uses; when one is not plain (``is_plain_batchnorm``), ``fn(True, *args)`` runs once, stored as usual."""
    if is_capturing() or not all(is_plain_batchnorm(bn) for bn in norms):
        # torch.compile / export: a checkpoint whose function updates BatchNorm buffers is an unsafe side effect
        # for dynamo (a graph break at every call); the compiled graph stores or rematerialises as it decides
        return fn(True, *args)
    calls = [0]

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return fn(calls[0] == 1, *inputs)

    return checkpoint(run, *args, use_reentrant=False)
