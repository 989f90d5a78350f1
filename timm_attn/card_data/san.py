"""Card data of SAN (``timm_attn.models.san``): weights converted from the official release."""

# top-1 / top-5 on ImageNet-1k val at 224, from the paper's Table 2 and the official README
PAPER_ACCURACY = {
    'san10_pairwise': (74.9, 92.1), 'san10_patchwise': (77.1, 93.5),
    'san15_pairwise': (76.6, 93.1), 'san15_patchwise': (78.0, 93.9),
    'san19_pairwise': (76.9, 93.4), 'san19_patchwise': (78.2, 93.9),
}

NOTES = {
    f'{name}.in1k': (f'paper: top-1 {top1}, top-5 {top5} (ImageNet-1k val, 224, official checkpoint)',)
    for name, (top1, top5) in PAPER_ACCURACY.items()
}

HUB_CARD = dict(
    dataset='imagenet-1k',
    description='''
A SAN (self-attention network) image classifier: a ResNet-style network whose spatial convolutions
are local self-attention over a k x k footprint, pairwise (softmax over a relation of each pair of
positions) or patchwise (weights from the whole footprint at once), with exactly the architecture,
parameter count and checkpoint layout of the official implementation.
''',
    official_code=('https://github.com/hszhao/SAN', 'mit'),
    weights_source='''
Converted from the official checkpoint (`model_best.pth` linked from https://github.com/hszhao/SAN,
trained by the authors on ImageNet-1k for 100 epochs) with the plugin's conversion script, which
loads it strictly into this model and writes `model.safetensors`:
''',
    weights_command='python scripts/convert_official.py {arch} model_best.pth --out hub/{arch}.{tag}',
    citation='''
@inproceedings{zhao2020exploring,
  title={Exploring Self-attention for Image Recognition},
  author={Zhao, Hengshuang and Jia, Jiaya and Koltun, Vladlen},
  booktitle={CVPR},
  year={2020}
}
''',
)
