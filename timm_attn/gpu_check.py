"""``scripts/gpu_check.py`` / ``timm-attn gpu-check``: every family on a CUDA device against the CPU.

Each family's code takes other branches on CUDA than on the CPU (the CPU fast paths of ``layers/_ops`` are
skipped, ``scaled_dot_product_attention`` picks a fused kernel, autocast runs in half precision). For the
smallest model of each family (``CHECK_MODELS``), with one set of weights and one input, the check runs:

- eval forward and one training step (forward, cross-entropy, backward; BatchNorm in training mode) on the
  CPU in float32: the reference;
- the same on the device in float32 (TF32 off), with channels_last, under bf16 and fp16 autocast, and
  compiled with ``torch.compile``; each compared with the reference (eval logits: max abs difference over
  max abs reference; gradients: the norm of the difference over the norm of the reference, all parameters
  together), against a tolerance per variant (``TOLERANCES``);
- ``timm-attn bench`` on the device: eval and training step against the family's ResNet / timm baseline,
  side by side, as a small table.

It exits 1 when any comparison is outside its tolerance or not finite. ``--device cpu`` runs the same
logic against the CPU itself (how the tests exercise it on a machine without a GPU).
"""
import argparse
import copy
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ['CHECK_MODELS', 'TOLERANCES', 'VARIANTS', 'CheckResult', 'check_model', 'run_gpu_check', 'main']

# model -> (input side of the correctness checks, timing baseline)
CHECK_MODELS: Dict[str, Tuple[int, str]] = {
    'san10_patchwise': (128, 'resnet26_paper'),
    'san10_pairwise': (128, 'resnet26_paper'),
    'acmix_resnet26': (96, 'resnet26_paper'),
    'acmix_swin_tiny_patch4_window7_224': (224, 'swin_tiny_patch4_window7_224'),
    'gsa_resnet26': (96, 'resnet26_paper'),
    'coatnet_0': (128, 'coatnet_0_224'),
    'resattnet56': (96, 'resnet50'),
    'cbam_resnet50': (96, 'resnet50'),
    'da_resnet50': (96, 'resnet50'),
}
VARIANTS = ('fp32', 'channels_last', 'bf16', 'fp16', 'compiled')
# (eval logits, gradients) relative tolerance of each variant against the CPU float32 reference
TOLERANCES: Dict[str, Tuple[float, float]] = {
    'fp32': (1e-3, 1e-3),
    'channels_last': (1e-3, 1e-3),
    'compiled': (1e-3, 1e-3),
    'bf16': (5e-2, 1e-1),
    'fp16': (1e-2, 5e-2),
}


@dataclass
class CheckResult:
    model: str
    variant: str
    eval_err: float
    grad_err: float
    eval_tol: float
    grad_tol: float
    seconds: float
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        import math
        return self.error is None and math.isfinite(self.eval_err) and math.isfinite(self.grad_err) \
            and self.eval_err <= self.eval_tol and self.grad_err <= self.grad_tol


def _rel_max(a, ref) -> float:
    return float((a.float() - ref.float()).abs().max() / ref.float().abs().max().clamp_min(1e-12))


def _rel_norm(grads, ref_grads) -> float:
    import torch
    diff = torch.sqrt(sum(((g.float() - r.float()) ** 2).sum() for g, r in zip(grads, ref_grads)))
    norm = torch.sqrt(sum((r.float() ** 2).sum() for r in ref_grads))
    return float(diff / norm.clamp_min(1e-12))


def _reference_model(name: str, img_size: int, num_classes: int):
    """Seeded weights, BatchNorm running statistics away from (0, 1) so that folded eval paths matter."""
    import torch
    from .bench import create_bench_model
    torch.manual_seed(0)
    model = create_bench_model(name, img_size, num_classes=num_classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model


def _run(model, x, y, amp_dtype, compiled: bool):
    """(eval logits, training loss, gradients in ``model.parameters()`` order) on x's device."""
    import torch
    import torch.nn.functional as F
    run = torch.compile(model) if compiled else model
    dev = x.device.type
    model.eval()
    with torch.no_grad(), torch.autocast(dev, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = run(x).float()
    model.train()
    with torch.autocast(dev, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = F.cross_entropy(run(x).float(), y)
    loss.backward()
    grads = [p.grad.detach().float().cpu() if p.grad is not None else torch.zeros(p.shape)
             for p in model.parameters()]
    return logits.cpu(), loss.detach().float().cpu(), grads


def check_model(name: str, device: str, variants: Sequence[str] = VARIANTS, img_size: Optional[int] = None,
                batch_size: int = 2, num_classes: int = 10) -> List[CheckResult]:
    """Compare ``name`` on ``device`` in each variant with the CPU float32 reference (see the module docstring)."""
    import torch
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f'unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}')
    side = img_size or CHECK_MODELS.get(name, (224, ''))[0]
    ref_model = _reference_model(name, side, num_classes)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch_size, 3, side, side, generator=g)
    y = torch.randint(0, num_classes, (batch_size,), generator=g)
    ref_logits, _, ref_grads = _run(copy.deepcopy(ref_model), x, y, None, False)
    results = []
    for variant in variants:
        t = time.perf_counter()
        eval_tol, grad_tol = TOLERANCES[variant]
        try:
            model = copy.deepcopy(ref_model).to(device)
            xd = x.to(device)
            if variant == 'channels_last':
                model = model.to(memory_format=torch.channels_last)
                xd = xd.contiguous(memory_format=torch.channels_last)
            amp = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(variant)
            logits, _, grads = _run(model, xd, y.to(device), amp, variant == 'compiled')
            res = CheckResult(name, variant, _rel_max(logits, ref_logits), _rel_norm(grads, ref_grads),
                              eval_tol, grad_tol, 0.)
        except Exception as e:  # reported in the table; the check fails
            res = CheckResult(name, variant, float('nan'), float('nan'), eval_tol, grad_tol, 0.,
                              f'{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ""}')
        res.seconds = round(time.perf_counter() - t, 2)
        results.append(res)
    return results


def format_checks(results: Sequence[CheckResult]) -> str:
    lines = ['| model | variant | eval err | grad err | tolerance (eval / grad) | s | result |',
             '|---|---|---|---|---|---|---|']
    for r in results:
        verdict = 'ok' if r.ok else ('FAIL: ' + r.error if r.error else 'FAIL')
        lines.append(f'| {r.model} | {r.variant} | {r.eval_err:.2e} | {r.grad_err:.2e} | '
                     f'{r.eval_tol:g} / {r.grad_tol:g} | {r.seconds:.1f} | {verdict} |')
    return '\n'.join(lines)


def run_gpu_check(device: str = 'cuda', models: Sequence[str] = tuple(CHECK_MODELS),
                  variants: Sequence[str] = VARIANTS, compile_models: Optional[Sequence[str]] = None,
                  bench: bool = True, bench_batch_size: int = 32, bench_amp: Optional[str] = 'bf16',
                  time_budget_s: float = 420., quiet: bool = False) -> Dict[str, object]:
    """All checks, then the timing table; variants past ``time_budget_s`` are skipped (and listed)."""
    import torch
    from .bench import format_markdown, run_bench
    if device.startswith('cuda'):
        if not torch.cuda.is_available():
            raise RuntimeError('no CUDA device: run on a machine with a GPU, or pass --device cpu')
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 comparisons against the CPU
        torch.backends.cudnn.allow_tf32 = False
    compile_models = set(models if compile_models is None else compile_models)
    start = time.perf_counter()
    checks: List[CheckResult] = []
    skipped: List[str] = []
    for name in models:
        todo = [v for v in variants if v != 'compiled' or name in compile_models]
        if time.perf_counter() - start > time_budget_s:
            skipped += [f'{name}:{v}' for v in todo]
            continue
        checks += check_model(name, device, todo)
        if not quiet:
            print(format_checks([r for r in checks if r.model == name]).split('\n', 2)[-1], file=sys.stderr,
                  flush=True)
    timing = []
    if bench:
        by_baseline: Dict[str, List[str]] = {}
        for name in models:
            by_baseline.setdefault(CHECK_MODELS.get(name, (0, 'resnet50'))[1], []).append(name)
        for baseline, names in by_baseline.items():
            results = run_bench(names, [baseline], batch_size=bench_batch_size, train_batch_size=bench_batch_size,
                                rounds=5, train_rounds=3, device=device, amp=bench_amp, measure_memory=True,
                                quiet=quiet)
            timing.append(format_markdown(results, drop_empty=True))
    return {
        'device': torch.cuda.get_device_name(device) if device.startswith('cuda') else platform.processor() or 'cpu',
        'torch': torch.__version__,
        'checks': [dict(asdict(r), ok=r.ok) for r in checks],
        'skipped': skipped,
        'ok': all(r.ok for r in checks),
        'checks_markdown': format_checks(checks),
        'timing_markdown': timing,
        'seconds': round(time.perf_counter() - start, 1),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--device', default='cuda', help='device to check against the CPU (default cuda)')
    parser.add_argument('--models', nargs='+', default=list(CHECK_MODELS))
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument('--compile-models', nargs='*', default=None,
                        help='models whose compiled variant runs (default: all of --models)')
    parser.add_argument('--no-bench', action='store_true', help='skip the timing table')
    parser.add_argument('--bench-batch-size', type=int, default=32)
    parser.add_argument('--bench-amp', default='bf16', help="autocast of the timing table: bf16, fp16 or 'none'")
    parser.add_argument('--time-budget', type=float, default=420., help='seconds of checks before the rest is skipped')
    parser.add_argument('--out', default=None, help='write the results as JSON here')


def main(args: argparse.Namespace) -> int:
    report = run_gpu_check(args.device, args.models, args.variants, args.compile_models, not args.no_bench,
                           args.bench_batch_size, None if args.bench_amp == 'none' else args.bench_amp,
                           args.time_budget)
    print(f"# timm-attn GPU check: {report['device']}, torch {report['torch']}, {report['seconds']} s\n")
    print(report['checks_markdown'])
    if report['skipped']:
        print(f"\nskipped (time budget): {', '.join(report['skipped'])}")
    for table in report['timing_markdown']:
        print('\n' + table)
    print('\nall checks passed' if report['ok'] else '\nSOME CHECKS FAILED')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
    return 0 if report['ok'] else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='gpu_check', description=__doc__.split('\n\n')[0])
    add_arguments(parser)
    return parser


if __name__ == '__main__':
    sys.exit(main(_parser().parse_args()))
