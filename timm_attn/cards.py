"""Hugging Face Hub model cards, generated from the code (pretrained cfgs, the family's card data in
``timm_attn.card_data``, and counts measured on the model itself), so that a card cannot drift from what it
describes.

Licenses, one rule for every family: the ``license`` of a pretrained cfg (and so of its card) is the license of
what its weights come from.
    * Weights converted from an official release carry the license of the official code they are released
      with (``official_code`` in the card data): SAN (hszhao/SAN) 'mit'; ACmix (LeapLabTHU/ACmix has no
      license file) 'unknown'; PVT 'apache-2.0'; the ResNet attention zoo per model (``official_code`` a
      function of the model): CBAM / BAM (Jongchan/attention-module) 'mit', ECA-Net (BangguWu/ECANet) 'mit',
      FcaNet (cfzd/FcaNet) 'mit'.
    * Weights trained by timm-attn itself (no official code or weights: GSA-Net, CoAtNet) carry the
      project's license, 'apache-2.0'; the card says "no official code released".
    * A cfg without weights (no pretrained tag: the rest of the ResNet-50 zoo, ACmix-ResNet, CoAtNet-5/6/7, the Residual
      Attention Networks) describes nothing but this code: 'apache-2.0'.
``tests/test_hub.py`` checks every cfg against this rule.

``scripts/generate_cards.py`` writes one card per pretrained tag into ``hub_cards/``; a test
regenerates them and fails when a file differs. ``scripts/convert_official.py`` puts the same card
into each Hub repo folder as README.md.
"""
from typing import Dict, List, Optional

__all__ = ['family_official_code', 'model_stats', 'render_card', 'plugin_pretrained_tags']


def plugin_pretrained_tags(pattern: str = '*') -> List[str]:
    """``arch.tag`` of every pretrained tag the plugin registers."""
    import timm
    import timm_attn  # noqa: F401
    return [n for n in timm.list_pretrained(pattern)
            if timm.models.model_entrypoint(n.split('.')[0]).__module__.startswith('timm_attn.')]


def model_stats(arch: str, input_size) -> Dict[str, float]:
    """Parameters (M), GMACs and activations (M) for one image at ``input_size`` in eval mode, counted on
    the meta device by ``timm_attn.flops`` (nothing computed). ``arch`` may be ``arch.tag`` (a tag whose
    cfg fixes the input size builds the model for it)."""
    import timm
    from .flops import count_macs_and_activations
    model = timm.create_model(arch, device='meta')
    counts = count_macs_and_activations(model, tuple(input_size))
    return dict(params_m=sum(p.numel() for p in model.parameters()) / 1e6, **counts)


def _family_card(arch: str) -> Dict[str, str]:
    import timm
    from .card_data import family_card_data
    return family_card_data(timm.models.model_entrypoint(arch).__module__).HUB_CARD


def _family_dataset(family: Dict, arch: str, tag: str) -> str:
    """The family's ``dataset``: a Hub dataset id, or a function of ``arch`` / ``tag`` giving one."""
    dataset = family['dataset']
    return dataset(arch, tag) if callable(dataset) else dataset


def _family_command(family: Dict, arch: str, tag: str) -> str:
    """The family's ``weights_command``: a format string of ``arch`` / ``tag``, or a function of them."""
    command = family['weights_command']
    return command(arch, tag) if callable(command) else command.format(arch=arch, tag=tag)


def _family_text(text, *args) -> str:
    """A card-data text, or a function of ``arch`` (and ``tag``) giving one."""
    return text(*args) if callable(text) else text


def family_official_code(family: Dict, arch: str):
    """The family's ``official_code`` for ``arch``: (url, license), None, or a function of ``arch`` giving one
    (a family whose models come from several official repositories: the ResNet attention zoo)."""
    official = family.get('official_code')
    return official(arch) if callable(official) else official


def _official_code(family: Dict, arch: str) -> str:
    official = family_official_code(family, arch)
    if official is None:
        return 'no official code released'
    url, license_id = official
    return f'{url} (license: {license_id})'


def render_card(name_tag: str, stats: Optional[Dict[str, float]] = None, weights_source: Optional[str] = None,
                weights_command: Optional[str] = None, pretrained_cfg: Optional[Dict] = None,
                usage_name: Optional[str] = None) -> str:
    """The README.md of the Hub repo of ``name_tag`` (``arch.tag``).

    For weights trained here rather than converted: ``weights_source`` / ``weights_command`` replace the
    family's, ``pretrained_cfg`` stands in for a tag the plugin does not register, and ``usage_name``
    (e.g. ``'hf-hub:org/repo'``) is what the usage snippets pass to ``timm.create_model``.
    """
    import timm
    arch, tag = name_tag.split('.', 1)
    registered = name_tag in timm.models.get_arch_pretrained_cfgs(arch)
    if registered:
        cfg = timm.models.get_pretrained_cfg(name_tag).to_dict()
    elif pretrained_cfg is not None:
        cfg = dict(pretrained_cfg)
    else:
        raise ValueError(f'{name_tag} is not a registered pretrained tag; pass its pretrained_cfg')
    usage_name = usage_name or name_tag
    family = _family_card(arch)
    dataset = _family_dataset(family, arch, tag)
    stats = stats or model_stats(name_tag if registered else arch, cfg['input_size'])
    paper_id = cfg.get('paper_ids') or ''
    paper_url = f"https://arxiv.org/abs/{paper_id.split(':', 1)[1]}" if paper_id.startswith('arXiv:') else ''
    size = f"{cfg['input_size'][1]} x {cfg['input_size'][2]}"
    example = ', '.join(str(s) for s in cfg['input_size'])
    notes = '\n'.join(f'- {n}' for n in cfg.get('notes') or ())
    lines = [
        '---',
        'tags:',
        '- image-classification',
        '- timm',
        '- timm-attn',
        'library_name: timm',
        f"license: {cfg.get('license', 'unknown')}",
        'datasets:',
        f'- {dataset}',
        '---',
        f'# Model card for {name_tag}',
        '',
        f"{family['description'].strip()}",
        '',
        f"Paper: [{cfg.get('paper_name')}]({paper_url}) ({paper_id}). "
        f'Official code: {_official_code(family, arch)}. Implementation: timm-attn (a timm plugin).',
        '',
        '## Model details',
        '- **Model type:** image classification / feature backbone',
        f"- **Params (M):** {stats['params_m']:.2f}",
        f"- **GMACs:** {stats['gmacs']:.2f}",
        f"- **Activations (M):** {stats['acts_m']:.2f}",
        f'- **Image size:** {size} (any size from '
        f"{cfg['min_input_size'][1]} x {cfg['min_input_size'][2]} works)" if cfg.get('min_input_size') else
        f'- **Image size:** {size}',
        f"- **Preprocessing:** resize ({cfg['interpolation']}) and center crop (crop_pct {cfg['crop_pct']}), "
        f"mean {tuple(cfg['mean'])}, std {tuple(cfg['std'])}",
        f'- **Dataset:** {dataset}',
        '',
        'Params, GMACs (multiply-adds of convolutions and matrix products) and activations are measured on '
        'this implementation for one image at the image size above.',
        '',
        '## Accuracy reported in the paper',
        'These are the paper\'s numbers, not measured on these weights:',
        notes or '- (none reported)',
        '',
        '## Where the weights come from',
        (weights_source or _family_text(family['weights_source'], arch, tag)).strip(),
        '',
        '```bash',
        (weights_command or _family_command(family, arch, tag)).strip(),
        '```',
        '',
        '## Usage',
        '### Image classification',
        '```python',
        'import timm, torch',
        'from PIL import Image',
        '',
        f"model = timm.create_model('{usage_name}', pretrained=True).eval()",
        'config = timm.data.resolve_data_config(model=model)',
        'transform = timm.data.create_transform(**config)',
        "img = Image.open('image.jpg').convert('RGB')",
        'with torch.no_grad():',
        '    top5 = model(transform(img).unsqueeze(0)).softmax(-1).topk(5)',
        '```',
        '### Feature maps',
        '```python',
        f"model = timm.create_model('{usage_name}', pretrained=True, features_only=True).eval()",
        f'features = model(torch.randn(1, {example}))  # one map per stage',
        'print(model.feature_info.channels(), model.feature_info.reduction())',
        '```',
        '### Image embeddings',
        '```python',
        f"model = timm.create_model('{usage_name}', pretrained=True, num_classes=0).eval()",
        f'embedding = model(torch.randn(1, {example}))  # (1, num_features) pooled',
        '```',
        '',
        '## Citation',
        '```bibtex',
        _family_text(family['citation'], arch).strip(),
        '```',
        '',
    ]
    return '\n'.join(lines)
