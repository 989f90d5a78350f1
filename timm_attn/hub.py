"""Where the plugin's pretrained weights live on the Hugging Face Hub.

Every pretrained tag's ``hf_hub_id`` is ``{HUB_NAMESPACE}/{model}.{tag}``. Set the environment
variable ``TIMM_ATTN_HUB_NAMESPACE`` (before ``timm_attn`` is imported) to read the same repos from
a mirror organisation.
"""
import hashlib
import os
from typing import List, Optional

__all__ = ['HUB_NAMESPACE', 'hub_id', 'export_hub_folder', 'sha256_file']

HUB_NAMESPACE = os.environ.get('TIMM_ATTN_HUB_NAMESPACE', 'timm-attn').strip('/')


def hub_id(model_name_tag: str) -> str:
    """``'san10_patchwise.in1k'`` -> ``'timm-attn/san10_patchwise.in1k'``."""
    return f'{HUB_NAMESPACE}/{model_name_tag}'


def export_hub_folder(model, folder: str, name_tag: str, weights_source: Optional[str] = None,
                      weights_command: Optional[str] = None, usage_name: Optional[str] = None) -> List[str]:
    """Write a Hub repo folder for ``model``: ``model.safetensors`` (never a pickle), ``config.json`` as
    timm's ``save_for_hf`` writes it, and the generated ``README.md`` card (see ``cards.render_card`` for
    the optional arguments). Returns the file names."""
    from timm.models import save_for_hf
    from .cards import render_card
    os.makedirs(folder, exist_ok=True)
    save_for_hf(model, folder, safe_serialization=True)
    with open(os.path.join(folder, 'README.md'), 'w') as f:
        f.write(render_card(name_tag, weights_source=weights_source, weights_command=weights_command,
                            pretrained_cfg=getattr(model, 'pretrained_cfg', None), usage_name=usage_name))
    return sorted(os.listdir(folder))


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
