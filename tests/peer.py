"""timm's own scripts (``../shared/peer/timm``) as the tests run them: where they are, a tiny ImageFolder to feed
them, a run with this checkout's ``timm_attn`` first on the path, and the check that a recipe's keys are
``train.py`` options."""
import os
import re
import subprocess
import sys

import pytest
import torch

import timm_attn
from conftest import SHARED

PEER = os.path.join(SHARED, 'peer', 'timm')
needs_shared = pytest.mark.skipif(not os.path.isdir(PEER), reason='../shared (timm peer scripts) not present')


def image_folder(root, classes=2, per_class=4, size=144, splits=('train', 'validation')):
    """``root/<split>/class<c>/*.png``: seeded random images, file names unique across the folder (timm's
    inference.py indexes its results by file name). Returns ``root``."""
    from PIL import Image
    g = torch.Generator().manual_seed(0)
    for split in splits:
        for c in range(classes):
            d = root / split / f'class{c}'
            d.mkdir(parents=True)
            for i in range(per_class):
                arr = (torch.rand(size, size, 3, generator=g) * 255).to(torch.uint8).numpy()
                Image.fromarray(arr).save(d / f'{split}_{c}_{i}.png')
    return root


def run_peer_script(script, args, timeout=300, cwd=None):
    """``python <PEER>/<script> <args>`` on 2 threads; the script finds the plugin's models through the
    autoload hook (``TIMM_ATTN_AUTOLOAD`` unset), this checkout's ``timm_attn`` first on the path."""
    env = {k: v for k, v in os.environ.items() if k != 'TIMM_ATTN_AUTOLOAD'}
    root = os.path.dirname(os.path.dirname(os.path.abspath(timm_attn.__file__)))
    env.update(OMP_NUM_THREADS='2', PYTHONPATH=os.pathsep.join(filter(None, [root, env.get('PYTHONPATH')])))
    return subprocess.run([sys.executable, os.path.join(PEER, script)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def train_one_epoch(recipe, tmp_path, size, extra_args=()):
    """timm's train.py with a shipped recipe (``timm_attn/recipes/<recipe>``) for one epoch of batch 2 on a
    2-class ImageFolder of ``size``-pixel images, on the CPU; asserts it exits 0 and writes its checkpoint.
    Returns train.py's output (stdout + stderr)."""
    from importlib import resources
    data = image_folder(tmp_path / 'data', per_class=2, size=size, splits=('train',))
    config = str(resources.files('timm_attn') / 'recipes' / recipe)
    out = run_peer_script('train.py', [
        '--config', config, '--data-dir', data, '--device', 'cpu', '--num-classes', '2', '-b', '2', '--epochs', '1',
        '--warmup-epochs', '0', '--workers', '0', '--no-prefetcher', '--output', tmp_path / 'out',
        '--experiment', 'smoke', '--log-interval', '1', *extra_args])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / 'out' / 'smoke' / 'last.pth.tar').exists()
    return out.stdout + out.stderr


def assert_train_py_options(cfg):
    """Every key of a recipe is one of train.py's options (argparse would ignore a typo in a config file)."""
    source = open(os.path.join(PEER, 'train.py')).read()
    for key in cfg:
        assert re.search(r"add_argument\([^)]*'--%s'" % key.replace('_', '-'), source), key
