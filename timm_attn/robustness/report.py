"""Tables, CSV / JSON, the PNG plot, and the ``timm-attn robustness`` command line."""
import argparse
import csv
import json
import os
import sys
from fractions import Fraction
from typing import Any, Dict, List, Optional, Sequence

from ._extras import INSTALL_HINT, missing_extras, require
from .attacks import check_epsilon
from .data import TRANSFORMS
from .evaluate import ATTACKS, DEFAULT_EPSILONS, ModelResult, evaluate_robustness

__all__ = ['format_epsilon', 'parse_epsilon', 'result_rows', 'format_console', 'plot_results', 'write_outputs',
           'add_arguments', 'main']

CSV_FIELDS = ('model', 'arch', 'source', 'samples', 'analysis', 'setting', 'epsilon', 'top1', 'top5',
              'top1_drop', 'top5_drop', 'top1_single')


def format_epsilon(eps: float) -> str:
    """``8/255`` when eps is a multiple of 1/255 (to 1e-9), else the plain number."""
    k = eps * 255
    if abs(k - round(k)) >= 1e-6:
        return f'{eps:g}'
    return f'{round(k)}/255' if round(k) else '0'


def parse_epsilon(text: str) -> float:
    """``'8/255'``, ``'0.03'``; an argparse type (clear message for negatives, > 1 and junk)."""
    try:
        value = float(Fraction(text.strip())) if '/' in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"epsilon '{text}' is not a number (write e.g. 0.03 or 8/255)") from None
    try:
        return check_epsilon(value, text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def result_rows(results: Sequence[ModelResult]) -> List[Dict[str, Any]]:
    rows = []
    for r in results:
        base = dict(model=r.model, arch=r.arch, source=r.source, samples=r.num_samples)
        up = r.transforms.get('upright', {'top1': r.clean_top1, 'top5': r.clean_top5})
        for t, acc in r.transforms.items():
            rows.append(dict(base, analysis='transform', setting=t, epsilon='', top1=acc['top1'], top5=acc['top5'],
                             top1_drop=up['top1'] - acc['top1'], top5_drop=up['top5'] - acc['top5'], top1_single=''))
        for a, per_eps in r.attacks.items():
            for eps, acc in per_eps.items():
                rows.append(dict(base, analysis=a, setting=f'eps={format_epsilon(eps)}', epsilon=eps, top1=acc['top1'],
                                 top5='', top1_drop=r.clean_top1 - acc['top1'], top5_drop='',
                                 top1_single=acc['top1_single']))
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: '| ' + ' | '.join(str(c).ljust(w) for c, w in zip(cells, widths)) + ' |'  # noqa: E731
    return '\n'.join([line(header), '|' + '|'.join('-' * (w + 2) for w in widths) + '|'] + [line(r) for r in rows])


def format_console(results: Sequence[ModelResult]) -> str:
    """Markdown tables: rotations / flips (top-1, top-5, top-1 drop from upright), attacks (top-1 per eps)."""
    parts = []
    names = list(dict.fromkeys(t for r in results for t in r.transforms))
    if names:
        rows = []
        for r in results:
            up = r.transforms['upright']['top1']
            cells = [r.model]
            for t in names:
                acc = r.transforms.get(t)
                if acc is None:
                    cells.append('-')
                    continue
                cell = f"{acc['top1']:.1f} / {acc['top5']:.1f}"
                cells.append(cell if t == 'upright' else f"{cell} ({acc['top1'] - up:+.1f})")
            rows.append(cells)
        k = results[0].topk if results else 5
        parts.append(f'Zero-shot rotations / flips: top-1 / top-{k} (%), in brackets the top-1 change from upright '
                     f'({results[0].num_samples if results else 0} images)\n' + _table(['model'] + names, rows))
    epsilons = sorted({e for r in results for per in r.attacks.values() for e in per})
    if epsilons:
        rows = []
        for r in results:
            for a, per in r.attacks.items():
                rows.append([r.model, a.upper()] + [f"{per[e]['top1']:.1f}" if e in per else '-' for e in epsilons])
        parts.append('Untargeted L-inf attacks in pixel space: top-1 (%) per epsilon (PGD: any iterate or the FGSM '
                     'point fooling it counts, carried over to larger epsilons)\n'
                     + _table(['model', 'attack'] + [format_epsilon(e) for e in epsilons], rows))
    return '\n\n'.join(parts)


def plot_results(results: Sequence[ModelResult], path: str, title: Optional[str] = None) -> str:
    """PNG: top-1 vs rotation / flip and top-1 vs epsilon (PGD solid, FGSM dashed), one colour per model."""
    require('matplotlib')
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    names = list(dict.fromkeys(t for r in results for t in r.transforms))
    has_attacks = any(r.attacks for r in results)
    panels = int(bool(names)) + int(has_attacks)
    fig, axes = plt.subplots(1, max(panels, 1), figsize=(6.2 * max(panels, 1), 4.6), squeeze=False)
    axes = list(axes[0])
    colours = plt.get_cmap('tab10').colors
    labels = {'upright': 'upright', 'rot90': 'rot 90', 'rot180': 'rot 180', 'rot270': 'rot 270',
              'hflip': 'h-flip', 'vflip': 'v-flip'}
    if names:
        ax = axes.pop(0)
        for i, r in enumerate(results):
            xs = [j for j, t in enumerate(names) if t in r.transforms]
            ax.plot(xs, [r.transforms[names[j]]['top1'] for j in xs], marker='o', lw=2, color=colours[i % 10],
                    label=r.model)
        ax.set_xticks(range(len(names)), [labels.get(t, t) for t in names])
        ax.set_title('Zero-shot rotations and flips (after the crop)')
        ax.set_xlabel('transform of the evaluation images')
        ax.set_ylabel('top-1 accuracy (%)')
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(loc='best', fontsize=9)
    if has_attacks:
        ax = axes.pop(0)
        styles = {'pgd': '-', 'fgsm': '--'}
        for i, r in enumerate(results):
            for a, per in r.attacks.items():
                eps = sorted(per)
                ax.plot([e * 255 for e in eps], [per[e]['top1'] for e in eps], ls=styles.get(a, ':'), marker='o',
                        ms=4, lw=2, color=colours[i % 10])
        handles = [Line2D([], [], color=colours[i % 10], lw=2, label=r.model) for i, r in enumerate(results)]
        attacks = list(dict.fromkeys(a for r in results for a in r.attacks))
        handles += [Line2D([], [], color='0.3', ls=styles.get(a, ':'), lw=2, label=a.upper()) for a in attacks]
        ax.legend(handles=handles, loc='best', fontsize=9)
        ticks = sorted({e * 255 for r in results for per in r.attacks.values() for e in per})
        if len(ticks) <= 12:
            ax.set_xticks(ticks, [format_epsilon(t / 255).replace('/255', '') for t in ticks])
        ax.set_title('Untargeted L-inf attacks (pixel space)')
        ax.set_xlabel('epsilon (x 1/255)')
        ax.set_ylabel('top-1 accuracy (%)')
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _jsonable(r: ModelResult) -> Dict[str, Any]:
    return dict(model=r.model, arch=r.arch, source=r.source, samples=r.num_samples, data_config=r.data_config,
                clean_top1=r.clean_top1, clean_top5=r.clean_top5, topk=r.topk, transforms=r.transforms,
                attacks={a: [dict(epsilon=e, epsilon_str=format_epsilon(e), **acc) for e, acc in per.items()]
                         for a, per in r.attacks.items()})


def write_outputs(results: Sequence[ModelResult], out_dir: str, settings: Dict[str, Any],
                  title: Optional[str] = None) -> List[str]:
    """``results.csv``, ``results.json`` and ``robustness.png`` in ``out_dir``; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, f) for f in ('results.csv', 'results.json', 'robustness.png')]
    with open(paths[0], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in result_rows(results):
            writer.writerow({k: (f'{v:.4f}' if isinstance(v, float) else v) for k, v in row.items()})
    with open(paths[1], 'w') as f:
        json.dump(dict(settings=settings, results=[_jsonable(r) for r in results]), f, indent=2)
    plot_results(results, paths[2], title=title)
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--models', nargs='+', required=True, metavar='MODEL',
                        help='timm / plugin names (pretrained weights), NAME=CHECKPOINT, or train.py output folders')
    data = parser.add_argument_group('data')
    data.add_argument('--data-dir', default=None, help='ImageFolder root (or the root of a timm dataset)')
    data.add_argument('--dataset', default='', help="timm dataset name, e.g. 'torch/cifar10', 'hfds/...' "
                                                    "(default: ImageFolder / tar at --data-dir)")
    data.add_argument('--split', default='validation')
    data.add_argument('--class-map', default='', help='file mapping folder names to the model\'s class indices')
    data.add_argument('--dataset-download', action='store_true')
    data.add_argument('--max-samples', type=int, default=None, help='random subset of this size (drawn with --seed)')
    data.add_argument('--batch-size', type=int, default=32)
    data.add_argument('--workers', type=int, default=0)
    data.add_argument('--img-size', type=int, default=None, help="override the model's input size")
    data.add_argument('--crop-pct', type=float, default=None, help="override the model's crop fraction")
    data.add_argument('--no-pretrained', action='store_true', help='plain names build randomly initialised models')
    ev = parser.add_argument_group('evaluations')
    ev.add_argument('--transforms', nargs='*', default=list(TRANSFORMS), choices=list(TRANSFORMS),
                    help='zero-shot transforms (after the crop); upright is always evaluated')
    ev.add_argument('--attacks', nargs='*', default=list(ATTACKS), choices=list(ATTACKS),
                    help='attacks (give --attacks with nothing after it for none)')
    ev.add_argument('--epsilons', nargs='+', type=parse_epsilon, default=list(DEFAULT_EPSILONS), metavar='EPS',
                    help='L-inf radii on the [0, 1] pixel scale, e.g. 0 1/255 2/255 4/255 8/255 (the default)')
    ev.add_argument('--pgd-steps', type=int, default=10)
    ev.add_argument('--pgd-step-size', type=parse_epsilon, default=None,
                    help='PGD step on the pixel scale (default 2.5 * eps / steps)')
    ev.add_argument('--no-random-start', action='store_true', help='PGD starts at the clean image')
    run = parser.add_argument_group('run')
    run.add_argument('--seed', type=int, default=0, help='subset draw and PGD random starts')
    run.add_argument('--device', default='cpu')
    run.add_argument('--amp', choices=('bf16', 'fp16'), default=None, help='autocast dtype (input gradients in fp32)')
    run.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    run.add_argument('--out', default='robustness-out', help='folder for results.csv, results.json, robustness.png')
    run.add_argument('--title', default=None, help='title of the plot')
    run.add_argument('--quiet', action='store_true', help='no progress bars')


def main(args: argparse.Namespace) -> int:
    missing = missing_extras()
    if missing:
        print(f"timm-attn robustness: error: {' and '.join(missing)} not installed; they come with the optional "
              f"extra: {INSTALL_HINT}", file=sys.stderr)
        return 2
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = dict(models=args.models, data_dir=args.data_dir, dataset=args.dataset, split=args.split,
                    class_map=args.class_map, max_samples=args.max_samples, transforms=args.transforms,
                    attacks=args.attacks, epsilons=args.epsilons, pgd_steps=args.pgd_steps,
                    pgd_step_size=args.pgd_step_size, random_start=not args.no_random_start, seed=args.seed,
                    device=args.device, amp=args.amp, pretrained=not args.no_pretrained, img_size=args.img_size,
                    crop_pct=args.crop_pct, batch_size=args.batch_size, torch=torch.__version__)
    try:
        results = evaluate_robustness(
            args.models, args.data_dir, dataset=args.dataset, split=args.split, class_map=args.class_map,
            download=args.dataset_download, transforms=args.transforms, epsilons=args.epsilons, attacks=args.attacks,
            pgd_steps=args.pgd_steps, pgd_step_size=args.pgd_step_size, random_start=not args.no_random_start,
            batch_size=args.batch_size, max_samples=args.max_samples, seed=args.seed, device=args.device,
            amp=args.amp, workers=args.workers, pretrained=not args.no_pretrained, img_size=args.img_size,
            crop_pct=args.crop_pct, quiet=args.quiet)
    except ValueError as e:
        print(f'timm-attn robustness: error: {e}', file=sys.stderr)
        return 2
    print(format_console(results))
    for path in write_outputs(results, args.out, settings, title=args.title):
        print(f'wrote {path}')
    return 0
