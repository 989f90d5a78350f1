"""SyncBatchNorm: under ``convert_sync_batchnorm`` (timm's ``train.py --sync-bn``) every model normalises with the
statistics of the whole process group, also on the fast paths that normally run their own batch-norm math.

``torch.nn.SyncBatchNorm`` refuses CPU tensors, so the tests put in ``EmulatedSyncBatchNorm``: a subclass (code
that detects SyncBatchNorm treats it alike) whose training forward all-reduces per-channel sum, sum of squares
and count over the group (autograd-aware ``torch.distributed.nn.functional.all_reduce``, one collective per
call) and normalises with those global statistics. Two gloo processes each get half of a batch; their
gradients (summed over the ranks), running statistics and outputs must equal those of one process with plain
BatchNorms on the whole batch, in float64.
"""
import datetime
import os
import tempfile
import time
import traceback
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest
import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

WORLD = 2
TIMEOUT_S = 240  # per spawned group: a hang (a collective on one rank only) fails instead of blocking
EXIT_GRACE_S = 30  # after every rank has reported done: time left to the processes' own teardown


def _init_group(rank: int, init_file: str) -> None:
    torch.set_num_threads(1)
    warnings.filterwarnings('ignore', category=FutureWarning)  # torch.distributed.nn.functional's deprecation
    # a collective that waits longer than this raises in the process instead of hanging it
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))


def _finish_group(rank: int, done_dir: str) -> None:
    """Barrier, then this rank's done marker, then ``destroy_process_group``.

    The barrier keeps a fast rank from tearing its group down while the other still computes (rank 0 runs the
    one-process reference alone): ``destroy_process_group`` can hang in that case (pytorch/pytorch#75097). The
    marker is written before the teardown, so the parent can tell a finished rank that hangs in torch's own
    teardown from one that never finished its work.
    """
    dist.barrier()
    open(os.path.join(done_dir, f'done{rank}'), 'w').close()
    dist.destroy_process_group()


def _spawn(target, args: Tuple[Any, ...], tmp: str) -> List[Optional[int]]:
    """Run ``target(rank, init_file, done_dir, *args)`` on WORLD spawned processes; their exit codes.

    Fails as soon as a rank exits with an error (the other is then left waiting in a collective), and when a
    rank has neither finished nor exited within TIMEOUT_S (a collective on one rank only). A rank that reported
    done but is still tearing its process group down after EXIT_GRACE_S is killed (exit code None) and does not
    fail the run: its work and its collectives are complete.
    """
    init_file, done_dir = os.path.join(tmp, 'init'), os.path.join(tmp, 'done')
    os.makedirs(done_dir)
    procs = [mp.get_context('spawn').Process(target=target, args=(rank, init_file, done_dir) + tuple(args))
             for rank in range(WORLD)]
    for p in procs:
        p.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and not all(
                not p.is_alive() or os.path.exists(os.path.join(done_dir, f'done{rank}'))
                for rank, p in enumerate(procs)):
            failed = {rank: p.exitcode for rank, p in enumerate(procs) if p.exitcode not in (None, 0)}
            assert not failed, f'ranks exited with errors (rank: exit code): {failed}'
            time.sleep(0.2)
        hung = [rank for rank, p in enumerate(procs)
                if p.is_alive() and not os.path.exists(os.path.join(done_dir, f'done{rank}'))]
        assert not hung, f'ranks {hung} did not finish within {TIMEOUT_S} s (a collective on one rank only?)'
        for p in procs:
            p.join(EXIT_GRACE_S)
        return [p.exitcode if not p.is_alive() else None for p in procs]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()


class EmulatedSyncBatchNorm(nn.SyncBatchNorm):
    """``nn.SyncBatchNorm`` for CPU tensors: batch statistics all-reduced over the default process group.

    ``calls`` counts the collectives this class issued (one per training forward), over all instances.
    """

    calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.running_mean is not None:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0., self.eps)
        dims = [0] + list(range(2, x.dim()))
        count = torch.full((1,), x.numel() // x.shape[1], dtype=x.dtype)
        stats = torch.cat([x.sum(dims), (x * x).sum(dims), count])
        stats = dist_fn.all_reduce(stats)  # sum over the group; backward all-reduces too
        type(self).calls += 1
        c = self.num_features
        n = stats[-1]
        mean = stats[:c] / n
        var = stats[c:2 * c] / n - mean * mean
        # the running statistics before the output, as in SyncBatchNorm's forward: a checkpoint recomputation
        # stops after the last saved tensor it needs, and the update must not depend on where that falls
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * (n / (n - 1))
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.weight is not None:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def to_emulated_sync_bn(model: nn.Module) -> nn.Module:
    """``convert_sync_batchnorm``, with every SyncBatchNorm it made switched to the CPU stand-in."""
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for m in model.modules():
        if type(m) is nn.SyncBatchNorm:
            m.__class__ = EmulatedSyncBatchNorm
    return model


# (model name, create kwargs, image size, whole batch)
Case = Tuple[str, Dict[str, Any], int, int]


def _model(name: str, kwargs: Dict[str, Any]) -> nn.Module:
    import timm
    import timm_attn  # noqa: F401  (registers the models)
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=5, **kwargs).double().train()
    with torch.no_grad():  # BN affine parameters and buffers away from their initial values
        g = torch.Generator().manual_seed(1)
        for p in model.parameters():  # zero-initialised gates / last BNs of residual branches: make them count
            if not p.any():
                p.copy_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                if m.weight is not None:
                    m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g, dtype=m.weight.dtype))
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g, dtype=m.bias.dtype))
                if m.running_mean is not None:
                    m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g, dtype=torch.double))
                    m.running_var.uniform_(0.5, 1.5, generator=g)
    return model


def _data(img: int, batch: int) -> Tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return (torch.randn(batch, 3, img, img, generator=g, dtype=torch.double),
            torch.randn(batch, 5, generator=g, dtype=torch.double))


def _step(model: nn.Module, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    out = model(x)
    (out * r).sum().backward()
    return out.detach()


def _buffers(model: nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if 'running_' in k or 'num_batches' in k}


def _rel(a: torch.Tensor, b: torch.Tensor, floor: float = 0.) -> float:
    """max |a - b| / max |b|; ``floor``: the least denominator (tensors that are zero up to rounding, e.g. the
    gradient of a bias that a BatchNorm's mean removes, are compared to the scale of all gradients)."""
    scale = max(b.abs().max().item(), floor)
    diff = (a.double() - b.double()).abs().max().item()
    return diff / scale if scale > 0 else diff


def _max_rel(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> Tuple[float, str]:
    """(largest ``_rel`` over the tensors, its name), with the floor 1e-6 x the largest value of all of ``b``."""
    floor = 1e-6 * max(t.double().abs().max().item() for t in b.values())
    worst = max(a, key=lambda k: _rel(a[k], b[k], floor))
    return _rel(a[worst], b[worst], floor), worst


def _worker(rank: int, init_file: str, done_dir: str, runs: Sequence[Tuple[Case, bool]], out_path: str) -> None:
    _init_group(rank, init_file)
    results: List[Dict[str, Any]] = []
    try:
        for (name, kwargs, img, batch), checkpointing in runs:
            x, r = _data(img, batch)
            part = slice(rank * batch // WORLD, (rank + 1) * batch // WORLD)
            model = to_emulated_sync_bn(_model(name, kwargs))
            model.set_grad_checkpointing(checkpointing)
            used = set()
            hooks = [m.register_forward_hook(lambda m, i, o, used=used: used.add(id(m)))
                     for m in model.modules() if isinstance(m, EmulatedSyncBatchNorm)]
            EmulatedSyncBatchNorm.calls = 0
            out = model(x[part])
            forward_calls, forward_modules = EmulatedSyncBatchNorm.calls, len(used)
            for h in hooks:
                h.remove()
            (out * r[part]).sum().backward()
            backward_calls = EmulatedSyncBatchNorm.calls - forward_calls
            calls = torch.tensor([forward_calls, backward_calls, forward_modules])
            all_calls = [torch.zeros_like(calls) for _ in range(WORLD)]
            dist.all_gather(all_calls, calls)
            grads = {}
            for n, p in model.named_parameters():
                g = p.grad if p.grad is not None else torch.zeros_like(p)
                dist.all_reduce(g)
                grads[n] = g
            outs = [torch.zeros_like(out) for _ in range(WORLD)]
            dist.all_gather(outs, out.detach().contiguous())
            if rank != 0:
                continue
            ref = _model(name, kwargs)
            ref.set_grad_checkpointing(checkpointing)
            ref_out = _step(ref, x, r)
            ref_grads = {n: p.grad if p.grad is not None else torch.zeros_like(p) for n, p in ref.named_parameters()}
            ref_buffers = _buffers(ref)
            buffers = _buffers(model)
            with torch.no_grad():  # eval: the SyncBatchNorms' running statistics, the folded fast paths
                eval_out, ref_eval_out = model.eval()(x), ref.eval()(x)
            assert ref_grads.keys() == grads.keys() and ref_buffers.keys() == buffers.keys()
            results.append(dict(
                name=name,
                checkpointing=checkpointing,
                calls=[c.tolist() for c in all_calls],
                num_sync_bn=sum(isinstance(m, EmulatedSyncBatchNorm) for m in model.modules()),
                output=_rel(torch.cat(outs), ref_out),
                eval_output=_rel(eval_out, ref_eval_out),
                grads=_max_rel(grads, ref_grads),
                buffers=_max_rel(buffers, ref_buffers),
            ))
    except BaseException:
        results.append(dict(error=traceback.format_exc()))
        raise
    finally:
        if rank == 0:
            torch.save(results, out_path)
    _finish_group(rank, done_dir)


def run_distributed(cases: Sequence[Case], checkpointing: Sequence[bool]) -> List[Dict[str, Any]]:
    """Run ``cases`` on WORLD gloo processes, with each of the ``checkpointing`` settings (one process group for
    all); rank 0's measurements against the one-process reference."""
    runs = [(case, c) for c in checkpointing for case in cases]
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, 'results.pt')
        exitcodes = _spawn(_worker, (runs, out_path), tmp)
        results: Optional[List[Dict[str, Any]]] = torch.load(out_path) if os.path.exists(out_path) else None
        errors = [r['error'] for r in results or [] if 'error' in r]
        assert not errors, errors[0]
        assert results is not None and all(c in (0, None) for c in exitcodes), exitcodes
    return results


def check(results: List[Dict[str, Any]], tol: float = 1e-6) -> None:
    for res in results:
        print(res)
    for res in results:
        assert res['output'] < tol and res['eval_output'] < tol, res
        assert res['grads'][0] < tol, res
        assert res['buffers'][0] < tol, res
        forward_calls, backward_calls, forward_modules = res['calls'][0]
        assert all(c == res['calls'][0] for c in res['calls']), res  # the same collectives on every rank
        # one collective per SyncBatchNorm in the forward: the fast paths call each once and do not recompute
        # through it; only a model-level checkpoint (set_grad_checkpointing) reruns modules in backward
        assert forward_calls == forward_modules, res
        if not res['checkpointing']:
            assert backward_calls == 0, res
        else:
            assert backward_calls <= forward_calls, res


def _small_nets_worker(rank: int, init_file: str, done_dir: str, out_path: str) -> None:
    """The stand-in itself against plain BN on the whole batch: a small ResNet-like net with 2-d and 1-d BNs."""
    _init_group(rank, init_file)

    def net() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2),
            nn.BatchNorm2d(8, momentum=None), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.BatchNorm1d(8), nn.Linear(8, 4)).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 9, 9, generator=g, dtype=torch.double)
    r = torch.randn(6, 4, generator=g, dtype=torch.double)
    model = to_emulated_sync_bn(net())
    part = slice(rank * 3, rank * 3 + 3)
    for _ in range(2):  # two steps: cumulative average (momentum None) and num_batches_tracked
        model.zero_grad()
        _step(model, x[part], r[part])
    grads = [p.grad.clone() for p in model.parameters()]
    for gr in grads:
        dist.all_reduce(gr)
    if rank == 0:
        ref = net()
        for _ in range(2):
            ref.zero_grad()
            _step(ref, x, r)
        for a, b in zip(grads, [p.grad for p in ref.parameters()]):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
        for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=k)
        model.eval()
        ref.eval()
        torch.testing.assert_close(model(x), ref(x), rtol=1e-9, atol=1e-12)
        torch.save('ok', out_path)
    _finish_group(rank, done_dir)


def test_emulated_sync_batchnorm_matches_plain_batchnorm_on_the_whole_batch():
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, 'ok.pt')
        exitcodes = _spawn(_small_nets_worker, (out_path,), tmp)
        assert all(c in (0, None) for c in exitcodes) and os.path.exists(out_path), exitcodes


def test_is_plain_batchnorm():
    from timm_attn.layers._ops import is_plain_batchnorm
    assert is_plain_batchnorm(nn.BatchNorm2d(4)) and is_plain_batchnorm(nn.BatchNorm1d(4))
    sync = nn.SyncBatchNorm(4)
    assert not is_plain_batchnorm(sync) and is_plain_batchnorm(sync.eval())  # eval: running stats, no collective
    assert not is_plain_batchnorm(EmulatedSyncBatchNorm(4))

    class OwnForward(nn.BatchNorm2d):
        def forward(self, x):
            return super().forward(x) * 2
    assert not is_plain_batchnorm(OwnForward(4)) and not is_plain_batchnorm(OwnForward(4).eval())
    assert not is_plain_batchnorm(nn.GroupNorm(2, 4))


# the custom BN paths: SAN (stem, gamma's bn_relu_conv1x1, recomputed weights / blocks), GSA (positional BN in
# the recomputed attention, folded eval paths), CoAtNet (MBConv BNs under its own checkpointing)
FAST: List[Case] = [  # SAN pairwise: in SLOW (its BatchNorms take the same paths as patchwise)
    ('san10_patchwise', dict(kernel_sizes=3), 64, 4),
    ('gsa_resnet26_cifar', dict(), 16, 4),
    ('coatnet_0', dict(img_size=32), 32, 4),
]

SLOW: List[Case] = [
    ('san10_patchwise', dict(), 128, 4),
    ('san10_pairwise', dict(), 128, 4),
    ('gsa_resnet26', dict(), 64, 4),
    ('coatnet_0', dict(img_size=64), 64, 4),
    ('acmix_resnet26', dict(), 64, 4),
    ('a2_resnet50', dict(), 64, 8),
    ('afnb_resnet50', dict(), 64, 8),
    ('apnb_resnet50', dict(), 64, 8),
    ('bam_resnet50', dict(), 64, 8),
    ('cc_resnet50', dict(), 64, 8),
    ('da_resnet50', dict(), 64, 8),
    ('cbam_resnet50', dict(), 64, 8),
    ('eca_resnet50', dict(), 64, 8),
]


def test_custom_bn_paths_use_synchronised_statistics():
    check(run_distributed(FAST, (False, True)))


@pytest.mark.slow
@pytest.mark.parametrize('checkpointing', [False, pytest.param(True, marks=pytest.mark.exhaustive)])  # CI: the
def test_models_use_synchronised_statistics(checkpointing):  # default run checkpoints SAN / GSA / CoAtNet
    check(run_distributed(SLOW, (checkpointing,)))
