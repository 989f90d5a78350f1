"""Where the plugin's pretrained weights live on the Hugging Face Hub.

Every pretrained tag's ``hf_hub_id`` is ``{HUB_NAMESPACE}/{model}.{tag}``. Set the environment
variable ``TIMM_ATTN_HUB_NAMESPACE`` (before ``timm_attn`` is imported) to read the same repos from
a mirror organisation.
"""
import os

__all__ = ['HUB_NAMESPACE', 'hub_id']

HUB_NAMESPACE = os.environ.get('TIMM_ATTN_HUB_NAMESPACE', 'timm-attn').strip('/')


def hub_id(model_name_tag: str) -> str:
    """``'san10_patchwise.in1k'`` -> ``'timm-attn/san10_patchwise.in1k'``."""
    return f'{HUB_NAMESPACE}/{model_name_tag}'
