"""Models, datasets and the zero-shot image transforms of the robustness tool.

A model is named the way timm names it, plus two forms for trained weights:

- ``NAME`` (``resnet50``, ``resnet50.a1_in1k``, ``hf-hub:ORG/REPO``, a plugin model such as
  ``san10_patchwise``): ``timm.create_model(NAME, pretrained=True)``;
- ``NAME=CHECKPOINT``: that architecture with a checkpoint file (timm's format, ``state_dict`` /
  ``state_dict_ema`` / ``module.`` prefix handled as ``timm.models.load_state_dict`` does, EMA weights
  when saved, like ``timm.create_model(checkpoint_path=...)``; otherwise the format the model's own
  ``checkpoint_filter_fn`` converts, e.g. official SAN checkpoints). A checkpoint that also pickles
  other objects (Swin's yacs config) is read with them replaced by inert placeholders
  (``timm_attn.models._checkpoint.read_checkpoint``). The number of classes is read from the
  checkpoint's classifier;
- a timm ``train.py`` output folder (``args.yaml`` + ``model_best.pth.tar``, else ``last.pth.tar``,
  read by ``timm_attn.train_output``): architecture, classes, ``model_kwargs`` and the preprocessing it
  was trained with come from ``args.yaml``.

Preprocessing is each model's own (``timm.data.resolve_data_config`` over its ``pretrained_cfg``,
overridden by ``args.yaml`` or by explicit ``img_size`` / ``crop_pct``), split in two: resize, crop
and ``ToTensor`` in the data loader (images in [0, 1]), the normalisation inside the model
(``PixelSpaceModel``), so that attacks perturb pixels. Rotations and flips are applied to the [0, 1]
tensor *after* the crop: a square crop rotates by exactly 90 / 180 / 270 degrees with no
interpolation and no border (a non-square crop comes out transposed by 90 / 270).
"""
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, NamedTuple, Optional, Union

import torch
import torch.nn as nn

from ..train_output import read_train_output

__all__ = ['TRANSFORMS', 'check_transform', 'apply_transform', 'LoadedModel', 'ModelSpec', 'parse_model_spec',
           'load_model', 'create_eval_dataset', 'eval_transform']

TRANSFORMS: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    'upright': lambda x: x,
    'rot90': lambda x: torch.rot90(x, 1, dims=(-2, -1)),  # counter-clockwise as displayed
    'rot180': lambda x: torch.rot90(x, 2, dims=(-2, -1)),
    'rot270': lambda x: torch.rot90(x, 3, dims=(-2, -1)),
    'hflip': lambda x: torch.flip(x, dims=(-1,)),  # left-right mirror
    'vflip': lambda x: torch.flip(x, dims=(-2,)),  # upside-down mirror
}
_DATA_KEYS = ('input_size', 'img_size', 'in_chans', 'crop_pct', 'crop_mode', 'mean', 'std', 'interpolation')


def check_transform(name: str) -> str:
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform '{name}'; choose from {', '.join(TRANSFORMS)}")
    return name


def apply_transform(name: str, x: torch.Tensor) -> torch.Tensor:
    """One of ``TRANSFORMS`` applied to a batch (..., H, W)."""
    return TRANSFORMS[check_transform(name)](x)


@dataclass
class LoadedModel:
    label: str  # the name in tables and plots
    arch: str
    model: nn.Module  # the timm model, eval mode; takes normalised inputs
    data_config: Dict[str, Any]  # resolve_data_config output: input_size, crop_pct, mean, std, ...
    source: str  # 'pretrained', 'random init', a checkpoint path, a train.py folder or 'module'


class ModelSpec(NamedTuple):
    """A parsed model spec (``parse_model_spec``)."""
    arch: str
    checkpoint: Optional[str]  # the weights file, None for timm's pretrained / random weights
    folder: Optional[str]  # the train.py output folder
    args: Optional[Dict[str, Any]]  # its args.yaml


def parse_model_spec(spec: str) -> ModelSpec:
    """``(arch, checkpoint_file, train_folder, args_yaml)`` for a model spec; ValueError for anything unusable."""
    import timm
    import timm_attn  # noqa: F401  (registers the plugin when TIMM_ATTN_AUTOLOAD=0)
    spec = str(spec).strip()
    if not spec:
        raise ValueError('empty model name')
    if os.path.isdir(spec):
        run = read_train_output(spec)
        return ModelSpec(run.model, run.checkpoint, spec, run.args)
    checkpoint = None
    if '=' in spec:
        spec, checkpoint = spec.split('=', 1)
        if not os.path.isfile(checkpoint):
            raise ValueError(f"checkpoint file '{checkpoint}' (for model '{spec}') does not exist")
    elif os.path.isfile(spec):
        raise ValueError(f"'{spec}' is a checkpoint file: name its architecture as MODEL={spec} "
                         f"(e.g. resnet50={spec})")
    if ':' not in spec and not timm.is_model(spec):  # 'hf-hub:org/repo' and other sources: timm checks
        raise ValueError(f"unknown model '{spec}': not a timm or timm-attn model name (see timm.list_models() / "
                         f"`timm-attn list`), nor a train.py output folder or MODEL=CHECKPOINT")
    return ModelSpec(spec, checkpoint, None, None)


def _classifier_classes(cfg: Dict[str, Any], state: Dict[str, torch.Tensor]) -> Optional[int]:
    classifier = (cfg or {}).get('classifier')
    for name in ([classifier] if isinstance(classifier, str) else list(classifier or ())):
        weight = state.get(f'{name}.weight')
        if weight is not None and weight.ndim >= 1:
            return int(weight.shape[0])
    return None


def _load_weights(model: nn.Module, arch: str, checkpoint: str, state: Dict[str, torch.Tensor]) -> None:
    import sys

    import timm
    try:
        model.load_state_dict(state, strict=True)
        return
    except RuntimeError as e:
        error = e
    filter_fn = None
    if ':' not in arch:  # the family module's converter of official checkpoints, when it has one
        entry = timm.models.model_entrypoint(timm.models.split_model_name_tag(arch)[0])
        filter_fn = getattr(sys.modules.get(entry.__module__), 'checkpoint_filter_fn', None)
    if filter_fn is not None:  # an official-format checkpoint the family converts
        try:
            model.load_state_dict(filter_fn(state, model), strict=True)
            return
        except Exception:  # noqa: BLE001  (report the plain load's error, which names the keys)
            pass
    raise ValueError(f"checkpoint '{checkpoint}' does not fit model '{arch}': {str(error)[:1500]}") from error


def _create_with_checkpoint(arch: str, state: Dict[str, torch.Tensor], kwargs: Dict[str, Any]) -> nn.Module:
    """The model for a checkpoint, built once: the number of classes is read off the checkpoint's
    classifier (named by the registered pretrained cfg; an hf-hub: model is built to read its cfg)."""
    import timm
    if 'num_classes' in kwargs:
        return timm.create_model(arch, **kwargs)
    model = None
    if ':' in arch:
        model = timm.create_model(arch, **kwargs)
        cfg = model.pretrained_cfg
    else:
        cfg = timm.models.get_pretrained_cfg(arch)
        cfg = cfg.to_dict() if cfg is not None else {}
    n = _classifier_classes(cfg, state)
    if model is None:
        return timm.create_model(arch, **kwargs, **({} if n is None else {'num_classes': n}))
    if n is not None and n != getattr(model, 'num_classes', n):
        model = timm.create_model(arch, num_classes=n, **kwargs)
    return model


def load_model(spec: Union[str, ModelSpec, nn.Module], pretrained: bool = True, img_size: Optional[int] = None,
               crop_pct: Optional[float] = None, label: Optional[str] = None) -> LoadedModel:
    """Build a model from a spec (see the module docstring; or ``parse_model_spec``'s result) or take a
    ``nn.Module`` (a timm model)."""
    import timm
    from timm.data import resolve_data_config
    overrides: Dict[str, Any] = {}
    if isinstance(spec, nn.Module):
        model, source = spec, 'module'
        arch = (getattr(model, 'pretrained_cfg', None) or {}).get('architecture') or type(model).__name__
        name = label or arch
    else:
        arch, checkpoint, folder, args = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
        kwargs: Dict[str, Any] = {}
        if folder is not None:
            overrides = {k: args[k] for k in _DATA_KEYS if args.get(k) is not None}
            kwargs.update(args.get('model_kwargs') or {})
            if args.get('num_classes'):
                kwargs['num_classes'] = int(args['num_classes'])
            if args.get('in_chans'):
                kwargs['in_chans'] = int(args['in_chans'])
            run = os.path.basename(os.path.normpath(folder))
            source, name = folder, (run if run == arch else f'{arch} ({run})')
        elif checkpoint is not None:
            source, name = checkpoint, f'{arch} ({os.path.basename(checkpoint)})'
        else:
            source, name = ('pretrained' if pretrained else 'random init'), arch
        name = label or name
        if checkpoint is None:
            model = timm.create_model(arch, pretrained=pretrained, **kwargs)
        else:
            from timm_attn.models._checkpoint import read_checkpoint
            state, _ = read_checkpoint(checkpoint, use_ema=True)
            model = _create_with_checkpoint(arch, state, kwargs)
            _load_weights(model, arch, checkpoint, state)
    if img_size is not None:
        overrides.pop('input_size', None)
        overrides['img_size'] = int(img_size)
    if crop_pct is not None:
        overrides['crop_pct'] = float(crop_pct)
    data_config = resolve_data_config(overrides, model=model)
    return LoadedModel(name, arch, model.eval(), data_config, source)


def create_eval_dataset(data_dir: Optional[str], dataset: str = '', split: str = 'validation',
                        class_map: str = '', download: bool = False, in_chans: int = 3):
    """timm's ``create_dataset`` (ImageFolder / tar, ``torch/...``, ``hfds/...``) with clear errors."""
    from timm.data import create_dataset
    if not dataset:
        if not data_dir:
            raise ValueError('no data: give an ImageFolder directory (--data-dir) or a timm dataset name (--dataset)')
        if not os.path.exists(data_dir):
            raise ValueError(f"dataset folder '{data_dir}' does not exist")
    try:
        ds = create_dataset(dataset, root=data_dir, split=split, class_map=class_map, download=download,
                            input_img_mode='L' if in_chans == 1 else 'RGB')
    except RuntimeError as e:
        if 'Found 0 images' in str(e):
            raise ValueError(f"dataset folder '{data_dir}' has no images: an ImageFolder needs one sub-folder per "
                             f"class holding .png / .jpg / .jpeg files") from e
        raise
    if len(ds) == 0:
        raise ValueError(f"dataset '{dataset or data_dir}' (split '{split}') is empty")
    return ds


def eval_transform(data_config: Dict[str, Any]):
    """Resize, crop and ToTensor (float images in [0, 1]): timm's eval transform without its final
    ``Normalize``, which goes inside the model. (``create_transform(normalize=False)`` would not do: it
    returns uint8 tensors in [0, 255], for timm's GPU prefetcher.)"""
    from timm.data import create_transform
    from torchvision import transforms
    steps = list(create_transform(**data_config, is_training=False).transforms)
    if not steps or not isinstance(steps[-1], transforms.Normalize):
        raise RuntimeError(f'unexpected timm eval transform (no final Normalize): {steps}')
    return transforms.Compose(steps[:-1])
