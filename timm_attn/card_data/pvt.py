"""Card data of PVT v1 (``timm_attn.models.pvt``): weights converted from the official release."""

# top-1 on ImageNet-1k val at 224, from the paper's Table 2 and the official README (branch v1)
PAPER_ACCURACY = {'pvt_tiny': 75.1, 'pvt_small': 79.8, 'pvt_medium': 81.2, 'pvt_large': 81.7}

NOTES = {
    f'{name}.in1k': (f'paper: top-1 {top1} (ImageNet-1k val, 224, official checkpoint)',)
    for name, top1 in PAPER_ACCURACY.items()
}

HUB_CARD = dict(
    dataset='imagenet-1k',
    description='''
A PVT (Pyramid Vision Transformer, v1) image classifier and feature backbone: four Transformer stages at
strides 4 to 32, each opened by a strided patch embedding, whose attention takes its keys and values from
the token grid reduced by a strided convolution (spatial-reduction attention), and a class token in the
last stage, with exactly the architecture, parameter count and checkpoint layout of the official
implementation.
''',
    official_code=('https://github.com/whai362/PVT', 'apache-2.0'),
    weights_source='''
Converted from the official checkpoint (linked from the README of https://github.com/whai362/PVT, branch
v1, trained by the authors on ImageNet-1k for 300 epochs) with the plugin's conversion script, which
loads it strictly into this model and writes `model.safetensors`:
''',
    weights_command='python scripts/convert_official.py {arch} {arch}.pth --out hub/{arch}.{tag}',
    citation='''
@inproceedings{wang2021pyramid,
  title={Pyramid Vision Transformer: A Versatile Backbone for Dense Prediction without Convolutions},
  author={Wang, Wenhai and Xie, Enze and Li, Xiang and Fan, Deng-Ping and Song, Kaitao and Liang, Ding and
          Lu, Tong and Luo, Ping and Shao, Ling},
  booktitle={ICCV},
  year={2021}
}
''',
)
