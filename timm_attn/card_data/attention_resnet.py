"""Card data of the ResNet attention zoo (``timm_attn.models.attention_resnet``): cards for the tags converted
from official checkpoints (``OFFICIAL_CODE``'s models), none for the other models (no weights).

``PAPERS``: citation (``ZOO_RESNET50``'s ``paper``) -> (title, official code or ''); ``NOTES``: the paper's
numbers for the module on ResNet-50 (ImageNet-1k), by model, and the official README's top-1 of exactly the
converted checkpoint, by ``arch.tag``; ``OFFICIAL_CODE``: model -> (official code, its license) of the
models with an official checkpoint (the tags' license, ``timm_attn.cards``'s rule)."""

PAPERS = {
    'arXiv:1810.12348': ('Gather-Excite: Exploiting Feature Context in CNNs', 'https://github.com/hujie-frank/GENet'),
    'ICME 2020': ('SPANet: Spatial Pyramid Attention Network for Enhanced Image Recognition (ICME 2020)',
                  'https://github.com/ma-xu/SPANet'),
    'arXiv:1807.06521': ('CBAM: Convolutional Block Attention Module', 'https://github.com/Jongchan/attention-module'),
    'arXiv:1807.06514': ('BAM: Bottleneck Attention Module', 'https://github.com/Jongchan/attention-module'),
    'arXiv:1803.02579': ("Concurrent Spatial and Channel 'Squeeze & Excitation' in Fully Convolutional Networks", ''),
    'arXiv:2012.11879': ('FcaNet: Frequency Channel Attention Networks', 'https://github.com/cfzd/FcaNet'),
    'arXiv:1811.12006': ('Global Second-order Pooling Convolutional Networks',
                         'https://github.com/ZilinGao/Global-Second-order-Pooling-Convolutional-Networks'),
    'arXiv:1910.03151': ('ECA-Net: Efficient Channel Attention for Deep CNNs', 'https://github.com/BangguWu/ECANet'),
    'arXiv:1904.11492': ('GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond',
                         'https://github.com/xvjiarui/GCNet'),
    'arXiv:1711.07971': ('Non-local Neural Networks', 'https://github.com/facebookresearch/video-nonlocal-net'),
    'arXiv:1810.11579': ('A^2-Nets: Double Attention Networks', ''),
    'arXiv:1809.02983': ('Dual Attention Network for Scene Segmentation', 'https://github.com/junfu1115/DANet'),
    'arXiv:1811.11721': ('CCNet: Criss-Cross Attention for Semantic Segmentation',
                         'https://github.com/speedinghzl/CCNet'),
    'arXiv:1908.07678': ('Asymmetric Non-local Neural Networks for Semantic Segmentation',
                         'https://github.com/MendelXu/ANN'),
    'arXiv:1909.11065': ('Object-Contextual Representations for Semantic Segmentation',
                         'https://github.com/HRNet/HRNet-Semantic-Segmentation'),
    'arXiv:2009.01035': ('IAUnet: Global Context-Aware Feature Learning for Person Re-Identification',
                         'https://github.com/blue-blue272/ImgReID-IAnet'),
    'arXiv:1904.02998': ('Relation-Aware Global Attention for Person Re-identification',
                         'https://github.com/microsoft/Relation-Aware-Global-Attention-Networks'),
}

NOTES = {
    'ge_resnet50': ('paper: GE-theta-plus ResNet-50 outperforms ResNet-101 (no released numbers)',),
    'spa_resnet50': ('paper abstract: +1.6% top-1 over ResNet-50 on ImageNet',
                     'official README (ma-xu/SPANet): CIFAR-100 only, SPPSEResNet50 78.21% (a CIFAR pre-activation '
                     'ResNet, not this network); no ImageNet checkpoint released, so no pretrained tag'),
    'cbam_resnet50': ('official README: top-1 77.622 (ImageNet-1k val)',),
    'bam_resnet50': ('official README: top-1 76.860 (ImageNet-1k val)',),
    'scse_resnet50': ('paper: segmentation only (no ImageNet numbers)',),
    'fca_resnet50': ('official README: top-1 78.52 (re-evaluated 78.57)',),
    'gsop_resnet50': ('official README: GSoP-Net1 top-1 error 22.02 (top-1 77.98), stage 4 at stride 16',),
    'gsop2_resnet50': ('official README: GSoP-Net2 top-1 error 21.19 (top-1 78.81), top-5 error 5.64; no checkpoint '
                       'released',),
    'eca_resnet50': ('official README: ECA-Net50 top-1 77.42 (paper 77.48)',),
    'eca_resnet101': ('official README: ECA-Net101 top-1 78.65 (paper 78.65)',),
    'fca_resnet101': ('official README: FcaNet101 top-1 79.64 (re-evaluated 79.63)',),
}

_ATTENTION_MODULE = 'https://github.com/Jongchan/attention-module'
_ECANET = 'https://github.com/BangguWu/ECANet'
_FCANET = 'https://github.com/cfzd/FcaNet'
OFFICIAL_CODE = {  # the three repositories: MIT LICENSE
    'cbam_resnet50': (_ATTENTION_MODULE, 'mit'),
    'bam_resnet50': (_ATTENTION_MODULE, 'mit'),
    'eca_resnet50': (_ECANET, 'mit'),
    'eca_resnet101': (_ECANET, 'mit'),
    'fca_resnet50': (_FCANET, 'mit'),
    'fca_resnet101': (_FCANET, 'mit'),
}

# top-1 (ImageNet-1k val, 224) of exactly the converted checkpoint, from the official README
OFFICIAL_TOP1 = {
    'cbam_resnet50.in1k': ('77.622', 'ResNet50+CBAM, 100 epochs'),
    'bam_resnet50.in1k': ('76.860', 'ResNet50+BAM, 90 epochs; official BAM: product of the branches'),
    'eca_resnet50.in1k': ('77.42', 'eca_resnet50_k3557'),
    'eca_resnet101.in1k': ('78.65', 'eca_resnet101_k3357'),
    'fca_resnet50.in1k': ('78.52', 'FcaNet50; re-evaluated 78.57'),
    'fca_resnet101.in1k': ('79.64', 'FcaNet101; re-evaluated 79.63'),
}
NOTES.update({
    name_tag: (f'official README: top-1 {top1} ({what}; ImageNet-1k val, 224, this checkpoint)',)
    for name_tag, (top1, what) in OFFICIAL_TOP1.items()
})

_CHECKPOINTS = {  # the official README's link to the checkpoint
    'cbam_resnet50': 'ResNet50+CBAM (trained for 100 epochs) checkpoint',
    'bam_resnet50': 'ResNet50+BAM (trained for 90 epochs) checkpoint',
    'eca_resnet50': 'ECA-Net50, eca_resnet50_k3557',
    'eca_resnet101': 'ECA-Net101, eca_resnet101_k3357',
    'fca_resnet50': 'FcaNet50',
    'fca_resnet101': 'FcaNet101',
}
HUB_CARD = dict(
    dataset='imagenet-1k',
    description='''
A ResNet image classifier and feature backbone with an attention module (timm's ResNet with the module of
the paper, placed where the official code places it), built as the network of the official checkpoint it
was converted from: the same architecture, parameter count and outputs.
''',
    official_code=OFFICIAL_CODE.get,  # None for the models without an official checkpoint
    weights_source=lambda arch, tag: (
        f'Converted from the official checkpoint ({_CHECKPOINTS[arch]}, linked from the README of '
        f'{OFFICIAL_CODE[arch][0]}, trained by the authors on ImageNet-1k) with the plugin\'s conversion script, '
        'which loads it strictly into this model and writes `model.safetensors`:'),
    weights_command=lambda arch, tag: (
        f'python scripts/convert_official.py {arch} OFFICIAL_CHECKPOINT.pth.tar --out hub/{arch}.{tag}'),
    citation=lambda arch: _CITATIONS[OFFICIAL_CODE[arch][0]],
)

_CITATIONS = {
    _ATTENTION_MODULE: '''
@inproceedings{woo2018cbam,
  title={CBAM: Convolutional Block Attention Module},
  author={Woo, Sanghyun and Park, Jongchan and Lee, Joon-Young and Kweon, In So},
  booktitle={ECCV},
  year={2018}
}
@inproceedings{park2018bam,
  title={BAM: Bottleneck Attention Module},
  author={Park, Jongchan and Woo, Sanghyun and Lee, Joon-Young and Kweon, In So},
  booktitle={BMVC},
  year={2018}
}
''',
    _FCANET: '''
@inproceedings{qin2021fcanet,
  title={FcaNet: Frequency Channel Attention Networks},
  author={Qin, Zequn and Zhang, Pengyi and Wu, Fei and Li, Xi},
  booktitle={ICCV},
  year={2021}
}
''',
    _ECANET: '''
@inproceedings{wang2020eca,
  title={ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks},
  author={Wang, Qilong and Wu, Banggu and Zhu, Pengfei and Li, Peihua and Zuo, Wangmeng and Hu, Qinghua},
  booktitle={CVPR},
  year={2020}
}
''',
}
