"""Untargeted L-inf FGSM and PGD in plain PyTorch, in the model's input pixel space.

Images are float tensors in [0, 1] (what ``ToTensor`` gives after resize and crop); the model's
normalisation lives inside the attacked function (``PixelSpaceModel``), so an epsilon of ``8 / 255``
means eight grey levels of the image, whatever the model's mean / std.

- FGSM (Goodfellow et al., 2015): ``x' = clip_[0,1](x + eps * sign(grad_x CE(f(x), y)))``.
- PGD (Madry et al., 2018): start at ``x + U(-eps, eps)`` (random start, from a ``torch.Generator``
  on the CPU, so a seed gives the same start on any device), then ``steps`` times
  ``x' = Proj(x' + step_size * sign(grad))`` where ``Proj`` clips to the eps-ball around ``x`` and to
  [0, 1]; the default step size is ``2.5 * eps / steps``.

Each attack returns its adversarial images and a per-example ``fooled`` mask: for PGD, an example is
fooled if *any* iterate (the random start, every step and the final point) is misclassified, since
every iterate lies in the eps-ball. Whether a point is misclassified is always decided by the
model's plain eval forward without autograd (``predict``), the gradient pass only gives directions
(some models, e.g. SAN, run a different but equivalent kernel path without autograd). Gradients are
taken with respect to float32 inputs, with the forward pass under autocast when ``amp_dtype`` is
given (loss in float32, summed over the batch so each example's gradient is its own); float16 scales
the loss before the backward pass against underflow (the sign is scale-invariant) and falls back to
no scaling if that overflows.
"""
from typing import NamedTuple, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['PixelSpaceModel', 'AttackResult', 'check_epsilon', 'check_pgd_options', 'predict_logits', 'predict',
           'logits_and_input_grad', 'fgsm', 'pgd']


class PixelSpaceModel(nn.Module):
    """``model((x - mean) / std)`` for ``x`` in [0, 1]: the normalisation inside the attacked function."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


class AttackResult(NamedTuple):
    images: torch.Tensor  # adversarial images in [0, 1], within eps of the input (L-inf)
    fooled: torch.Tensor  # bool per example: some point of the attack is misclassified


def check_epsilon(epsilon: float, text: Optional[str] = None) -> float:
    """``epsilon`` as a float in [0, 1]; ValueError naming the value (or ``text``, as the user wrote it)."""
    epsilon = float(epsilon)
    if not (0.0 <= epsilon <= 1.0):  # also refuses NaN
        raise ValueError(f'epsilon must be in [0, 1] on the pixel scale (e.g. 8/255), got '
                         f'{epsilon if text is None else text}' + (' (< 0)' if epsilon < 0 else ''))
    return epsilon


def check_pgd_options(steps: int, step_size: Optional[float]) -> None:
    if int(steps) < 1:
        raise ValueError(f'PGD needs at least 1 step, got {steps}')
    if step_size is not None and not float(step_size) >= 0:  # also refuses NaN
        raise ValueError(f'PGD step size must be >= 0, got {step_size}')


def _autocast(device: torch.device, amp_dtype: Optional[torch.dtype]):
    return torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)


def logits_and_input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                          amp_dtype: Optional[torch.dtype] = None):
    """Float32 logits of ``x`` and the float32 gradient of the summed cross-entropy w.r.t. ``x``."""
    x = x.detach().float().requires_grad_(True)
    for scale in ((2.0 ** 12, 1.0) if amp_dtype == torch.float16 else (1.0,)):
        with torch.enable_grad():
            with _autocast(x.device, amp_dtype):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, reduction='sum')
            grad, = torch.autograd.grad(loss * scale, x)
        if torch.isfinite(grad).all():
            break
    return logits.detach().float(), torch.nan_to_num(grad.detach(), nan=0.0, posinf=0.0, neginf=0.0)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, amp_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """The model's plain eval forward (no autograd), float32 logits: every correct / fooled decision uses it."""
    with _autocast(x.device, amp_dtype):
        return model(x).float()


def predict(model: nn.Module, x: torch.Tensor, amp_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    return predict_logits(model, x, amp_dtype).argmax(dim=1)


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, *,
         amp_dtype: Optional[torch.dtype] = None, grad: Optional[torch.Tensor] = None) -> AttackResult:
    """Untargeted L-inf FGSM. ``grad`` (the input gradient at ``x``) may be passed to share it across epsilons."""
    epsilon = check_epsilon(epsilon)
    if grad is None:
        _, grad = logits_and_input_grad(model, x, y, amp_dtype)
    adv = (x.detach().float() + epsilon * grad.sign()).clamp_(0.0, 1.0)
    return AttackResult(adv, predict(model, adv, amp_dtype) != y)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, *, steps: int = 10,
        step_size: Optional[float] = None, random_start: bool = True, generator: Optional[torch.Generator] = None,
        amp_dtype: Optional[torch.dtype] = None) -> AttackResult:
    """Untargeted L-inf PGD with random start; ``fooled`` marks examples that any iterate misclassifies."""
    epsilon = check_epsilon(epsilon)
    check_pgd_options(steps, step_size)
    step_size = 2.5 * epsilon / steps if step_size is None else float(step_size)
    x = x.detach().float()
    lo, hi = (x - epsilon).clamp(min=0.0), (x + epsilon).clamp(max=1.0)  # the eps-ball inside [0, 1]
    adv = x
    if random_start:
        # drawn on the CPU: the same seed gives the same start on every device
        noise = torch.rand(x.shape, generator=generator, dtype=torch.float32).to(x.device)
        adv = torch.minimum(torch.maximum(x + (2 * noise - 1) * epsilon, lo), hi)
    fooled = torch.zeros_like(y, dtype=torch.bool)
    for _ in range(steps):
        fooled |= predict(model, adv, amp_dtype) != y
        _, grad = logits_and_input_grad(model, adv, y, amp_dtype)
        adv = torch.minimum(torch.maximum(adv + step_size * grad.sign(), lo), hi)
    fooled |= predict(model, adv, amp_dtype) != y
    return AttackResult(adv, fooled)
