#!/usr/bin/env python3
"""Publish Hub repo folders (from convert_official.py) or a timm train.py output to the Hugging Face Hub.

    python scripts/push_to_hub.py hub/san10_patchwise.in1k [more folders] [--dry-run]
    python scripts/push_to_hub.py output/train/20261121-san10 --repo-id ORG/san10_patchwise.in1k

A repo folder is published to ``{TIMM_ATTN_HUB_NAMESPACE}/{folder name}`` unless ``--repo-id`` is
given. A train.py output folder (args.yaml + model_best.pth.tar) is first exported to a repo folder
(safetensors + config + card naming the training command). Only model.safetensors, config.json and
README.md are uploaded; a folder holding a pickle (.bin / .pth) is refused. ``--dry-run`` lists
what would be uploaded and contacts nothing. The token comes from ``--token``, ``HF_TOKEN`` or the
stored login; ``HF_ENDPOINT`` selects the server.
"""
import argparse
import os
import sys
import tempfile

from timm_attn.train_output import TrainOutput, is_train_output, read_train_output

REPO_FILES = ('model.safetensors', 'config.json', 'README.md')
PICKLE_SUFFIXES = ('.bin', '.pth', '.pt', '.pkl', '.tar')


class PublishError(ValueError):
    """A folder that cannot be published as it is."""


def _read_run(folder: str) -> TrainOutput:
    try:
        return read_train_output(folder)
    except ValueError as e:
        raise PublishError(str(e)) from None


def export_train_output(folder: str, out: str, tag: str, repo_id: str) -> str:
    """Repo folder for a timm train.py output; returns ``model.tag``."""
    import timm
    import timm_attn  # noqa: F401
    from timm_attn.hub import export_hub_folder
    run = _read_run(folder)
    args, ckpt = run.args, run.checkpoint
    model = timm.create_model(run.model, num_classes=run.num_classes or 1000)
    timm.models.load_checkpoint(model, ckpt, strict=True)  # weights_only load, EMA weights when saved
    name_tag = f'{run.model}.{tag}'
    command = 'python train.py ' + ' '.join(
        f'--{k.replace("_", "-")} {v}' for k, v in sorted(args.items())
        if k in ('model', 'data_dir', 'dataset', 'epochs', 'batch_size', 'lr', 'opt', 'weight_decay', 'sched',
                 'img_size', 'num_classes', 'smoothing', 'drop_path', 'amp', 'config') and v not in (None, False))
    export_hub_folder(model, out, name_tag, weights_source=(
        f'Trained with timm-attn and timm\'s unchanged train.py (output folder `{os.path.basename(folder)}`, '
        f'checkpoint `{os.path.basename(ckpt)}`):'), weights_command=command, usage_name=f'hf-hub:{repo_id}')
    return name_tag


def check_repo_folder(folder: str) -> None:
    missing = [f for f in REPO_FILES if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise PublishError(f'{folder} is not a Hub repo folder: missing {", ".join(missing)} '
                         f'(make one with scripts/convert_official.py)')
    pickles = [f for f in os.listdir(folder) if f.endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise PublishError(f'{folder} holds pickle files ({", ".join(pickles)}); only safetensors are published')


def push(folder: str, repo_id: str, token=None, private: bool = False, dry_run: bool = False) -> str:
    check_repo_folder(folder)
    sizes = {f: os.path.getsize(os.path.join(folder, f)) for f in REPO_FILES}
    print(f'{"would upload" if dry_run else "uploading"} to {repo_id}:')
    for name, size in sizes.items():
        print(f'  {name} ({size:,} bytes)')
    if dry_run:
        return ''
    from huggingface_hub import HfApi
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(folder_path=folder, repo_id=repo_id, allow_patterns=list(REPO_FILES),
                             commit_message='Add timm-attn weights')
    print(f'published {repo_id} at commit {info.oid}')
    return info.oid


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('folders', nargs='+', help='Hub repo folders or timm train.py output folders')
    parser.add_argument('--repo-id', help='target repo (one folder only); default NAMESPACE/<folder name>')
    parser.add_argument('--tag', default='in1k', help='pretrained tag for train.py outputs')
    parser.add_argument('--token', default=None)
    parser.add_argument('--private', action='store_true')
    parser.add_argument('--dry-run', action='store_true', help='list what would be uploaded, contact nothing')
    args = parser.parse_args(argv)
    if args.repo_id and len(args.folders) > 1:
        parser.error('--repo-id takes a single folder')
    from timm_attn.hub import HUB_NAMESPACE
    try:
        for folder in args.folders:
            folder = folder.rstrip('/')
            with tempfile.TemporaryDirectory() as tmp:
                if is_train_output(folder):
                    repo_id = args.repo_id or f'{HUB_NAMESPACE}/{_read_run(folder).model}.{args.tag}'
                    export_train_output(folder, tmp, args.tag, repo_id)
                    folder = tmp
                else:
                    repo_id = args.repo_id or f'{HUB_NAMESPACE}/{os.path.basename(folder)}'
                push(folder, repo_id, args.token, args.private, args.dry_run)
    except PublishError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
