"""The CPU side of ``scripts/gpu_check.py``: run against the CPU itself it passes, a device path that computes
something else fails, bad arguments are refused, and the script runs as a program."""
import json
import os
import subprocess
import sys

import pytest
import torch

from timm_attn import gpu_check
from timm_attn.gpu_check import CheckResult, check_model, run_gpu_check


def test_cpu_against_cpu_passes():
    results = check_model('gsa_resnet26_cifar', 'cpu', ('fp32', 'channels_last', 'bf16'), img_size=32)
    assert [r.variant for r in results] == ['fp32', 'channels_last', 'bf16']
    assert all(r.ok for r in results), results
    fp32, _, bf16 = results
    assert fp32.eval_err < 1e-5 and fp32.grad_err < 1e-5
    assert 0 < bf16.eval_err < gpu_check.TOLERANCES['bf16'][0]  # autocast really ran in bfloat16


def test_a_wrong_device_path_fails(monkeypatch):
    """A variant whose forward differs (here: one BatchNorm's eps changed after the reference) is reported."""
    real_run = gpu_check._run

    def perturbed(model, x, y, amp_dtype, compiled):
        if x.device.type == 'cpu' and amp_dtype is None and x.is_contiguous(memory_format=torch.channels_last) \
                and x.shape[0] > 1:
            next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)).eps = 0.5
        return real_run(model, x, y, amp_dtype, compiled)

    monkeypatch.setattr(gpu_check, '_run', perturbed)
    fp32, cl = check_model('gsa_resnet26_cifar', 'cpu', ('fp32', 'channels_last'), img_size=32)
    assert fp32.ok
    assert not cl.ok and cl.eval_err > cl.eval_tol


def test_errors_are_reported_not_raised():
    res = check_model('gsa_resnet26_cifar', 'cpu', ('fp32',), img_size=32)[0]
    assert res.ok
    broken = check_model('gsa_resnet26_cifar', 'no-such-device', ('fp32',), img_size=32)[0]
    assert not broken.ok and broken.error


def test_result_verdicts():
    assert CheckResult('m', 'fp32', 1e-4, 1e-4, 1e-3, 1e-3, 0.).ok
    assert not CheckResult('m', 'fp32', 2e-3, 1e-4, 1e-3, 1e-3, 0.).ok
    assert not CheckResult('m', 'fp32', float('nan'), 1e-4, 1e-3, 1e-3, 0.).ok


def test_bad_arguments():
    with pytest.raises(ValueError, match='unknown variants'):
        check_model('gsa_resnet26_cifar', 'cpu', ('fp64',))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='no CUDA device'):
            run_gpu_check('cuda', ['gsa_resnet26_cifar'], bench=False)


def test_time_budget_skips_and_lists():
    report = run_gpu_check('cpu', ['gsa_resnet26_cifar', 'gsa_resnet38_cifar'], ('fp32',), bench=False,
                           time_budget_s=0., quiet=True)
    assert report['checks'] == []
    assert report['skipped'] == ['gsa_resnet26_cifar:fp32', 'gsa_resnet38_cifar:fp32']


@pytest.mark.slow
def test_script_runs(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / 'report.json'
    proc = subprocess.run(
        [sys.executable, os.path.join(root, 'scripts', 'gpu_check.py'), '--device', 'cpu', '--models',
         'gsa_resnet26_cifar', '--variants', 'fp32', '--no-bench', '--out', str(out)],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='2'))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert '| gsa_resnet26_cifar | fp32 |' in proc.stdout and 'all checks passed' in proc.stdout
    report = json.loads(out.read_text())
    assert report['ok'] and report['checks'][0]['variant'] == 'fp32'
