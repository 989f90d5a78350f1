"""Card data of the ResNet-50 attention zoo (``timm_attn.models.attention_resnet``): no weights (no card).

``PAPERS``: citation (``ZOO_RESNET50``'s ``paper``) -> (title, official code or ''); ``NOTES``: the paper's
numbers for the module on ResNet-50 (ImageNet-1k), by model."""

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
    'spa_resnet50': ('paper abstract: +1.6% top-1 over ResNet-50 on ImageNet',),
    'cbam_resnet50': ('official README: top-1 77.622 (ImageNet-1k val)',),
    'bam_resnet50': ('official README: top-1 76.860 (ImageNet-1k val)',),
    'scse_resnet50': ('paper: segmentation only (no ImageNet numbers)',),
    'fca_resnet50': ('official README: top-1 78.52 (re-evaluated 78.57)',),
    'gsop_resnet50': ('official README: GSoP-Net1 top-1 error 22.02 (top-1 77.98), stage 4 at stride 16',),
    'eca_resnet50': ('official README: ECA-Net50 top-1 77.42 (paper 77.48)',),
}
