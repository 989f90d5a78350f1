"""The one chunk-size policy of the inference paths that split a batch to bound their temporaries.

Without autograd, the items of a batch (images, or (image, head) groups) are independent, so an op may run
them in chunks. A chunk holds at most ``chunk_numel(device)`` elements of the op's largest temporary, so that
the temporaries are reused by the allocator and stay in cache: on the CPU, fresh multi-megabyte buffers cost
more in page faults than the arithmetic done in them; other devices prefer fewer, larger kernels.

Budget (elements of the largest temporary per chunk):
    ``TIMM_ATTN_CHUNK_NUMEL`` (environment variable, read at each call) when set, for every device;
    else ``CPU_CHUNK_NUMEL`` (2^20 elements) on the CPU and ``DEVICE_CHUNK_NUMEL`` (2^24) elsewhere.
A module's own ``inference_chunk_numel`` attribute (None by default) overrides both.

Not under ``torch.compile``: the compiled graph plans its own buffers, and chunks would make the batch
dimension dynamic; the callers check ``torch.compiler.is_compiling()``.
"""
import os
from typing import Optional

import torch

__all__ = ['CHUNK_NUMEL_ENV', 'CPU_CHUNK_NUMEL', 'DEVICE_CHUNK_NUMEL', 'chunk_numel', 'chunk_size']

CHUNK_NUMEL_ENV = 'TIMM_ATTN_CHUNK_NUMEL'
CPU_CHUNK_NUMEL = 2 ** 20
DEVICE_CHUNK_NUMEL = 2 ** 24


def chunk_numel(device: torch.device) -> int:
    """Elements of the largest temporary one chunk may hold on ``device`` (see the module docstring)."""
    env = os.environ.get(CHUNK_NUMEL_ENV)
    if env:
        return int(env)
    return CPU_CHUNK_NUMEL if device.type == 'cpu' else DEVICE_CHUNK_NUMEL


def chunk_size(numel_per_item: int, device: torch.device, numel: Optional[int] = None) -> int:
    """Items per chunk (at least 1) when each item makes a temporary of ``numel_per_item`` elements; ``numel``
    (a module's ``inference_chunk_numel``) overrides the policy's budget when set."""
    return max(1, (numel or chunk_numel(device)) // max(1, numel_per_item))
