"""Card data of ACmix (``timm_attn.models.acmix``): Swin weights converted from the official release."""

NOTES = {
    'acmix_swin_tiny_patch4_window7_224.in1k': ('paper: top-1 81.9 (ImageNet-1k val, 224, official checkpoint)',),
    'acmix_swin_small_patch4_window7_224.in1k': ('paper: top-1 83.5 (ImageNet-1k val, 224, official checkpoint)',),
}

HUB_CARD = dict(
    dataset='imagenet-1k',
    description='''
An ACmix Swin Transformer image classifier: Swin's shifted-window attention and a convolution path
(a 1x1 mixing of the q/k/v maps followed by a grouped 3x3 convolution) share the qkv projection and
are summed with learnable weights, with exactly the architecture, parameter count and checkpoint
layout of the official implementation, built on timm's Swin Transformer.
''',
    # the official repository has no license file: the weights' license is unknown
    official_code=('https://github.com/LeapLabTHU/ACmix', 'unknown'),
    weights_source='''
Converted from the official checkpoint (linked from https://github.com/LeapLabTHU/ACmix, trained by
the authors on ImageNet-1k for 300 epochs) with the plugin's conversion script, which loads it
strictly into this model and writes `model.safetensors`:
''',
    weights_command='python scripts/convert_official.py {arch} CHECKPOINT.pth --out hub/{arch}.{tag}',
    citation='''
@inproceedings{pan2022integration,
  title={On the Integration of Self-Attention and Convolution},
  author={Pan, Xuran and Ge, Chunjiang and Lu, Rui and Song, Shiji and Chen, Guanfang and Huang, Zeyi and Huang, Gao},
  booktitle={CVPR},
  year={2022}
}
''',
)
