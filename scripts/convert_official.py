#!/usr/bin/env python3
"""Turn an official checkpoint into a ready Hugging Face Hub repo folder.

    python scripts/convert_official.py san10_patchwise model_best.pth --out hub/san10_patchwise.in1k

The checkpoint is loaded strictly into the plugin's model through the family's
``checkpoint_filter_fn`` (SAN: the authors' ``model_best.pth``, 'module.' prefixed state_dict; ACmix
Swin: ``{'model': ...}`` in the original Swin layout), never unpickling arbitrary objects: a file that
also pickles other objects (Swin's ``save_checkpoint`` stores the yacs config) is read with those
objects replaced by inert placeholders (``timm_attn.models._checkpoint.load_tensors_only``); PVT: the
released ``pvt_*.pth``; the ResNet attention zoo (cbam_resnet50, bam_resnet50, eca_resnet50 / 101, fca_resnet50 / 101):
the official ``{'state_dict': ...}`` of a DataParallel model, torchvision-style keys
(``_checkpoint.map_official_resnet``), loaded into the network of the ``.in1k`` tag (BAM: the official
product of the branches).
The folder gets ``model.safetensors``, ``config.json`` (timm's ``save_for_hf``) and the generated
model card; the safetensors file is reloaded into a fresh model and checked to give the same
outputs, and its SHA-256 is printed. Exit status 2 with a message for
a file that is not a checkpoint, or a checkpoint that does not fit the model.
"""
import argparse
import os
import sys

import torch


def _check_format(path: str) -> None:
    """Refuse files that are neither a torch zip / pickle checkpoint nor safetensors, before timm sees them."""
    with open(path, 'rb') as f:
        head = f.read(8)
    is_zip = head.startswith(b'PK\x03\x04')
    is_legacy_pickle = head[:1] == b'\x80'
    is_safetensors = len(head) == 8 and 0 < int.from_bytes(head, 'little') < 100_000_000 and path.endswith(
        '.safetensors')
    if not (is_zip or is_legacy_pickle or is_safetensors):
        raise ValueError(f'{path} is not a PyTorch checkpoint (zip or pickle) or a .safetensors file; '
                         f'expected e.g. the official model_best.pth')


def convert(model_name: str, checkpoint: str, out: str, tag: str = 'in1k') -> str:
    import timm
    import timm_attn  # noqa: F401  (registers the models also with TIMM_ATTN_AUTOLOAD=0)
    from timm_attn.hub import export_hub_folder, sha256_file

    if not os.path.isfile(checkpoint):
        raise ValueError(f'no such file: {checkpoint}')
    _check_format(checkpoint)
    name_tag = f'{model_name}.{tag}'
    if name_tag not in timm.list_pretrained(model_name):
        known = timm.list_pretrained(model_name)
        raise ValueError(f'{name_tag} is not a pretrained tag of the plugin (known: {known})')
    # read once (weights-only, else with the non-tensor objects replaced), handed to timm's loader as a
    # state dict: 'file' only names the source in error messages
    from timm_attn.models._checkpoint import read_checkpoint
    state, skipped = read_checkpoint(checkpoint)
    if skipped is not None:  # e.g. Swin-style checkpoints that also pickle the training config
        print(f'note: ignored pickled objects that are not tensors ({", ".join(skipped)})')
    model = timm.create_model(name_tag, pretrained=True,
                              pretrained_cfg_overlay=dict(file=checkpoint, state_dict=state)).eval()
    model.pretrained_cfg.pop('state_dict', None)  # the weights are in the model now
    del state
    files = export_hub_folder(model, out, name_tag)

    # the written weights load strictly and reproduce the converted model
    reloaded = timm.create_model(name_tag, pretrained=True, pretrained_cfg_overlay=dict(
        file=os.path.join(out, 'model.safetensors'))).eval()
    size = model.pretrained_cfg.get('min_input_size') or model.pretrained_cfg['input_size']
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if not torch.equal(model(x), reloaded(x)):
            raise RuntimeError('the written model.safetensors does not reproduce the converted model')
    digest = sha256_file(os.path.join(out, 'model.safetensors'))
    print(f'{name_tag}: wrote {", ".join(files)} to {out}')
    print(f'sha256 model.safetensors {digest}')
    return digest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', help='plugin model name, e.g. san10_patchwise')
    parser.add_argument('checkpoint', help='official checkpoint file')
    parser.add_argument('--out', required=True, help='folder to write the Hub repo into')
    parser.add_argument('--tag', default='in1k', help='pretrained tag (default in1k)')
    args = parser.parse_args(argv)
    try:
        convert(args.model, args.checkpoint, args.out, args.tag)
    except Exception as e:  # a message, not a traceback, for the user-facing failures
        if type(e).__name__ in ('ValueError', 'CheckpointMismatchError', 'PretrainedWeightsError'):
            print(f'error: {e}', file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == '__main__':
    sys.exit(main())
