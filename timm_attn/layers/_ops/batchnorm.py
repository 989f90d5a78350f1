"""Which BatchNorm modules the fast paths may replace by their own batch-norm math.

The fast paths (BN folded into a conv in eval, ``batch_norm_train`` / ``bn_relu_conv1x1`` in training, and the
recomputations in backward that rely on them) read ``bn.weight``, ``bn.running_mean``, ``bn.eps`` ... and
normalise themselves instead of calling ``bn``. That is only the module's function when its forward is
``nn.BatchNorm``'s own. ``torch.nn.SyncBatchNorm`` (what ``convert_sync_batchnorm`` / timm's ``train.py
--sync-bn`` put in) normalises in training with statistics all-reduced over the process group: own math would
silently use the per-process batch only. Such modules are called, and not recomputed in backward (a
recomputation would issue a second collective and update the running statistics twice).
"""
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['is_plain_batchnorm']


def is_plain_batchnorm(bn: nn.Module) -> bool:
    """True when the fast paths may use ``bn``'s parameters and buffers in place of calling it.

    That is a BatchNorm whose class keeps ``nn.BatchNorm``'s forward (``nn.BatchNorm2d`` and subclasses that do
    not override it), or a ``torch.nn.SyncBatchNorm`` (or subclass) in eval mode with running statistics: there
    its forward is the plain one with the running statistics, without a collective, so eval folding stays.
    Anything else (a SyncBatchNorm in training, a BN with its own forward) is called as a module.
    """
    if not isinstance(bn, _BatchNorm):
        return False
    if type(bn).forward is _BatchNorm.forward:
        return True
    return isinstance(bn, nn.SyncBatchNorm) and not bn.training \
        and bn.running_mean is not None and bn.running_var is not None
