"""``build_model_with_cfg`` with pretrained-weight failures explained.

timm reports a missing cache entry, an unreachable Hub, a truncated safetensors file or weights of
the wrong shape with the raw exception of the library that hit it (often without the repo's name).
Every family builds through ``build_model`` so that these become one ``PretrainedWeightsError``
naming the model, the repo (or file) and what to do; the original exception stays chained.
"""
from dataclasses import asdict
from typing import Any, Dict, Iterator

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg
from timm.models._builder import resolve_pretrained_cfg

from ._checkpoint import CheckpointMismatchError

__all__ = ['PretrainedWeightsError', 'build_model', 'base_cfg', 'cfg_kwargs', 'describe_weights_failure']


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights could not be found, downloaded or loaded."""


def _chain(e: BaseException) -> Iterator[BaseException]:
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _how_to_get_weights(arch: str, cfg: Dict[str, Any], repo: str) -> str:
    origin = cfg.get('origin_url') or 'the official repository'
    return (
        f'To get the weights: download the official checkpoint ({origin}) and convert it with\n'
        f'    python scripts/convert_official.py {arch} CHECKPOINT --out DIR\n'
        f'then load DIR with timm.create_model(\'{arch}\', pretrained=True, '
        f'pretrained_cfg_overlay=dict(file=\'DIR/model.safetensors\')) or publish it with\n'
        f'    python scripts/push_to_hub.py DIR --repo-id {repo}\n'
        f'A mirror of the repos can be used by setting HF_ENDPOINT and / or TIMM_ATTN_HUB_NAMESPACE.')


def describe_weights_failure(variant: str, cfg: Dict[str, Any], error: BaseException) -> str:
    """A message naming the weights' source and the reason, with a remedy where there is one."""
    repo = cfg.get('hf_hub_id')
    filename = cfg.get('hf_hub_filename') or 'model.safetensors'
    if cfg.get('file'):
        where = f"file '{cfg['file']}'"
    elif cfg.get('url'):
        where = f"url '{cfg['url']}'"
    else:
        where = f"Hugging Face Hub repo '{repo}' (file '{filename}')"
    head = f'could not load pretrained weights for {variant} from {where}'
    names = {type(e).__name__ for e in _chain(error)}
    if names & {'LocalEntryNotFoundError', 'OfflineModeIsEnabled', 'ConnectError', 'ConnectionError',
                'ConnectTimeout', 'NameResolutionError'}:
        return (f'{head}: it is not in the local Hugging Face cache and the Hub could not be reached '
                f'(or HF_HUB_OFFLINE is set).\n' + _how_to_get_weights(variant, cfg, repo or 'ORG/REPO'))
    if names & {'RepositoryNotFoundError', 'GatedRepoError'}:
        return (f'{head}: the repo does not exist on the Hub (or is not accessible).\n'
                + _how_to_get_weights(variant, cfg, repo or 'ORG/REPO'))
    if names & {'RemoteEntryNotFoundError', 'EntryNotFoundError'}:
        return f'{head}: the repo has no such file. The plugin publishes weights as model.safetensors.'
    if 'SafetensorError' in names:
        return (f'{head}: the file is corrupted or truncated ({error}). Delete it from the Hugging Face cache '
                f'(`hf cache delete` or the folder under HF_HUB_CACHE) and download it again.')
    if 'CheckpointMismatchError' in names or 'size mismatch' in str(error) or 'Missing key' in str(error):
        return f'{head}: the weights do not fit this model.\n{error}'
    return f'{head}: {type(error).__name__}: {error}'


def build_model(model_cls, variant: str, pretrained: bool = False, **kwargs):
    """``timm.models.build_model_with_cfg`` that raises ``PretrainedWeightsError`` for weight failures."""
    try:
        return build_model_with_cfg(model_cls, variant, pretrained, **kwargs)
    except PretrainedWeightsError:
        raise
    except Exception as e:
        if not pretrained:
            raise
        cfg = resolve_pretrained_cfg(
            variant, pretrained_cfg=kwargs.get('pretrained_cfg'),
            pretrained_cfg_overlay=kwargs.get('pretrained_cfg_overlay')).to_dict()
        message = describe_weights_failure(variant, cfg, e)
        if any(isinstance(c, CheckpointMismatchError) for c in _chain(e)):
            raise CheckpointMismatchError(message) from e
        raise PretrainedWeightsError(message) from e


def cfg_kwargs(cfg: Any, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """A variant's config dataclass (``model_cfgs[name]``) as constructor arguments, the caller's own on top."""
    return dict(asdict(cfg), **kwargs)


def base_cfg(**kwargs) -> Dict[str, Any]:
    """The pretrained-cfg fields every family shares (ImageNet-1k at 224, stride 32, 0.875 crop, bilinear);
    each family's ``_cfg`` adds its own."""
    return {
        'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7), 'crop_pct': 0.875,
        'interpolation': 'bilinear', 'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        **kwargs,
    }
