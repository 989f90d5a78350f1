"""Card data: what the Hub model cards say beyond the pretrained cfgs, one module per model family (named as
the family's module in ``timm_attn.models``). Prose and paper tables live here, not in the model files.

Each family module has:
    NOTES       the paper's numbers per model or ``arch.tag`` (the pretrained cfgs' ``notes``)
    HUB_CARD    for a family with pretrained tags: ``dataset``, ``description``, ``official_code``
                ((url, license) of the official code release, or None when none was released),
                ``weights_source``, ``weights_command``, ``citation`` (read by ``timm_attn.cards``)
"""
import importlib
from types import ModuleType

__all__ = ['family_card_data']


def family_card_data(model_module: str) -> ModuleType:
    """The card data of the family whose models live in ``model_module`` (e.g. ``timm_attn.models.san``)."""
    return importlib.import_module(f'{__name__}.{model_module.rsplit(".", 1)[-1]}')
