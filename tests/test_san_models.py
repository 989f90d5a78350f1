"""SAN models: spec parameter counts, official checkpoints, timm API, bad input, precision."""
import copy
import pickle

import pytest
import timm
import torch

import timm_attn
from timm_attn.models._checkpoint import CheckpointMismatchError
from timm_attn.models.san import SAN, checkpoint_filter_fn

from reference import RefSAN, randomize_batchnorm

SPEC_PARAMS = {  # ../shared/specs/san.md, official models at 1000 classes
    'san10_pairwise': 10_531_848, 'san10_patchwise': 11_841_124,
    'san15_pairwise': 14_065_436, 'san15_patchwise': 16_181_310,
    'san19_pairwise': 17_596_156, 'san19_patchwise': 20_518_470,
}
LAYERS = {'san10': (2, 1, 2, 4, 1), 'san15': (3, 2, 3, 5, 2), 'san19': (3, 3, 4, 6, 3)}


def test_registered():
    assert timm.list_models('san*') == sorted(SPEC_PARAMS)
    assert set(timm.list_pretrained('san*')) == {f'{n}.in1k' for n in SPEC_PARAMS}


@pytest.mark.parametrize('name', sorted(SPEC_PARAMS))
def test_parameter_counts_match_spec(name):
    model = timm.create_model(name, device='meta')
    assert sum(p.numel() for p in model.parameters()) == SPEC_PARAMS[name]
    depth, attn = name.split('_')
    ref = RefSAN(0 if attn == 'pairwise' else 1, LAYERS[depth]).to('meta')
    assert sum(p.numel() for p in ref.parameters()) == SPEC_PARAMS[name]


def _official_checkpoint(ref, prefix='module.', drop_num_batches_tracked=False, extra=None):
    sd = {prefix + k: v for k, v in ref.state_dict().items()
          if not (drop_num_batches_tracked and k.endswith('num_batches_tracked'))}
    ckpt = {'epoch': 100, 'state_dict': sd, 'optimizer': {'state': {}, 'param_groups': [{'lr': 0.0}]},
            'top1_val': 0.771, 'top5_val': 0.935}
    ckpt.update(extra or {})
    return ckpt


@pytest.mark.parametrize('attn,prefix,drop_nbt', [
    ('patchwise', 'module.', False), ('pairwise', 'module.', True), ('patchwise', '', True)])
def test_official_checkpoint_loads_and_matches_reference(tmp_path, attn, prefix, drop_nbt):
    torch.manual_seed(0)
    ref = randomize_batchnorm(RefSAN(0 if attn == 'pairwise' else 1, LAYERS['san10'])).eval()
    path = tmp_path / 'model_best.pth'
    torch.save(_official_checkpoint(ref, prefix, drop_nbt), path)
    model = timm.create_model(f'san10_{attn}', pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(2, 3, 160, 192)
    with torch.no_grad():
        expected = ref(x)
        fast = model(x)
    with torch.enable_grad():  # the layer-by-layer path too
        slow = model(x)
    scale = expected.abs().max()
    assert (fast - expected).abs().max() <= 1e-4 * scale
    assert (slow - expected).abs().max() <= 1e-4 * scale


def test_official_checkpoint_with_new_head_and_channels(tmp_path):
    ref = RefSAN(1, LAYERS['san10'])
    path = tmp_path / 'model_best.pth'
    torch.save(_official_checkpoint(ref), path)
    model = timm.create_model('san10_patchwise', pretrained=True, num_classes=5, in_chans=1,
                              pretrained_cfg_overlay=dict(file=str(path)))
    assert torch.equal(model.stages[2].blocks[1].attn.gamma.conv1.weight, ref.layer2[1].sam.conv_w[2].weight)
    assert model(torch.randn(1, 1, 128, 128)).shape == (1, 5)


def test_checkpoint_of_another_variant_is_refused_clearly(tmp_path):
    path = tmp_path / 'model_best.pth'
    torch.save(_official_checkpoint(RefSAN(0, LAYERS['san15'])), path)
    with pytest.raises(CheckpointMismatchError) as e:
        timm.create_model('san10_patchwise', pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    msg = str(e.value)
    assert '185 unexpected keys: stages.0.blocks.0.attn.pos_proj.weight' in msg and '(+180 more)' in msg
    assert 'shape mismatches: stages.0.blocks.0.attn.gamma.norm1.weight: checkpoint (6,) vs model (40,)' in msg


class _Evil:
    def __reduce__(self):
        return (print, ('arbitrary code ran',))


def test_loading_never_unpickles_arbitrary_objects(tmp_path, capsys):
    path = tmp_path / 'model_best.pth'
    torch.save(_official_checkpoint(RefSAN(1, LAYERS['san10']), extra={'scheduler': _Evil()}), path)
    with pytest.raises((pickle.UnpicklingError, RuntimeError), match='(?i)weights.only'):
        timm.create_model('san10_patchwise', pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    assert 'arbitrary code ran' not in capsys.readouterr().out


def test_filter_accepts_own_layout_and_raw_official_dict():
    model = timm.create_model('san10_pairwise')
    assert checkpoint_filter_fn(model.state_dict(), model).keys() == model.state_dict().keys()
    ref = RefSAN(0, LAYERS['san10'])
    out = checkpoint_filter_fn(_official_checkpoint(ref), model)
    model.load_state_dict(out, strict=True)


def test_pretrained_cfg():
    cfg = timm.models.get_pretrained_cfg('san10_patchwise.in1k').to_dict()
    assert cfg['crop_pct'] == 0.875 and cfg['interpolation'] == 'bilinear'
    assert cfg['mean'] == timm.data.IMAGENET_DEFAULT_MEAN and cfg['std'] == timm.data.IMAGENET_DEFAULT_STD
    assert cfg['min_input_size'] == (3, 128, 128)
    assert cfg['hf_hub_id'] == f'{timm_attn.HUB_NAMESPACE}/san10_patchwise.in1k'
    assert cfg['license'] == 'mit' and cfg['origin_url'] == 'https://github.com/hszhao/SAN'
    assert '77.1' in cfg['notes'][0] and cfg['paper_ids'] == 'arXiv:2004.13621'


@pytest.mark.parametrize('size', [(128, 128), (137, 201), (224, 160)])
def test_any_input_size_from_the_minimum(size):
    model = timm.create_model('san10_patchwise', num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 3)


def test_bad_input_is_refused_clearly():
    model = timm.create_model('san10_pairwise').eval()
    with pytest.raises(ValueError, match='at least 128x128'):
        model(torch.randn(1, 3, 127, 224))
    with pytest.raises(ValueError, match='3 input channels'):
        model(torch.randn(1, 4, 128, 128))
    with pytest.raises(ValueError, match=r'\(N, C, H, W\)'):
        model(torch.randn(3, 128, 128))
    # the minimum follows the footprints: 3x3 everywhere needs 2 px at stride 32
    small = timm.create_model('san10_pairwise', kernel_sizes=3).eval()
    assert small.min_input_size == 64
    with torch.no_grad():
        small(torch.randn(1, 3, 64, 80))
    with pytest.raises(ValueError, match='at least 64x64'):
        small(torch.randn(1, 3, 63, 80))


@pytest.mark.parametrize('name', ['san10_pairwise', 'san10_patchwise'])
def test_autocast_bf16_close_to_fp32(name):
    torch.manual_seed(0)
    model = randomize_batchnorm(timm.create_model(name)).eval()
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = model(x)
    assert torch.isfinite(out).all()
    cos = torch.nn.functional.cosine_similarity(out.float().flatten(), ref.flatten(), dim=0)
    assert cos > 0.99, cos


@pytest.mark.parametrize('name', ['san10_pairwise', 'san10_patchwise'])
def test_training_recomputation_is_exact(name):
    """Recomputing the weights / stem in backward gives the same outputs, gradients and BN buffers."""
    torch.manual_seed(0)
    a = timm.create_model(name, num_classes=10).train()
    b = copy.deepcopy(a)
    for m in b.modules():
        for attr in ('recompute', 'recompute_weights'):
            if hasattr(m, attr):
                setattr(m, attr, False)
    x = torch.randn(2, 3, 128, 160)
    ya, yb = a(x), b(x)
    ya.square().sum().backward()
    yb.square().sum().backward()
    assert torch.equal(ya, yb)
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, rtol=1e-5, atol=1e-6), n
    for ba, bb in zip(a.buffers(), b.buffers()):
        assert torch.equal(ba, bb)


def test_ablation_options():
    m = timm.create_model('san10_pairwise', relation='dot', kernel_sizes=(3, 5, 5, 7, 7), pos_embed=False,
                          share_planes=4, num_classes=7, drop_rate=0.1, drop_path_rate=0.1)
    assert m.stages[1].blocks[0].attn.kernel_size == 5 and m.stages[1].blocks[0].attn.pos_proj is None
    assert m.stages[1].blocks[0].attn.weight_chs == 64 // 4
    assert m(torch.randn(2, 3, 128, 128)).shape == (2, 7)
    for rel in ('star', 'clique'):
        p = timm.create_model('san10_patchwise', relation=rel, kernel_sizes=3, num_classes=4)
        assert p(torch.randn(2, 3, 64, 64)).shape == (2, 4)
    with pytest.raises(ValueError, match='one value per stage'):
        timm.create_model('san10_patchwise', kernel_sizes=(3, 7))
    with pytest.raises(ValueError, match='attn_type'):
        SAN(attn_type='axial')


def test_timm_api():
    model = timm.create_model('san10_patchwise', num_classes=10).eval()
    x = torch.randn(1, 3, 128, 160)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (1, 2048, 4, 5)
        assert model.forward_head(feats, pre_logits=True).shape == (1, 2048)
        final, inter = model.forward_intermediates(x)
        assert [t.shape[1] for t in inter] == [64, 256, 512, 1024, 2048]
        assert [t.shape[-1] for t in inter] == [80, 40, 20, 10, 5]
        assert torch.allclose(final, feats)
        assert len(model.forward_intermediates(x, indices=2, intermediates_only=True)) == 2
    assert [f['module'] for f in model.feature_info] == [f'stages.{i}' for i in range(5)]
    assert model.get_classifier().out_features == 10
    model.reset_classifier(3)
    assert model(x).shape == (1, 3)
    groups = timm.models.group_parameters(model, model.group_matcher())
    assert len(groups) > 10
    model.set_grad_checkpointing()
    assert all(s.grad_checkpointing for s in model.stages)

    feat = timm.create_model('san10_pairwise', features_only=True, out_indices=(1, 3, 4)).eval()
    with torch.no_grad():
        outs = feat(x)
    assert [o.shape[1] for o in outs] == [256, 1024, 2048] == feat.feature_info.channels()
    assert feat.feature_info.reduction() == [4, 16, 32]

    pruned = timm.create_model('san10_patchwise').eval()
    assert pruned.prune_intermediate_layers(indices=(1, 2)) == [1, 2]
    assert len(pruned.stages) == 3 and pruned.num_features == 512
    with torch.no_grad():
        assert pruned(x).shape == (1, 512, 16, 20)  # head pruned: unpooled stage-2 features


def test_grad_checkpointing_same_output():
    torch.manual_seed(0)
    model = timm.create_model('san10_pairwise', num_classes=4).train()
    x = torch.randn(2, 3, 128, 128)
    state = copy.deepcopy(model.state_dict())
    y1 = model(x)
    model.load_state_dict(state)
    model.set_grad_checkpointing()
    y2 = model(x)
    y2.sum().backward()
    assert torch.allclose(y1, y2, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(SPEC_PARAMS))
def test_every_official_network_matches_reference_at_224(tmp_path, name):
    torch.manual_seed(0)
    depth, attn = name.split('_')
    ref = randomize_batchnorm(RefSAN(0 if attn == 'pairwise' else 1, LAYERS[depth])).eval()
    path = tmp_path / 'model_best.pth'
    torch.save(_official_checkpoint(ref), path)
    model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, out = ref(x), model(x)
    assert (out - expected).abs().max() <= 1e-4 * expected.abs().max()


@pytest.mark.parametrize('name', ['san10_pairwise', 'san10_patchwise'])
def test_training_under_autocast(name):
    model = timm.create_model(name, num_classes=5).train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 128, 128))
    out.float().square().mean().backward()
    assert torch.isfinite(out.float()).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.slow
@pytest.mark.exhaustive  # CI: test_compile.py's float64 AOT comparisons of both models cover this
@pytest.mark.parametrize('name', ['san10_pairwise', 'san10_patchwise'])
def test_whole_model_compiles(name):
    """torch.compile captures the model (graph breaks allowed at the recompute checkpoints) and gives
    the eager outputs, eval and training."""
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=5)
    compiled = torch.compile(model, backend='aot_eager')
    x = torch.randn(2, 3, 128, 128)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x), atol=1e-4)
    model.train()
    out = compiled(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and all(p.grad is not None for p in model.parameters())
