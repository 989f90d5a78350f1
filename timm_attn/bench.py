"""``timm-attn bench``: plugin models side by side with timm baselines, in one interleaved run.

For every model it measures eval-forward throughput (img/s), the time of one training step
(forward, cross-entropy, backward, SGD step) and that step's peak memory, and counts parameters
and GMACs (``timm_attn.flops``: multiply-adds of convolutions and matrix products, one image, eval
mode). Timings are interleaved: each round runs every model once, so a noisy machine slows all of
them alike, and the table reports medians over rounds with ratios to the first baseline.

Peak memory on the CPU is the rise of the peak resident set size during one training step, each
model in a fresh subprocess (the only honest CPU measure: PyTorch keeps no CPU allocator
statistics); on CUDA it is ``torch.cuda.max_memory_allocated``.

Baselines are timm model names, or ``resnet26_paper`` / ``resnet38_paper``: the bottleneck
ResNets with [1, 2, 4, 1] and [2, 3, 5, 2] blocks that the SAN paper compares against (timm's own
``resnet26`` is [2, 2, 2, 2]), built with timm's ``ResNet``.

``--markdown PATH`` writes the table, headed by the date, the git commit, the torch / timm versions,
the CPU and the settings, between ``<!-- begin generated ... -->`` / ``<!-- end generated ... -->``
markers named by ``--block``: a block already in the file is replaced in place (the text around it is
kept), a new one is appended. docs/performance.md is written this way; its tables are never edited
by hand.
"""
import argparse
import csv
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

from .flops import count_gmacs

__all__ = ['BenchResult', 'ProfileRow', 'amp_dtype', 'create_bench_model', 'format_profile', 'format_ranges',
           'profile_train_step', 'run_bench', 'format_markdown', 'markdown_report', 'run_header',
           'write_markdown_block', 'main']

PAPER_RESNETS = {'resnet26_paper': (1, 2, 4, 1), 'resnet38_paper': (2, 3, 5, 2)}
DEFAULT_BASELINES = ('resnet26_paper',)
DEFAULT_MODELS = ('san10_patchwise', 'san10_pairwise')


@dataclass
class BenchResult:
    model: str
    baseline: bool
    params_m: float
    gmacs: float
    infer_img_s: float = float('nan')
    train_step_s: float = float('nan')
    train_peak_mb: float = float('nan')
    infer_samples: List[float] = field(default_factory=list)
    train_samples: List[float] = field(default_factory=list)


def create_bench_model(name: str, img_size: Optional[int] = None, **kwargs):
    """The model ``name``; one with a fixed input size (``pretrained_cfg['fixed_input_size']``: CoAtNet,
    ACmix-Swin, ViTs) is built for ``img_size`` when that differs from its default."""
    import timm
    if name in PAPER_RESNETS:
        from timm.models.resnet import Bottleneck, ResNet
        return ResNet(Bottleneck, list(PAPER_RESNETS[name]), **kwargs)
    import timm_attn  # noqa: F401  (registers the plugin when TIMM_ATTN_AUTOLOAD=0)
    cfg = timm.models.get_pretrained_cfg(name)
    if img_size is not None and cfg is not None and cfg.fixed_input_size and cfg.input_size[-1] != img_size:
        kwargs.setdefault('img_size', img_size)
    return timm.create_model(name, **kwargs)


def _sync(device):
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize()


def _train_step_fn(model, batch_size: int, img_size: int, device, amp_dtype):
    import torch
    import torch.nn.functional as F
    x = torch.randn(batch_size, 3, img_size, img_size, device=device)
    y = torch.randint(0, 1000, (batch_size,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def measure_train_peak(name: str, batch_size: int, img_size: int, device: str, amp: Optional[str],
                       threads: int) -> float:
    """Peak memory (MB) of one training step, in a fresh process on the CPU."""
    if device.startswith('cuda'):
        import torch
        model = create_bench_model(name, img_size).to(device).train()
        step = _train_step_fn(model, batch_size, img_size, torch.device(device), amp_dtype(amp))
        step()  # optimizer state allocated here, as in a real run
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    cmd = [sys.executable, '-m', 'timm_attn.bench', '--_peak-child', name, '--train-batch-size', str(batch_size),
           '--img-size', str(img_size), '--threads', str(threads)] + (['--amp', amp] if amp else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f'peak-memory child for {name} failed:\n{out.stderr[-2000:]}')
    return float(out.stdout.strip().splitlines()[-1])


def _rss_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'no {field} in /proc/self/status')


def _peak_child(name: str, batch_size: int, img_size: int, amp: Optional[str], threads: int) -> float:
    """Rise of the resident set's high-water mark (VmHWM, reset just before) over one training step.
    (ru_maxrss would not do: Linux carries the parent's peak over fork and exec.)"""
    import torch
    torch.set_num_threads(threads)
    model = create_bench_model(name, img_size).train()
    step = _train_step_fn(model, batch_size, img_size, torch.device('cpu'), amp_dtype(amp))
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current RSS
    base = _rss_kb('VmRSS')
    step()
    return max(0.0, (_rss_kb('VmHWM') - base) / 1024)


@dataclass
class ProfileRow:
    op: str
    self_ms: float
    share: float  # of the step's total self time
    calls: int


def profile_train_step(name: str, batch_size: int, img_size: int, device: str = 'cpu', amp: Optional[str] = None,
                       threads: int = 2, top: int = 10) -> List[ProfileRow]:
    """The ``top`` operators of one training step of ``name`` by self time (``torch.profiler``, CPU time; CUDA
    time too on a GPU), after two warm-up steps. The rows' shares are of the summed self time of all ops."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    torch.set_num_threads(threads)
    dev = torch.device(device)
    model = create_bench_model(name, img_size).to(dev).train()
    step = _train_step_fn(model, batch_size, img_size, dev, amp_dtype(amp))
    step()
    step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == 'cuda' else [])
    with profile(activities=activities) as prof:
        step()
        _sync(dev)
    key = 'self_cuda_time_total' if dev.type == 'cuda' else 'self_cpu_time_total'
    events = [e for e in prof.key_averages() if getattr(e, key, 0) > 0]
    total = sum(getattr(e, key) for e in events)
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    return [ProfileRow(e.key, getattr(e, key) / 1e3, getattr(e, key) / total, e.count) for e in events[:top]]


def format_profile(name: str, rows: Sequence[ProfileRow]) -> str:
    """One model's profile as a markdown table (op, self ms, share of the step, calls)."""
    lines = [f'**{name}**', '', '| op | self time (ms) | share | calls |', '|---|---|---|---|']
    lines += [f'| `{r.op}` | {r.self_ms:.0f} | {100 * r.share:.1f}% | {r.calls} |' for r in rows]
    return '\n'.join(lines)


def amp_dtype(amp: Optional[str]):
    """The autocast dtype for ``--amp``: None (also '', 'none', 'fp32'), 'bf16' or 'fp16'."""
    if amp in (None, '', 'none', 'fp32'):
        return None
    import torch
    table = {'bf16': torch.bfloat16, 'fp16': torch.float16}
    if amp not in table:
        raise ValueError(f"amp must be one of bf16, fp16 (or None), got '{amp}'")
    return table[amp]


def _log(msg: str, quiet: bool):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def run_bench(
        models: Sequence[str] = DEFAULT_MODELS,
        baselines: Sequence[str] = DEFAULT_BASELINES,
        batch_size: int = 8,
        train_batch_size: int = 16,
        img_size: int = 224,
        rounds: int = 5,
        train_rounds: int = 2,
        threads: int = 2,
        device: str = 'cpu',
        amp: Optional[str] = None,
        compile: bool = False,
        measure_memory: bool = True,
        train: bool = True,
        quiet: bool = False,
) -> List[BenchResult]:
    """Run the comparison; returns one ``BenchResult`` per model, baselines first."""
    import torch
    torch.set_num_threads(threads)
    dev = torch.device(device)
    dtype = amp_dtype(amp)
    names = list(baselines) + [m for m in models if m not in baselines]
    if not baselines:
        raise ValueError('at least one baseline is needed (ratios are relative to the first)')
    results: Dict[str, BenchResult] = {}
    eval_models, train_steps = {}, {}
    for i, name in enumerate(names):
        _log(f'[{i + 1}/{len(names)}] building {name}', quiet)
        model = create_bench_model(name, img_size)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        gmacs = count_gmacs(model, img_size)
        results[name] = BenchResult(name, name in baselines, round(params, 3), round(gmacs, 3))
        model = model.to(dev).eval()
        eval_models[name] = torch.compile(model) if compile else model
        if train:
            train_model = create_bench_model(name, img_size).to(dev).train()
            train_model = torch.compile(train_model) if compile else train_model
            train_steps[name] = _train_step_fn(train_model, train_batch_size, img_size, dev, dtype)

    x = torch.randn(batch_size, 3, img_size, img_size, device=dev)
    with torch.inference_mode(), torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
        for model in eval_models.values():  # warm-up (and compilation)
            model(x)
        for r in range(rounds):
            for name, model in eval_models.items():
                _sync(dev)
                t = time.perf_counter()
                model(x)
                _sync(dev)
                results[name].infer_samples.append(batch_size / (time.perf_counter() - t))
            _log(f'eval round {r + 1}/{rounds}: ' + ', '.join(
                f'{n} {results[n].infer_samples[-1]:.1f} img/s' for n in names), quiet)
    del eval_models

    for step in train_steps.values():  # warm-up: optimizer state, compilation
        step()
    for r in range(train_rounds if train_steps else 0):
        for name, step in train_steps.items():
            _sync(dev)
            t = time.perf_counter()
            step()
            _sync(dev)
            results[name].train_samples.append(time.perf_counter() - t)
        _log(f'train round {r + 1}/{train_rounds}: ' + ', '.join(
            f'{n} {results[n].train_samples[-1]:.2f} s' for n in names), quiet)
    del train_steps

    for name in names:
        res = results[name]
        res.infer_img_s = statistics.median(res.infer_samples)
        res.train_step_s = statistics.median(res.train_samples) if res.train_samples else float('nan')
        if measure_memory and train:
            _log(f'peak memory of a batch-{train_batch_size} training step: {name}', quiet)
            res.train_peak_mb = measure_train_peak(name, train_batch_size, img_size, device, amp, threads)
    return [results[n] for n in names]


_COLUMNS = [
    ('model', 'model'), ('params_m', 'params (M)'), ('gmacs', 'GMACs'), ('infer_img_s', 'eval img/s'),
    ('infer_ratio', 'eval x'), ('train_step_s', 'train step (s)'), ('train_ratio', 'train x'),
    ('train_peak_mb', 'train peak (MB)'), ('mem_ratio', 'memory x'),
]


def result_rows(results: Sequence[BenchResult]) -> List[Dict[str, object]]:
    """Table rows with ratios to the first baseline (eval x > 1 is faster, train / memory x < 1 is less)."""
    ref = results[0]
    rows = []
    for r in results:
        rows.append(dict(
            model=r.model + (' (baseline)' if r.baseline else ''),
            params_m=f'{r.params_m:.2f}', gmacs=f'{r.gmacs:.2f}',
            infer_img_s=f'{r.infer_img_s:.1f}', infer_ratio=f'{r.infer_img_s / ref.infer_img_s:.2f}',
            train_step_s=f'{r.train_step_s:.2f}', train_ratio=f'{r.train_step_s / ref.train_step_s:.2f}',
            train_peak_mb=f'{r.train_peak_mb:.0f}', mem_ratio=f'{r.train_peak_mb / ref.train_peak_mb:.2f}',
        ))
    return rows


def format_markdown(results: Sequence[BenchResult], drop_empty: bool = False) -> str:
    """The table; ``drop_empty`` leaves out columns that are 'nan' in every row (training with ``--no-train``,
    memory with ``--no-memory``)."""
    rows = result_rows(results)
    columns = [(k, t) for k, t in _COLUMNS if not (drop_empty and all(str(r[k]) == 'nan' for r in rows))]
    lines = ['| ' + ' | '.join(title for _, title in columns) + ' |',
             '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(str(row[key]) for key, _ in columns) + ' |' for row in rows]
    return '\n'.join(lines)


def _span(values: Sequence[float], fmt: str = '.2f') -> str:
    lo, hi = min(values), max(values)
    return f'{lo:{fmt}}' if f'{lo:{fmt}}' == f'{hi:{fmt}}' else f'{lo:{fmt}}-{hi:{fmt}}'


def format_ranges(runs: Sequence[Sequence[BenchResult]], train_batch_size: int) -> str:
    """Several whole runs of one comparison as one table: per model the range (min-max) over the runs of each
    run's median training step, its training throughput (samples/s) and its ratios to the first baseline (training
    time, peak memory, eval throughput)."""
    lines = ['| model | train step (s) | train samples/s | train x | memory x | eval img/s | eval x |',
             '|---|---|---|---|---|---|---|']
    for i, first in enumerate(runs[0]):
        rs = [run[i] for run in runs]
        refs = [run[0] for run in runs]
        step = [r.train_step_s for r in rs]
        lines.append('| ' + ' | '.join([
            first.model + (' (baseline)' if first.baseline else ''),
            _span(step), _span([train_batch_size / t for t in step], '.1f'),
            _span([r.train_step_s / b.train_step_s for r, b in zip(rs, refs)]),
            _span([r.train_peak_mb / b.train_peak_mb for r, b in zip(rs, refs)]),
            _span([r.infer_img_s for r in rs], '.1f'),
            _span([r.infer_img_s / b.infer_img_s for r, b in zip(rs, refs)]),
        ]) + ' |')
    return '\n'.join(lines)


def git_commit(path: Optional[str] = None) -> str:
    """Short hash of the checkout holding ``path`` (default: this package), or 'unknown' (not a git checkout,
    no git)."""
    path = path or os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=path, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return 'unknown'
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else 'unknown'


def cpu_model() -> str:
    """The CPU's name: /proc/cpuinfo's 'model name', else ``platform.processor()``, else 'unknown'."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown'


def run_header(device: str, settings: Dict[str, object]) -> str:
    """One line naming date, git commit, torch / timm versions, CPU, device (with the GPU's name) and ``settings``."""
    import timm
    import torch
    if device.startswith('cuda') and torch.cuda.is_available():
        device = f'{device} ({torch.cuda.get_device_name(torch.device(device))})'
    return (f"{time.strftime('%Y-%m-%d')}, commit {git_commit()}, torch {torch.__version__}, "
            f"timm {timm.__version__}, CPU: {cpu_model()}, {os.cpu_count()} cores; device {device}; "
            + ', '.join(f'{k}={v}' for k, v in settings.items()))


def markdown_report(results: Sequence[BenchResult], settings: Dict[str, object]) -> str:
    """The table headed by ``run_header`` (the training settings left out of an eval-only run)."""
    trained = any(r.train_samples for r in results)
    shown = {k: v for k, v in settings.items()
             if k != 'device' and (trained or k not in ('train_batch_size', 'train_rounds'))}
    header = run_header(str(settings.get('device', 'cpu')), shown) + ('' if trained else '; eval only')
    return f'{header}\n\n{format_markdown(results, drop_empty=True)}\n'


def _markers(block: str):
    return (f'<!-- begin generated by timm-attn bench --markdown (block {block}); do not edit by hand -->',
            f'<!-- end generated (block {block}) -->')


def write_markdown_block(path: str, text: str, block: str, command: Optional[str] = None) -> str:
    """Put ``text`` between the markers of ``block`` in ``path``: replaced in place when the block exists
    (everything outside the markers kept), appended otherwise (the file created if needed). ``command``,
    when given, is recorded inside the block as the way to regenerate it. Returns the new file content."""
    if not re.fullmatch(r'[\w.-]+', block):
        raise ValueError(f"block name '{block}' must be letters, digits, '_', '.' or '-'")
    begin, end = _markers(block)
    body = (f'`{command}`\n\n' if command else '') + text.strip('\n')
    new_block = f'{begin}\n{body}\n{end}'
    old = open(path).read() if os.path.exists(path) else ''
    pattern = re.compile(re.escape(begin) + r'.*?' + re.escape(end), re.S)
    if pattern.search(old):
        content = pattern.sub(lambda _: new_block, old, count=1)
    else:
        content = old + ('\n' if old and not old.endswith('\n') else '') + ('\n' if old else '') + new_block + '\n'
    with open(path, 'w') as f:
        f.write(content)
    return content


def format_console(results: Sequence[BenchResult]) -> str:
    rows = result_rows(results)
    titles = [title for _, title in _COLUMNS]
    widths = [max(len(t), *(len(str(r[k])) for r in rows)) for (k, _), t in zip(_COLUMNS, titles)]
    out = ['  '.join(t.ljust(w) for t, w in zip(titles, widths))]
    out += ['  '.join(str(r[k]).ljust(w) for (k, _), w in zip(_COLUMNS, widths)) for r in rows]
    return '\n'.join(out)


def write_outputs(results: Sequence[BenchResult], out_dir: str, settings: Dict[str, object]) -> List[str]:
    os.makedirs(out_dir, exist_ok=True)
    csv_path, md_path, json_path = (os.path.join(out_dir, f'bench.{ext}') for ext in ('csv', 'md', 'json'))
    rows = result_rows(results)
    with open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=[k for k, _ in _COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    with open(md_path, 'w') as f:
        f.write(', '.join(f'{k}={v}' for k, v in settings.items()) + '\n\n' + format_markdown(results) + '\n')
    with open(json_path, 'w') as f:
        json.dump(dict(settings=settings, results=[asdict(r) for r in results]), f, indent=1)
    return [csv_path, md_path, json_path]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--models', nargs='+', default=list(DEFAULT_MODELS), help='plugin (or any timm) models')
    parser.add_argument('--baselines', nargs='+', default=list(DEFAULT_BASELINES),
                        help='timm models or resnet26_paper / resnet38_paper; ratios are to the first')
    parser.add_argument('--batch-size', type=int, default=8, help='eval-forward batch size')
    parser.add_argument('--train-batch-size', type=int, default=16)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=5, help='interleaved eval rounds')
    parser.add_argument('--train-rounds', type=int, default=2, help='interleaved training-step rounds')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', choices=('bf16', 'fp16'), default=None, help='autocast dtype')
    parser.add_argument('--compile', action='store_true', help='torch.compile every model first')
    parser.add_argument('--no-memory', action='store_true', help='skip the peak-memory subprocesses')
    parser.add_argument('--no-train', action='store_true', help='eval throughput only')
    parser.add_argument('--out', default='bench-out', help='folder for bench.csv / bench.md / bench.json')
    parser.add_argument('--markdown', default=None, metavar='PATH',
                        help='also write the table with its date / commit / torch / CPU header into this markdown '
                             'file, between the markers of --block (replaced in place)')
    parser.add_argument('--block', default='default', help='name of the generated block in --markdown')
    parser.add_argument('--repeat', type=int, default=1, metavar='N',
                        help='run the whole comparison N times and report each ratio as its range over the runs')
    parser.add_argument('--profile', type=int, default=0, metavar='TOP',
                        help='instead of the comparison: profile one training step (--train-batch-size) of every '
                             'model and baseline and list its TOP operators by self time')
    parser.add_argument('--quiet', action='store_true', help='no progress lines')


def _profile_main(args: argparse.Namespace) -> int:
    names = list(args.baselines) + [m for m in args.models if m not in args.baselines]
    tables = []
    for name in names:
        _log(f'profiling a training step of {name}', args.quiet)
        rows = profile_train_step(name, args.train_batch_size, args.img_size, args.device, args.amp, args.threads,
                                  args.profile)
        tables.append(format_profile(name, rows))
        print(tables[-1] + '\n')
    header = run_header(args.device, dict(train_batch_size=args.train_batch_size, img_size=args.img_size,
                                          threads=args.threads, amp=args.amp))
    header += f'; one training step, top {args.profile} ops by self time'
    if args.markdown:
        write_markdown_block(args.markdown, header + '\n\n' + '\n\n'.join(tables) + '\n', args.block,
                             command=_command_line(args))
        print(f'wrote block {args.block} of {args.markdown}')
    return 0


def main(args: argparse.Namespace) -> int:
    if args.profile > 0:
        return _profile_main(args)
    if args.repeat < 1:
        raise SystemExit(f'--repeat must be >= 1, got {args.repeat}')
    runs = []
    for i in range(args.repeat):
        if args.repeat > 1:
            _log(f'run {i + 1}/{args.repeat}', args.quiet)
        runs.append(run_bench(
            models=args.models, baselines=args.baselines, batch_size=args.batch_size,
            train_batch_size=args.train_batch_size, img_size=args.img_size, rounds=args.rounds,
            train_rounds=args.train_rounds, threads=args.threads, device=args.device, amp=args.amp,
            compile=args.compile, measure_memory=not args.no_memory, train=not args.no_train, quiet=args.quiet))
    results = runs[-1]
    settings = dict(device=args.device, threads=args.threads, batch_size=args.batch_size,
                    train_batch_size=args.train_batch_size, img_size=args.img_size, amp=args.amp,
                    compile=args.compile, rounds=args.rounds, train_rounds=args.train_rounds)
    if args.repeat > 1:
        settings['repeat'] = args.repeat
        table = format_ranges(runs, args.train_batch_size)
        print(table)
        if args.markdown:
            header = run_header(args.device, {k: v for k, v in settings.items() if k != 'device'})
            write_markdown_block(args.markdown, f'{header}; ranges over the runs\n\n{table}\n', args.block,
                                 command=_command_line(args))
            print(f'wrote block {args.block} of {args.markdown}')
        return 0
    print(format_console(results))
    for path in write_outputs(results, args.out, settings):
        print(f'wrote {path}')
    if args.markdown:
        write_markdown_block(args.markdown, markdown_report(results, settings), args.block,
                             command=_command_line(args))
        print(f'wrote block {args.block} of {args.markdown}')
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The ``timm-attn bench`` command that regenerates a block (the options that differ from the defaults)."""
    defaults = vars(_parser().parse_args([]))
    parts = ['timm-attn bench']
    for key, value in vars(args).items():
        if key in ('command', 'out', 'quiet') or key not in defaults or value == defaults[key]:
            continue
        flag = '--' + key.replace('_', '-')
        if value is True:
            parts.append(flag)
        elif isinstance(value, (list, tuple)):
            parts.append(f"{flag} {' '.join(map(str, value))}")
        else:
            parts.append(f'{flag} {value}')
    return ' '.join(parts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m timm_attn.bench')
    add_arguments(parser)
    return parser


if __name__ == '__main__':
    if '--_peak-child' in sys.argv:
        p = argparse.ArgumentParser()
        p.add_argument('--_peak-child', dest='name')
        p.add_argument('--train-batch-size', type=int)
        p.add_argument('--img-size', type=int)
        p.add_argument('--threads', type=int)
        p.add_argument('--amp', default=None)
        a = p.parse_args()
        print(_peak_child(a.name, a.train_batch_size, a.img_size, a.amp, a.threads))
    else:
        sys.exit(main(_parser().parse_args()))
