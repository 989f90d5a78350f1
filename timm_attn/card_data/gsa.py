"""Card data of GSA-Net (``timm_attn.models.gsa``): no official code or weights; trained by timm-attn."""
import os

# by dataset (the tag): the parts of the paper available here give no per-model result
NOTES = {
    'in1k': ('no result in the parts of the paper available here (abstract: GSA-ResNet-50 +1.6% top-1 over '
             'ResNet-50 with fewer parameters and FLOPs, per a secondary source)',),
    'cifar100': ('no per-model result in the parts of the paper available here (abstract: GSA networks '
                 'outperform convolution-based networks on CIFAR-100)',),
}


def training_command(arch: str, tag: str) -> str:
    """The command that makes the weights of ``arch.tag``, for its model card."""
    name = f"{arch.removesuffix('_cifar')}_{tag}.yaml"
    recipe = os.path.join(os.path.dirname(__file__), '..', 'recipes', name)
    data = '/data/imagenet' if tag == 'in1k' else '/data/cifar100'
    if os.path.isfile(recipe):
        return f'python train.py --config timm_attn/recipes/{name} --data-dir {data} --output output/{arch}.{tag}'
    return '# no recipe is shipped for this tag yet'


HUB_CARD = dict(
    dataset=lambda arch, tag: 'cifar100' if tag.startswith('cifar100') else 'imagenet-1k',
    description='''
A GSA-Net image classifier: a bottleneck ResNet whose 3x3 convolutions are global self-attention
(GSA) modules, as described in the paper (no official code or weights were released). A GSA module
sums a content attention over all pixels (keys softmax-normalised over positions, linear in the
number of pixels) and an axial positional attention (column-only, BatchNorm, row-only, with learned
relative position embeddings as keys over the whole axis). The stem stays convolutional; blocks
downsample by 2x2 average pooling after the GSA module. Choices the available text of the paper
leaves open (8 heads, key width = value width, no softmax over the positional logits, embeddings
shared by the heads, no output projection) are constructor arguments, documented in the model file.
Any input size works; the relative-position tables cover the maps of the default input size and
reuse their outermost embedding beyond it.
''',
    official_code=None,
    weights_source='''
No official weights exist. These weights are to be trained by the plugin's maintainers with timm's
train.py and the recipe shipped with the plugin as a train.py config (`timm_attn/recipes/`). The
paper's training hyper-parameters were not available: the recipe is a standard one for this kind of
network, stated in the file. Until a repo is published, `pretrained=True` fails with a message.
''',
    weights_command=training_command,
    citation='''
@article{shen2020global,
  title={Global Self-Attention Networks for Image Recognition},
  author={Shen, Zhuoran and Bello, Irwan and Vemulapalli, Raviteja and Jia, Xuhui and Chen, Ching-Hui},
  journal={arXiv preprint arXiv:2010.03019},
  year={2020}
}
''',
)
