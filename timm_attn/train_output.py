"""One reader of timm ``train.py`` output folders, shared by ``timm-attn robustness`` and
``scripts/push_to_hub.py``.

timm's ``train.py`` writes, under ``--output``/``--experiment``: ``args.yaml`` (every option of the run:
``model``, ``num_classes``, ``img_size``, ``model_kwargs``, ...), ``model_best.pth.tar`` (when an eval
metric was tracked), ``last.pth.tar``, ``checkpoint-<epoch>.pth.tar`` and ``summary.csv``. The weights
used are ``model_best.pth.tar``, else ``last.pth.tar``.
"""
import os
from typing import Any, Dict, NamedTuple, Optional

__all__ = ['CHECKPOINT_NAMES', 'TrainOutput', 'is_train_output', 'read_train_output']

CHECKPOINT_NAMES = ('model_best.pth.tar', 'last.pth.tar')  # in order of preference


class TrainOutput(NamedTuple):
    folder: str
    args: Dict[str, Any]  # args.yaml
    checkpoint: str  # path of model_best.pth.tar, else last.pth.tar

    @property
    def model(self) -> str:
        return self.args['model']

    @property
    def num_classes(self) -> Optional[int]:
        return int(self.args['num_classes']) if self.args.get('num_classes') else None


def _checkpoint(folder: str) -> Optional[str]:
    return next((os.path.join(folder, n) for n in CHECKPOINT_NAMES if os.path.isfile(os.path.join(folder, n))), None)


def is_train_output(folder: str) -> bool:
    """True for a folder holding ``args.yaml`` and a checkpoint that ``read_train_output`` would use."""
    return os.path.isfile(os.path.join(folder, 'args.yaml')) and _checkpoint(folder) is not None


def read_train_output(folder: str) -> TrainOutput:
    """``args.yaml`` and the checkpoint path of a train.py output folder; ValueError naming what is missing."""
    import yaml
    if not os.path.isfile(os.path.join(folder, 'args.yaml')):
        raise ValueError(f"folder '{folder}' is not a timm train.py output: it has no args.yaml")
    checkpoint = _checkpoint(folder)
    if checkpoint is None:
        raise ValueError(f"train.py output '{folder}' has no {' or '.join(CHECKPOINT_NAMES)}")
    with open(os.path.join(folder, 'args.yaml')) as f:
        args = yaml.safe_load(f) or {}
    if not isinstance(args, dict) or not args.get('model'):
        raise ValueError(f"{folder}/args.yaml names no model (expected timm train.py's args.yaml)")
    return TrainOutput(folder, args, checkpoint)
