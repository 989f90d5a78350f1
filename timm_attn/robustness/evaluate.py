"""The evaluation loop: every model over the same images, rotations / flips and FGSM / PGD per epsilon.

How attack accuracies are counted (top-1, in percent of the evaluated images):

- an example misclassified upright counts as broken at every epsilon (as in foolbox: the clean image
  is its own adversarial example), so attack accuracy is never above clean accuracy;
- FGSM at eps: broken if the FGSM point at eps, or at any smaller epsilon of the list, is
  misclassified;
- PGD at eps: broken if the FGSM point or any PGD iterate (random start, every step, final point),
  at eps or any smaller epsilon of the list, is misclassified.

A point found inside a smaller ball also lies inside every larger one, so carrying it over is a
valid (and standard "best attack per example") robust-accuracy estimate, not a correction: the
numbers are upper bounds on true robust accuracy like those of any attack. By construction, PGD is
never above FGSM at the same epsilon on the same images and both are non-increasing in epsilon. The
outputs also give ``top1_single``: the accuracy when only that attack's own points at that epsilon
count (no FGSM point for PGD, no smaller epsilons), which is what a single attack run reports.
At epsilon 0 every attack point is the clean image itself, so both numbers equal clean accuracy.
"""
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from ..bench import amp_dtype
from ._extras import require
from .attacks import (PixelSpaceModel, check_epsilon, check_pgd_options, fgsm, logits_and_input_grad, pgd,
                      predict_logits)
from .data import (TRANSFORMS, LoadedModel, apply_transform, check_transform, create_eval_dataset, eval_transform,
                   load_model, parse_model_spec)

__all__ = ['ATTACKS', 'DEFAULT_EPSILONS', 'ModelResult', 'evaluate_model', 'evaluate_robustness', 'amp_dtype']

ATTACKS = ('fgsm', 'pgd')
DEFAULT_EPSILONS = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)


@dataclass
class ModelResult:
    model: str
    arch: str
    source: str
    num_samples: int
    data_config: Dict[str, Any]
    clean_top1: float = float('nan')
    clean_top5: float = float('nan')
    topk: int = 5
    transforms: Dict[str, Dict[str, float]] = field(default_factory=dict)  # name -> top1, top5
    attacks: Dict[str, Dict[float, Dict[str, float]]] = field(default_factory=dict)  # fgsm -> eps -> top1, top1_single
    predictions: Optional[Dict[str, torch.Tensor]] = None  # per-example top-1 classes, keep_predictions=True


def _progress(iterable, desc: str, total: int, quiet: bool):
    if quiet or not sys.stderr.isatty():
        return iterable
    require('tqdm')
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, total=total, unit='batch', leave=True)


def evaluate_model(model: nn.Module, loader, *, transforms: Sequence[str] = tuple(TRANSFORMS),
                   epsilons: Sequence[float] = DEFAULT_EPSILONS, attacks: Sequence[str] = ATTACKS,
                   pgd_steps: int = 10, pgd_step_size: Optional[float] = None, random_start: bool = True,
                   seed: int = 0, device: Union[str, torch.device] = 'cpu', amp: Optional[str] = None,
                   desc: str = '', quiet: bool = False, keep_predictions: bool = False,
                   num_classes: Optional[int] = None) -> ModelResult:
    """One pixel-space model (``PixelSpaceModel``: [0, 1] inputs) over ``loader`` (batches of [0, 1] images)."""
    device = torch.device(device)
    dtype = amp_dtype(amp)
    epsilons = sorted({check_epsilon(e) for e in epsilons})
    transforms = list(dict.fromkeys(['upright'] + list(transforms)))
    generator = torch.Generator().manual_seed(seed)  # PGD random starts, one stream per model
    n = 0
    top1 = {t: 0 for t in transforms}
    top5 = {t: 0 for t in transforms}
    counts = {a: {e: 0 for e in epsilons} for a in attacks}
    single = {a: {e: 0 for e in epsilons} for a in attacks}
    preds: Dict[str, List[torch.Tensor]] = {t: [] for t in transforms}
    k = 5
    for x, y in _progress(loader, desc, len(loader), quiet):
        x, y = x.to(device).float(), y.to(device)
        if num_classes is not None and int(y.max()) >= num_classes:
            raise ValueError(f'the dataset has label {int(y.max())} but the model has {num_classes} classes: '
                             f'use a class map (--class-map) or a model trained on these classes')
        clean_correct = None
        for t in transforms:
            logits = predict_logits(model, apply_transform(t, x), dtype)
            k = min(5, logits.shape[1])
            best = logits.topk(k, dim=1).indices
            correct = best[:, 0] == y
            top1[t] += int(correct.sum())
            top5[t] += int((best == y[:, None]).any(dim=1).sum())
            if t == 'upright':
                clean_correct = correct
            if keep_predictions:
                preds[t].append(best[:, 0].cpu())
        if attacks:
            _, grad = logits_and_input_grad(model, x, y, dtype)  # FGSM's direction, shared by all epsilons
            broken_fgsm = ~clean_correct
            broken_pgd = ~clean_correct
            for eps in epsilons:
                fooled_fgsm = fgsm(model, x, y, eps, amp_dtype=dtype, grad=grad).fooled
                broken_fgsm = broken_fgsm | fooled_fgsm
                if 'fgsm' in counts:
                    counts['fgsm'][eps] += int((~broken_fgsm).sum())
                    single['fgsm'][eps] += int((clean_correct & ~fooled_fgsm).sum())
                if 'pgd' in counts:
                    fooled_pgd = pgd(model, x, y, eps, steps=pgd_steps, step_size=pgd_step_size,
                                     random_start=random_start, generator=generator, amp_dtype=dtype).fooled
                    broken_pgd = broken_pgd | fooled_fgsm | fooled_pgd
                    counts['pgd'][eps] += int((~broken_pgd).sum())
                    single['pgd'][eps] += int((clean_correct & ~fooled_pgd).sum())
        n += y.shape[0]
    if n == 0:
        raise ValueError('the data loader gave no images')
    pct = 100.0 / n
    result = ModelResult(model=desc, arch='', source='', num_samples=n, data_config={}, topk=k)
    result.transforms = {t: {'top1': top1[t] * pct, 'top5': top5[t] * pct} for t in transforms}
    result.clean_top1, result.clean_top5 = result.transforms['upright']['top1'], result.transforms['upright']['top5']
    result.attacks = {a: {e: {'top1': counts[a][e] * pct, 'top1_single': single[a][e] * pct} for e in epsilons}
                      for a in attacks}
    if keep_predictions:
        result.predictions = {t: torch.cat(p) for t, p in preds.items()}
    return result


def _check_options(transforms, epsilons, attacks, pgd_steps, pgd_step_size, batch_size, max_samples, amp):
    for t in transforms:
        check_transform(t)
    for e in epsilons:
        check_epsilon(e)
    for a in attacks:
        if a not in ATTACKS:
            raise ValueError(f"unknown attack '{a}'; choose from {', '.join(ATTACKS)}")
    if attacks and not epsilons:
        raise ValueError('attacks need at least one epsilon')
    check_pgd_options(pgd_steps, pgd_step_size)
    if int(batch_size) < 1:
        raise ValueError(f'batch size must be >= 1, got {batch_size}')
    if max_samples is not None and int(max_samples) < 1:
        raise ValueError(f'max_samples must be >= 1, got {max_samples}')
    amp_dtype(amp)


def evaluate_robustness(models: Sequence[Union[str, nn.Module]], data_dir: Optional[str] = None, *,
                        dataset: str = '', split: str = 'validation', class_map: str = '',
                        download: bool = False, transforms: Sequence[str] = tuple(TRANSFORMS),
                        epsilons: Sequence[float] = DEFAULT_EPSILONS, attacks: Sequence[str] = ATTACKS,
                        pgd_steps: int = 10, pgd_step_size: Optional[float] = None, random_start: bool = True,
                        batch_size: int = 32, max_samples: Optional[int] = None, seed: int = 0,
                        device: str = 'cpu', amp: Optional[str] = None, workers: int = 0,
                        pretrained: bool = True, img_size: Optional[int] = None, crop_pct: Optional[float] = None,
                        labels: Optional[Sequence[str]] = None, quiet: bool = False,
                        keep_predictions: bool = False) -> List[ModelResult]:
    """Rotation / flip and FGSM / PGD robustness of each model on one dataset.

    ``models``: timm names (``pretrained`` weights), ``NAME=CHECKPOINT``, train.py output folders or
    ``nn.Module`` timm models (see ``timm_attn.robustness.data``). Every model sees the same images
    (``max_samples`` draws a subset with ``seed``), each with its own preprocessing; the PGD random
    starts come from a generator seeded with ``seed`` per model. Epsilons are on the [0, 1] pixel
    scale. Returns one ``ModelResult`` per model, accuracies in percent.
    """
    from torch.utils.data import DataLoader, Subset
    if not models:
        raise ValueError('no models given')
    _check_options(transforms, epsilons, attacks, pgd_steps, pgd_step_size, batch_size, max_samples, amp)
    # fail on a bad name before any long run starts
    models = [spec if isinstance(spec, nn.Module) else parse_model_spec(spec) for spec in models]
    labels = list(labels) if labels is not None else [None] * len(models)
    if len(labels) != len(models):
        raise ValueError(f'{len(labels)} labels for {len(models)} models')
    ds = create_eval_dataset(data_dir, dataset=dataset, split=split, class_map=class_map, download=download)
    indices = list(range(len(ds)))
    if max_samples is not None and max_samples < len(ds):
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
        indices = sorted(order[:max_samples].tolist())
    results = []
    seen: Dict[str, int] = {}
    for spec, label in zip(models, labels):
        loaded: LoadedModel = load_model(spec, pretrained=pretrained, img_size=img_size, crop_pct=crop_pct, label=label)
        seen[loaded.label] = seen.get(loaded.label, 0) + 1
        if seen[loaded.label] > 1:
            loaded.label = f'{loaded.label} #{seen[loaded.label]}'
        cfg = loaded.data_config
        if cfg['input_size'][0] not in (1, 3):
            raise ValueError(f"model '{loaded.label}' takes {cfg['input_size'][0]} channels; images have 1 or 3")
        ds.transform = eval_transform(cfg)
        if hasattr(ds, 'input_img_mode'):  # timm's ImageDataset
            ds.input_img_mode = 'L' if cfg['input_size'][0] == 1 else 'RGB'
        loader = DataLoader(Subset(ds, indices), batch_size=batch_size, shuffle=False, num_workers=workers,
                            pin_memory=torch.device(device).type == 'cuda')
        pixel_model = PixelSpaceModel(loaded.model, cfg['mean'], cfg['std']).to(device).eval()
        flags = [(p, p.requires_grad) for p in pixel_model.parameters()]
        try:
            for p, _ in flags:
                p.requires_grad_(False)  # gradients w.r.t. the inputs only
            result = evaluate_model(
                pixel_model, loader, transforms=transforms, epsilons=epsilons, attacks=attacks, pgd_steps=pgd_steps,
                pgd_step_size=pgd_step_size, random_start=random_start, seed=seed, device=device, amp=amp,
                desc=loaded.label, quiet=quiet, keep_predictions=keep_predictions,
                num_classes=getattr(loaded.model, 'num_classes', None))
        finally:  # a module passed in by the caller comes back as it was (moved to ``device``, eval mode)
            for p, flag in flags:
                p.requires_grad_(flag)
        result.arch, result.source = loaded.arch, loaded.source
        result.data_config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
        results.append(result)
        del pixel_model, loaded
    return results
