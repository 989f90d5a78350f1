"""The optional dependencies of ``timm-attn robustness``: matplotlib (the PNG plot) and tqdm (progress bars),
installed by the extra ``timm-attn[robustness]``. The core package does not need them."""
import importlib
from typing import List

INSTALL_HINT = "pip install 'timm-attn[robustness]'"
EXTRA_MODULES = ('matplotlib', 'tqdm')


def missing_extras() -> List[str]:
    """The modules of ``EXTRA_MODULES`` that cannot be imported."""
    missing = []
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def require(name: str) -> None:
    """ImportError naming the extra to install when ``name`` (one of ``EXTRA_MODULES``) is missing."""
    try:
        importlib.import_module(name)
    except ImportError as e:
        raise ImportError(f'{name} is needed by timm-attn robustness and is not installed: {INSTALL_HINT}') from e
