"""Card data of CoAtNet (``timm_attn.models.coatnet``): no official code or weights; trained by timm-attn."""
import os

# ImageNet top-1 from the paper's Table 4: (model, tag) -> (input size, top-1)
PAPER_ACCURACY = {
    ('coatnet_0', 'in1k'): (224, 81.6), ('coatnet_0', 'in1k_384'): (384, 83.9),
    ('coatnet_1', 'in1k'): (224, 83.3), ('coatnet_1', 'in1k_384'): (384, 85.1),
    ('coatnet_2', 'in1k'): (224, 84.1), ('coatnet_2', 'in1k_384'): (384, 85.7), ('coatnet_2', 'in1k_512'): (512, 85.9),
    ('coatnet_2', 'in21k_ft_in1k_384'): (384, 87.1), ('coatnet_2', 'in21k_ft_in1k_512'): (512, 87.3),
    ('coatnet_3', 'in1k'): (224, 84.5), ('coatnet_3', 'in1k_384'): (384, 85.8), ('coatnet_3', 'in1k_512'): (512, 86.0),
    ('coatnet_3', 'in21k_ft_in1k_384'): (384, 87.6), ('coatnet_3', 'in21k_ft_in1k_512'): (512, 87.9),
    ('coatnet_4', 'in21k_ft_in1k_384'): (384, 87.9), ('coatnet_4', 'in21k_ft_in1k_512'): (512, 88.1),
}


def _paper_note(tag: str, size: int, top1: float) -> str:
    data = 'ImageNet-21k pre-training, ImageNet-1k fine-tuning' if tag.startswith('in21k') else 'ImageNet-1k only'
    return f'paper: top-1 {top1} (ImageNet-1k val, {size}x{size}, {data}; Table 4)'


NOTES = {f'{name}.{tag}': (_paper_note(tag, size, top1),) for (name, tag), (size, top1) in PAPER_ACCURACY.items()}


def training_command(arch: str, tag: str) -> str:
    """The command (or what is missing) that makes the weights of ``arch.tag``, for its model card."""
    recipe = os.path.join(os.path.dirname(__file__), '..', 'recipes', f'{arch}_in1k.yaml')
    if tag == 'in1k' and os.path.isfile(recipe):
        return (f'python train.py --config timm_attn/recipes/{arch}_in1k.yaml --data-dir /data/imagenet '
                f'--output output/{arch}.in1k')
    if tag.startswith('in1k_'):
        return (f'# fine-tuning of {arch}.in1k at {tag[5:]} px (relative-bias tables interpolated on load);\n'
                f'# the paper gives no fine-tuning recipe in the parts this project has: none is shipped yet')
    return (f'# ImageNet-21k pre-training, then ImageNet-1k fine-tuning at {tag.rsplit("_", 1)[-1]} px:\n'
            f'# no recipe is shipped yet')


HUB_CARD = dict(
    dataset='imagenet-1k',
    description='''
A CoAtNet image classifier: a convolutional stem, two stages of MBConv blocks with squeeze-excitation
and two stages of Transformer blocks with relative attention (one trainable relative-position bias
table per head, added to the attention logits), all pre-norm, as described in the paper (no official
code or weights were released). Built for a fixed input size; the relative-bias tables are resized
bilinearly when weights for another size are loaded.
''',
    official_code=None,
    weights_source='''
No official weights exist. These weights are to be trained by the plugin's maintainers with timm's
train.py and the paper's ImageNet recipe (Table 10), shipped with the plugin as a train.py config
(`timm_attn/recipes/`; fine-tuning at 384 / 512 starts from the 224 weights, whose relative-bias
tables are interpolated on load). Until a repo is published, `pretrained=True` fails with a message.
''',
    weights_command=training_command,
    citation='''
@inproceedings{dai2021coatnet,
  title={CoAtNet: Marrying Convolution and Attention for All Data Sizes},
  author={Dai, Zihang and Liu, Hanxiao and Le, Quoc V. and Tan, Mingxing},
  booktitle={Advances in Neural Information Processing Systems},
  year={2021}
}
''',
)
