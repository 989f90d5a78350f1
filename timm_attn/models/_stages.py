"""timm's model protocol, written once, for networks built as stem -> stages -> final norm -> head.

SAN, CoAtNet and the Residual Attention Network have that shape. A model class derives from ``StageNet``
and builds, in its ``__init__``, the data the protocol reads:

    stem          module (its output is a feature level when ``feature_info`` lists 'stem' first)
    stages        ``nn.Sequential`` of stages; each stage has a ``grad_checkpointing`` flag for its blocks
    norm          final norm of ``forward_features`` (``nn.Identity()`` when there is none)
    head          timm's ``ClassifierHead`` or ``NormMlpClassifierHead`` (which may hold the final norm)
    feature_info  one dict per feature level: [stem,] stages.0, stages.1, ...
    num_classes, num_features, head_hidden_size

and, as class data, ``stage_groups``: the regexes (after ``stages.<i>.``) of the parameter groups inside a
stage for ``group_matcher``. A model with work before its stem (input checks, memory format) overrides
``forward_stem``. Everything else (``forward_features``, ``forward_intermediates``,
``prune_intermediate_layers``, ``reset_classifier``, ``group_matcher``, ``set_grad_checkpointing``) follows
timm's ``MaxxVit`` / ``ResNet``, with timm's helpers (``feature_take_indices``, ``get_device_dtype``).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from timm.layers import get_device_dtype
from timm.models._features import feature_take_indices

__all__ = ['StageNet']


class StageNet(nn.Module):
    """Base class: timm's model protocol over ``stem``, ``stages``, ``norm`` and ``head`` (module docstring)."""

    # parameter groups inside stage i for group_matcher(coarse=False): (regex after 'stages.<i>.', suffix)
    stage_groups: Sequence[Tuple[str, Optional[Tuple[int, ...]]]] = ((r'blocks\.(\d+)', None),)

    def _stem_level(self) -> int:
        """1 when the stem's output is feature level 0 (``feature_info`` starts with it), else 0."""
        return int(self.feature_info[0]['module'] == 'stem')

    def _intermediate_norm(self) -> nn.Module:
        """The final norm, for the last level's intermediate with ``norm=True``: the model's own or, where the
        head holds it (``NormMlpClassifierHead``), the head's."""
        return getattr(self.head, 'norm', self.norm)

    def stage_intermediate(
            self, stage: nn.Module, x_in: torch.Tensor, x: torch.Tensor, final_norm: bool) -> torch.Tensor:
        """The feature map that ``forward_intermediates`` returns for a stage's output ``x`` (its input ``x_in``),
        with the final norm where ``final_norm``. A model whose stages return something other than a map (tokens)
        overrides this."""
        return self._intermediate_norm()(x) if final_norm else x

    def reset_pruned_head(self, reset_other: bool) -> None:
        """Empty the classifier for ``prune_intermediate_layers``; ``reset_other``: also the head's own norm /
        pre-logits, sized for the pruned stages."""
        self.num_classes = 0
        self.head.reset(0, '', reset_other=reset_other, in_features=self.num_features, **get_device_dtype(self))

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        return dict(
            stem=r'^stem',
            blocks=r'^stages\.(\d+)' if coarse else [
                (r'^stages\.(\d+)\.' + pattern, suffix) for pattern, suffix in self.stage_groups
            ] + [(r'^norm', (99999,))],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable
        for s in self.stages:
            s.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, pool_type=global_pool, in_features=self.num_features, **get_device_dtype(self))

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Forward features that returns the outputs of the feature levels picked by ``indices`` (the levels of
        ``feature_info``: the stem's output first where it is one, then the stages').

        Args:
            x: input images.
            indices: last n levels if int, all if None, these levels if a sequence.
            norm: apply the final norm to the last level's output when it is taken (no effect without one).
            stop_early: stop after the last level asked for.
            output_fmt: only 'NCHW'.
            intermediates_only: return only the intermediates.
        """
        if output_fmt != 'NCHW':
            raise ValueError(f'{type(self).__name__} intermediates are NCHW, got output_fmt={output_fmt!r}')
        stem_level = self._stem_level()
        last_idx = len(self.stages) + stem_level - 1
        take_indices, max_index = feature_take_indices(last_idx + 1, indices)
        intermediates = []
        x = self.forward_stem(x)
        feat_idx = stem_level - 1  # the level x holds (-1: the stem's output is not a level)
        if feat_idx in take_indices:
            intermediates.append(x)
        if torch.jit.is_scripting() or not stop_early:  # no slicing of modules in TorchScript
            stages = self.stages
        else:
            stages = self.stages[:max_index + 1 - stem_level]
        for stage in stages:
            feat_idx += 1
            x_in = x
            x = stage(x)
            if feat_idx in take_indices:
                intermediates.append(self.stage_intermediate(stage, x_in, x, norm and feat_idx == last_idx))
        if intermediates_only:
            return intermediates
        if feat_idx == last_idx:
            x = self.norm(x)
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Drop the stages after the last level ``indices`` needs, the final norm with them (or with
        ``prune_norm``), and the classifier (``prune_head``; always when stages go: it is sized for the last)."""
        stem_level = self._stem_level()
        last_idx = len(self.stages) + stem_level - 1
        take_indices, max_index = feature_take_indices(last_idx + 1, indices)
        prune_end = max_index < last_idx
        head_norm = not isinstance(getattr(self.head, 'norm', nn.Identity()), nn.Identity)
        if prune_norm or prune_end:
            self.norm = nn.Identity()  # sized for (and applied after) the last stage
        self.stages = self.stages[:max_index + 1 - stem_level]
        if prune_end:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]['num_chs']
        if prune_head or prune_end or (prune_norm and head_norm):
            self.reset_pruned_head(reset_other=prune_norm or prune_end)
        return take_indices

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        x = self.stages(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
