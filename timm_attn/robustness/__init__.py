"""Robustness evaluations from the SAN paper (Zhao, Jia, Koltun, "Exploring Self-attention for
Image Recognition", CVPR 2020), for any timm model.

- Zero-shot generalisation to rotated images: models trained upright are tested on images rotated by
  90 / 180 / 270 degrees and flipped horizontally / vertically (top-1 / top-5 and the drop from upright).
- Robustness to adversarial attacks: untargeted L-inf FGSM and PGD (random start) in the model's
  input pixel space, the normalisation inside the attacked function (top-1 per epsilon). The paper
  used foolbox; the attacks here are plain PyTorch, batched, seeded, on CPU or GPU, under autocast.

Needs the optional extra ``pip install 'timm-attn[robustness]'`` (matplotlib for the plot, tqdm for
progress bars). ``timm-attn robustness --models ... --data-dir DIR`` writes a console table, ``results.csv``,
``results.json`` and ``robustness.png``; ``evaluate_robustness`` is the Python API. See
``evaluate`` for how attack accuracies are counted, ``data`` for model specs and preprocessing.
"""
from .attacks import AttackResult, PixelSpaceModel, fgsm, pgd, predict, predict_logits
from .data import TRANSFORMS, LoadedModel, apply_transform, load_model
from .evaluate import ATTACKS, DEFAULT_EPSILONS, ModelResult, evaluate_model, evaluate_robustness
from .report import format_console, plot_results, result_rows, write_outputs

__all__ = ['AttackResult', 'PixelSpaceModel', 'fgsm', 'pgd', 'predict', 'predict_logits', 'TRANSFORMS',
           'LoadedModel', 'apply_transform', 'load_model', 'ATTACKS', 'DEFAULT_EPSILONS', 'ModelResult',
           'evaluate_model', 'evaluate_robustness', 'format_console', 'plot_results', 'result_rows', 'write_outputs']
