"""timm's own scripts as the tests run them: where they are, tiny ImageFolders to feed them, a run with this
checkout's ``timm_attn`` first on the path, one epoch of ``train.py``, a folder laid out as ``train.py``
leaves it, and the check that a recipe's keys are ``train.py`` options. Every test that writes an
ImageFolder or runs ``train.py`` goes through here.

timm's ``train.py``, ``validate.py``, ``benchmark.py``, ``inference.py`` and ``onnx_export.py`` exist only
in timm's GitHub repository: the tests read them from the folder named by ``$TIMM_SCRIPTS`` (the README
says how to fill it) and skip, saying so, when it is unset. Nothing of them is copied here.
"""
import os
import re
import subprocess
import sys

import pytest
import torch

import timm_attn

SCRIPTS = os.environ.get('TIMM_SCRIPTS', '')
_SCRIPT_NAMES = ('train.py', 'validate.py', 'benchmark.py', 'inference.py')
_missing = 'TIMM_SCRIPTS is not set' if not SCRIPTS else next(
    (f'TIMM_SCRIPTS={SCRIPTS} has no {n}' for n in _SCRIPT_NAMES if not os.path.isfile(os.path.join(SCRIPTS, n))),
    None)
needs_scripts = pytest.mark.skipif(
    _missing is not None,
    reason=f"{_missing}: timm's train.py / validate.py / benchmark.py / inference.py (timm's GitHub "
           f"repository only) are needed; the README says how to get them")


def script(name):
    """Path of one of timm's scripts in ``$TIMM_SCRIPTS``."""
    return os.path.join(SCRIPTS, name)


def write_image_folder(root, images):
    """``root/<class>/<file>`` PNGs from ``(class name, file name, H x W x 3 uint8 array)`` items. Returns
    ``str(root)``."""
    from PIL import Image
    for cls, name, arr in images:
        os.makedirs(os.path.join(root, cls), exist_ok=True)
        Image.fromarray(arr).save(os.path.join(root, cls, name))
    return str(root)


def image_folder(root, classes=2, per_class=4, size=144, splits=('train', 'validation')):
    """``root/<split>/class<c>/*.png``: seeded random images, file names unique across the folder (timm's
    inference.py indexes its results by file name). Returns ``root``."""
    g = torch.Generator().manual_seed(0)
    random_image = lambda: (torch.rand(size, size, 3, generator=g) * 255).to(torch.uint8).numpy()  # noqa: E731
    for split in splits:
        write_image_folder(root / split, [(f'class{c}', f'{split}_{c}_{i}.png', random_image())
                                          for c in range(classes) for i in range(per_class)])
    return root


def write_train_output(folder, args, state_dict, checkpoint='model_best.pth.tar'):
    """A folder laid out as timm's train.py leaves it, as far as ``timm_attn.train_output`` reads it:
    ``args.yaml`` and a checkpoint (``{'epoch', 'arch', 'state_dict'}``). Returns ``str(folder)``."""
    import yaml
    os.makedirs(folder)
    with open(os.path.join(folder, 'args.yaml'), 'w') as f:
        yaml.safe_dump(args, f)
    torch.save({'epoch': 0, 'arch': args.get('model'), 'state_dict': state_dict}, os.path.join(folder, checkpoint))
    return str(folder)


def run_peer_script(name, args, timeout=300, cwd=None, env=None):
    """``python $TIMM_SCRIPTS/<name> <args>`` on 2 threads; the script finds the plugin's models through the
    autoload hook (``TIMM_ATTN_AUTOLOAD`` unset), this checkout's ``timm_attn`` first on the path. ``env``
    replaces the environment it starts from (default: this process's)."""
    env = {k: v for k, v in (os.environ if env is None else env).items() if k != 'TIMM_ATTN_AUTOLOAD'}
    root = os.path.dirname(os.path.dirname(os.path.abspath(timm_attn.__file__)))
    env.update(OMP_NUM_THREADS='2', PYTHONPATH=os.pathsep.join(filter(None, [root, env.get('PYTHONPATH')])))
    return subprocess.run([sys.executable, script(name)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def run_train_py(data, output, args, experiment='smoke', env=None):
    """One epoch of timm's train.py on the CPU (no workers, no prefetcher, no warm-up) on the ImageFolder
    ``data``, written to ``output/experiment``; asserts it exits 0. Returns train.py's output (stdout + stderr)."""
    out = run_peer_script('train.py', [
        '--data-dir', data, '--device', 'cpu', '--epochs', '1', '--warmup-epochs', '0', '--workers', '0',
        '--no-prefetcher', '--output', output, '--experiment', experiment, *args], env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def train_one_epoch(recipe, tmp_path, size, extra_args=()):
    """timm's train.py with a shipped recipe (``timm_attn/recipes/<recipe>``) for one epoch of batch 2 on a
    2-class ImageFolder of ``size``-pixel images, on the CPU; asserts it exits 0 and writes its checkpoint.
    Returns train.py's output (stdout + stderr)."""
    from importlib import resources
    data = image_folder(tmp_path / 'data', per_class=2, size=size, splits=('train',))
    config = str(resources.files('timm_attn') / 'recipes' / recipe)
    log = run_train_py(data, tmp_path / 'out', ['--config', config, '--num-classes', '2', '-b', '2',
                                                '--log-interval', '1', *extra_args])
    assert (tmp_path / 'out' / 'smoke' / 'last.pth.tar').exists()
    return log


def assert_train_py_options(cfg):
    """Every key of a recipe is one of train.py's options (argparse would ignore a typo in a config file)."""
    source = open(script('train.py')).read()
    for key in cfg:
        assert re.search(r"add_argument\([^)]*'--%s'" % key.replace('_', '-'), source), key
