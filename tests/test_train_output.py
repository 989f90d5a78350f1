"""``timm_attn.train_output``: the one reader of timm train.py output folders (robustness, push_to_hub.py)."""
import pytest
import torch

from peer import write_train_output
from timm_attn.train_output import is_train_output, read_train_output

STATE = {'w': torch.zeros(1)}


def test_reads_args_and_prefers_model_best(tmp_path):
    run = write_train_output(tmp_path / 'run', {'model': 'test_resnet', 'num_classes': 3, 'img_size': 16}, STATE)
    write_train_output(tmp_path / 'last', {'model': 'test_vit'}, STATE, checkpoint='last.pth.tar')
    torch.save({'state_dict': STATE}, tmp_path / 'run' / 'last.pth.tar')
    out = read_train_output(run)
    assert is_train_output(run) and out.model == 'test_resnet' and out.num_classes == 3
    assert out.args['img_size'] == 16 and out.checkpoint == str(tmp_path / 'run' / 'model_best.pth.tar')
    last = read_train_output(str(tmp_path / 'last'))
    assert last.checkpoint.endswith('last.pth.tar') and last.num_classes is None


def test_incomplete_folders_say_what_is_missing(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='has no args.yaml'):
        read_train_output(str(tmp_path / 'empty'))
    no_ckpt = write_train_output(tmp_path / 'no_ckpt', {'model': 'test_resnet'}, STATE)
    (tmp_path / 'no_ckpt' / 'model_best.pth.tar').unlink()
    with pytest.raises(ValueError, match='has no model_best.pth.tar or last.pth.tar'):
        read_train_output(no_ckpt)
    no_model = write_train_output(tmp_path / 'no_model', {'epochs': 1}, STATE)
    with pytest.raises(ValueError, match='names no model'):
        read_train_output(no_model)
    assert not is_train_output(str(tmp_path / 'empty')) and not is_train_output(no_ckpt)
