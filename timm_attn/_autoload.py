"""Import ``timm_attn`` whenever a program imports ``timm``, so that timm's own scripts
(train.py, validate.py, benchmark.py, ``create_model('hf-hub:...')``) see the plugin's models.

The installed ``timm_attn_autoload.pth`` runs ``install()`` of this file at interpreter start-up. That
only puts a small finder on ``sys.meta_path``: nothing heavy is imported, and Python programs that
never import timm never import torch because of it. When ``timm`` is imported, the finder lets the
normal import run and then imports ``timm_attn`` (which registers the models), and removes itself.

Opt out with the environment variable ``TIMM_ATTN_AUTOLOAD=0``; ``import timm_attn`` still works.

This file is loaded by path from the .pth line, not as ``timm_attn._autoload``, so that importing it
does not import the ``timm_attn`` package (and torch) at start-up. It uses the standard library only.
"""
import importlib.abc
import importlib.util
import os
import sys
import warnings

_TARGET = 'timm'
_PLUGIN = 'timm_attn'


def enabled() -> bool:
    return os.environ.get('TIMM_ATTN_AUTOLOAD', '1').strip().lower() not in ('0', 'false', 'no', 'off')


class _LoaderWrapper(importlib.abc.Loader):
    """Runs timm's own loader, then imports the plugin."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if _PLUGIN in sys.modules:
            return
        try:
            __import__(_PLUGIN)
        except Exception as e:  # timm must keep working even if the plugin is broken
            warnings.warn(f'timm-attn could not register its models ({type(e).__name__}: {e}); '
                          f'set TIMM_ATTN_AUTOLOAD=0 to silence this', RuntimeWarning, stacklevel=2)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class TimmImportHook(importlib.abc.MetaPathFinder):
    """Meta-path finder that wraps the loader of the top-level ``timm`` package, once."""

    timm_attn_hook = True  # marker: this file may be loaded more than once, under different names

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        _uninstall()
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _LoaderWrapper(spec.loader)
        return spec


def _uninstall():
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, 'timm_attn_hook', False)]


def install():
    """Put the hook in place (no-op when disabled, already installed, or timm is already imported)."""
    if not enabled() or any(getattr(f, 'timm_attn_hook', False) for f in sys.meta_path):
        return
    if _TARGET in sys.modules:
        if _PLUGIN not in sys.modules:
            __import__(_PLUGIN)
        return
    sys.meta_path.insert(0, TimmImportHook())
