"""timm-attn robustness: rotations / flips and FGSM / PGD on a tiny synthetic ImageFolder.

Three classes of 16 x 16 images (a disk, horizontal stripes, vertical stripes; random colours, periods,
phases and noise), and timm's ``test_resnet`` trained on them for a few steps inside the test.
"""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F

from peer import write_image_folder, write_train_output
from pickled_objects import RunsACommand, TrainingConfig
from timm_attn import cli
from timm_attn.robustness import (PixelSpaceModel, apply_transform, evaluate_robustness, fgsm, format_console, pgd,
                                  predict, predict_logits, result_rows)
from timm_attn.robustness.report import parse_epsilon

SIZE = 16
CLASSES = ('disk', 'hstripes', 'vstripes')  # ImageFolder's sorted order: labels 0, 1, 2
MEAN = STD = (0.5, 0.5, 0.5)  # test_resnet's pretrained_cfg
EPSILONS = (0.0, 2 / 255, 8 / 255, 16 / 255, 32 / 255)
FLOAT_TOL = torch.finfo(torch.float32).eps  # x + eps - x in float32 may exceed eps by one rounding


def _image(label: int, rng: np.random.Generator) -> np.ndarray:
    fg, bg = rng.integers(150, 256, 3), rng.integers(0, 100, 3)
    if rng.random() < 0.5:
        fg, bg = bg, fg
    yy, xx = np.mgrid[:SIZE, :SIZE]
    if label == 0:
        r = rng.uniform(3, 6)
        mask = (yy - SIZE / 2 + 0.5) ** 2 + (xx - SIZE / 2 + 0.5) ** 2 < r * r
    else:
        period = int(rng.choice([2, 4]))
        mask = (((yy if label == 1 else xx) + rng.integers(0, period)) // (period // 2)) % 2 == 0
    img = np.where(mask[..., None], fg, bg) + rng.integers(-12, 13, (SIZE, SIZE, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _images(n_per_class: int, seed: int, symmetric: bool = False):
    rng = np.random.default_rng(seed)
    out = []
    for label in range(len(CLASSES)):
        for _ in range(n_per_class):
            img = _image(label, rng)
            if symmetric:  # bottom half = top half rotated by 180 degrees: exactly invariant, stripes stay stripes
                img[SIZE // 2:] = img[:SIZE // 2][::-1, ::-1]
            out.append((img, label))
    return out


def _write_folder(root, images) -> str:
    return write_image_folder(root, [(CLASSES[label], f'{i:03d}.png', img) for i, (img, label) in enumerate(images)])


def _tensors(images):
    x = torch.stack([torch.from_numpy(img).permute(2, 0, 1).float() / 255 for img, _ in images])
    return x, torch.tensor([label for _, label in images])


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('robust')
    os.makedirs(root / 'empty' / 'cls')
    return {
        'train': _tensors(_images(16, seed=0)),
        'eval': _write_folder(root / 'eval', _images(8, seed=1)),
        'eval_tensors': _tensors(_images(8, seed=1)),
        'symmetric': _write_folder(root / 'symmetric', _images(8, seed=2, symmetric=True)),
        'empty': str(root / 'empty'),
        'root': root,
    }


@pytest.fixture(scope='module')
def trained(data):
    """test_resnet trained for 25 full-batch Adam steps (upright images only); a checkpoint and a train.py folder."""
    torch.manual_seed(0)
    model = timm.create_model('test_resnet', num_classes=len(CLASSES))
    x, y = data['train']
    x = (x - 0.5) / 0.5
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(25):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    root = data['root']
    ckpt = str(root / 'tiny.pth')
    torch.save(model.state_dict(), ckpt)
    run = write_train_output(  # the keys of timm's train.py args.yaml that the tool reads
        root / 'train-run', {'model': 'test_resnet', 'num_classes': len(CLASSES), 'img_size': SIZE, 'crop_pct': 1.0,
                             'input_size': None, 'mean': None, 'std': None, 'model_kwargs': {}, 'epochs': 1},
        model.state_dict())
    return {'model': model, 'checkpoint': ckpt, 'run': run}


def _pixel_model(trained):
    return PixelSpaceModel(trained['model'], MEAN, STD).eval()


def _evaluate(models, folder, **kw):
    kw = {'img_size': SIZE, 'crop_pct': 1.0, 'batch_size': 24, 'pgd_steps': 3, 'quiet': True, **kw}
    return evaluate_robustness(models, folder, **kw)


# ---------------------------------------------------------------- transforms


def test_transforms_match_index_formulas():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    w = x.shape[-1]
    i, j = torch.meshgrid(torch.arange(4), torch.arange(4), indexing='ij')
    assert torch.equal(apply_transform('rot90', x), x[..., j, w - 1 - i])  # counter-clockwise
    assert torch.equal(apply_transform('rot180', x), x[..., w - 1 - i, w - 1 - j])
    assert torch.equal(apply_transform('rot270', x), x[..., w - 1 - j, i])
    assert torch.equal(apply_transform('hflip', x), x[..., i, w - 1 - j])
    assert torch.equal(apply_transform('vflip', x), x[..., w - 1 - i, j])
    assert torch.equal(apply_transform('upright', x), x)
    with pytest.raises(ValueError, match="unknown transform 'rot45'"):
        apply_transform('rot45', x)


def test_rot180_of_symmetric_images_keeps_predictions(trained, data):
    model = _pixel_model(trained)
    x, _ = data['eval_tensors']
    x = (x + apply_transform('rot180', x)) / 2  # float addition commutes: exactly symmetric
    assert torch.equal(apply_transform('rot180', x), x)
    assert torch.equal(predict_logits(model, apply_transform('rot180', x)), predict_logits(model, x))
    # through the whole tool: PNGs made symmetric, loaded, cropped, rotated after the crop
    res, = _evaluate([trained['model']], data['symmetric'], attacks=(), keep_predictions=True)
    assert torch.equal(res.predictions['rot180'], res.predictions['upright'])
    assert len(set(res.predictions['upright'].tolist())) > 1  # not a constant classifier
    assert res.transforms['rot180'] == res.transforms['upright']
    assert res.num_samples == 24


def test_rotation_accuracies_and_drop(trained, data):
    """Stripes turn into the other class under 90 / 270 degrees, stay themselves under 180 and flips."""
    res, = _evaluate([trained['model']], data['eval'], attacks=())
    t = res.transforms
    assert t['upright']['top1'] >= 90
    for name in ('rot180', 'hflip', 'vflip'):
        assert t[name]['top1'] >= t['upright']['top1'] - 15, name
    for name in ('rot90', 'rot270'):
        assert t[name]['top1'] <= t['upright']['top1'] - 40, name
    assert all(acc['top5'] == 100.0 for acc in t.values())  # 3 classes: top-5 is top-3
    assert res.topk == 3
    drops = {r['setting']: r['top1_drop'] for r in result_rows([res]) if r['analysis'] == 'transform'}
    assert drops['rot90'] == pytest.approx(t['upright']['top1'] - t['rot90']['top1']) and drops['upright'] == 0
    assert 'rot90' in format_console([res])


def test_loader_gives_pixels_in_unit_range(data):
    """The eval transform is timm's without its Normalize: float pixels in [0, 1], as the PNGs hold them."""
    from timm.data import resolve_data_config

    from timm_attn.robustness.data import create_eval_dataset, eval_transform
    cfg = resolve_data_config({'img_size': SIZE, 'crop_pct': 1.0}, model=timm.create_model('test_resnet'))
    ds = create_eval_dataset(data['eval'])
    ds.transform = eval_transform(cfg)
    x, _ = data['eval_tensors']
    for i in (0, 9, 23):  # the folder lists images class by class, as written
        img, label = ds[i]
        assert img.dtype == torch.float32 and label == i // 8
        assert torch.equal(img, x[i])


# ---------------------------------------------------------------- attacks


def _input_grad_reference(model, x, y):
    """The gradient of the summed cross-entropy w.r.t. the [0, 1] pixels, written out directly."""
    x = x.clone().requires_grad_(True)
    logits = model((x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1))
    F.cross_entropy(logits, y, reduction='sum').backward()
    return x.grad


def test_fgsm_is_the_signed_gradient_step(trained, data):
    model = _pixel_model(trained)
    x, y = data['eval_tensors']
    grad = _input_grad_reference(trained['model'], x, y)
    for eps in (0.0, 4 / 255, 0.5):
        res = fgsm(model, x, y, eps)
        assert torch.equal(res.images, (x + eps * grad.sign()).clamp(0, 1))
        assert torch.equal(res.fooled, predict(model, res.images) != y)
    # one PGD step of size eps from the clean image is FGSM
    one = pgd(model, x, y, 8 / 255, steps=1, step_size=8 / 255, random_start=False)
    assert torch.equal(one.images, fgsm(model, x, y, 8 / 255).images)


@pytest.mark.parametrize('attack', ['fgsm', 'pgd'])
def test_perturbation_within_epsilon_and_pixel_range(trained, data, attack):
    model = _pixel_model(trained)
    x, y = data['eval_tensors']
    assert x.min() == 0 and x.max() == 1  # saturated pixels: the clamp to [0, 1] matters
    gen = torch.Generator().manual_seed(0)
    for eps in EPSILONS + (0.3,):
        if attack == 'fgsm':
            adv = fgsm(model, x, y, eps).images
        else:  # a step size far above eps: only the projection keeps it inside
            adv = pgd(model, x, y, eps, steps=3, step_size=0.5, generator=gen).images
        assert (adv - x).abs().max() <= eps + FLOAT_TOL
        assert adv.min() >= 0 and adv.max() <= 1
        if eps == 0:
            assert torch.equal(adv, x)
    adv = pgd(model, x, y, 8 / 255, steps=3, generator=gen).images
    assert (adv - x).abs().max() > 4 / 255  # it does move


def test_pgd_is_deterministic_under_a_seed(trained, data):
    model = _pixel_model(trained)
    x, y = data['eval_tensors']
    run = lambda seed: pgd(model, x, y, 8 / 255, steps=2, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a.images, b.images) and torch.equal(a.fooled, b.fooled)
    assert not torch.equal(a.images, c.images)
    kw = {'transforms': (), 'attacks': ('pgd',), 'epsilons': (8 / 255,), 'pgd_steps': 2, 'seed': 3}
    r1, = _evaluate([trained['model']], data['eval'], **kw)
    r2, = _evaluate([trained['model']], data['eval'], **kw)
    assert r1.attacks == r2.attacks


def test_attack_accuracies(trained, data):
    """eps 0 = clean; PGD <= FGSM per eps; non-increasing in eps; equal to the documented rule recomputed here."""
    res, = _evaluate([trained['model']], data['eval'], epsilons=EPSILONS, seed=5, transforms=())
    fg, pg = res.attacks['fgsm'], res.attacks['pgd']
    assert sorted(fg) == sorted(EPSILONS)
    for acc in (fg[0.0], pg[0.0]):
        assert acc['top1'] == acc['top1_single'] == res.clean_top1
    for lo, hi in zip(EPSILONS, EPSILONS[1:]):
        assert fg[hi]['top1'] <= fg[lo]['top1'] and pg[hi]['top1'] <= pg[lo]['top1']
    for eps in EPSILONS:
        assert pg[eps]['top1'] <= fg[eps]['top1']
        assert fg[eps]['top1'] <= fg[eps]['top1_single'] and pg[eps]['top1'] <= pg[eps]['top1_single']
    assert pg[32 / 255]['top1'] <= res.clean_top1 - 30  # the attacks do break this tiny model
    # the bookkeeping, recomputed from the attack functions with the same seed (one batch of 24)
    model = _pixel_model(trained)
    x, y = data['eval_tensors']
    gen = torch.Generator().manual_seed(5)
    clean_wrong = predict(model, x) != y
    broken_f, broken_p = clean_wrong.clone(), clean_wrong.clone()
    for eps in EPSILONS:
        f = fgsm(model, x, y, eps).fooled
        p = pgd(model, x, y, eps, steps=3, generator=gen).fooled
        broken_f |= f
        broken_p |= f | p
        assert fg[eps]['top1'] == pytest.approx(100 * (~broken_f).float().mean().item())
        assert pg[eps]['top1'] == pytest.approx(100 * (~broken_p).float().mean().item())
        assert pg[eps]['top1_single'] == pytest.approx(100 * (~(clean_wrong | p)).float().mean().item())


def test_attacks_under_autocast(trained, data):
    model = _pixel_model(trained)
    x, y = data['eval_tensors']
    adv = pgd(model, x, y, 8 / 255, steps=2, generator=torch.Generator().manual_seed(0), amp_dtype=torch.bfloat16)
    assert adv.images.dtype == torch.float32
    assert (adv.images - x).abs().max() <= 8 / 255 + FLOAT_TOL and adv.images.min() >= 0 and adv.images.max() <= 1
    res, = _evaluate([trained['model']], data['eval'], transforms=(), epsilons=(0, 8 / 255), amp='bf16', pgd_steps=2)
    assert res.attacks['pgd'][0.0]['top1'] == res.clean_top1
    assert res.attacks['pgd'][8 / 255]['top1'] <= res.attacks['fgsm'][8 / 255]['top1']


# ---------------------------------------------------------------- model specs, command line, outputs


def test_checkpoint_and_train_output_specs(trained, data):
    ref, = _evaluate([trained['model']], data['eval'], attacks=())
    for spec in (f"test_resnet={trained['checkpoint']}", trained['run']):
        res, = evaluate_robustness([spec], data['eval'], attacks=(), batch_size=24, quiet=True,
                                   **({} if spec == trained['run'] else {'img_size': SIZE, 'crop_pct': 1.0}))
        assert res.arch == 'test_resnet'
        assert res.data_config['input_size'] == [3, SIZE, SIZE]  # from args.yaml for the train.py folder
        assert res.transforms == ref.transforms


def test_checkpoint_that_pickles_other_objects(trained, data, tmp_path):
    """An official-style checkpoint that torch.load(weights_only=True) refuses because it also pickles a
    config object (and a callable that would run a command) loads with the model's weights, nothing run."""
    import pickle

    from timm_attn.robustness import load_model
    marker = tmp_path / 'command-ran'
    ckpt = tmp_path / 'with_config.pth'
    torch.save({'model': trained['model'].state_dict(), 'epoch': 1, 'config': TrainingConfig(),
                'hook': RunsACommand(marker)}, ckpt)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)
    loaded = load_model(f'test_resnet={ckpt}', img_size=SIZE, crop_pct=1.0)
    assert not marker.exists()
    assert loaded.model.num_classes == len(CLASSES)  # read off the checkpoint's classifier
    expected = trained['model'].state_dict()
    got = loaded.model.state_dict()
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in expected)


def test_command_line_writes_csv_json_png(trained, data, tmp_path):
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get('PYTHONPATH')])))
    cmd = [sys.executable, '-m', 'timm_attn', 'robustness', '--models', trained['run'],
           f"test_resnet={trained['checkpoint']}", '--data-dir', data['eval'], '--img-size', str(SIZE),
           '--crop-pct', '1.0', '--epsilons', '0', '4/255', '16/255', '--pgd-steps', '2', '--batch-size', '24',
           '--threads', '1', '--out', str(out), '--quiet']
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'Zero-shot rotations' in proc.stdout and 'PGD' in proc.stdout
    with open(out / 'results.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (6 + 2 * 3)  # per model: 6 transforms, 2 attacks x 3 epsilons
    assert {r['model'] for r in rows} == {'test_resnet (train-run)', 'test_resnet (tiny.pth)'}
    by_model = {}
    for r in rows:
        by_model.setdefault(r['model'], {})[(r['analysis'], r['setting'])] = float(r['top1'])
    a, b = by_model.values()
    assert a == b  # the same weights through both specs
    with open(out / 'results.json') as f:
        js = json.load(f)
    assert js['settings']['epsilons'] == [0.0, 4 / 255, 16 / 255]
    assert [p['epsilon_str'] for p in js['results'][0]['attacks']['pgd']] == ['0', '4/255', '16/255']
    import matplotlib.image
    png = matplotlib.image.imread(out / 'robustness.png')
    assert png.shape[0] > 300 and png.shape[1] > 800 and png.std() > 0.05  # two panels, not blank


def test_bad_inputs_give_clear_errors(trained, data, capsys):
    with pytest.raises(ValueError, match="unknown model 'resnet_does_not_exist'"):
        _evaluate(['resnet_does_not_exist'], data['eval'])
    with pytest.raises(ValueError, match='has no images'):
        _evaluate([trained['model']], data['empty'])
    with pytest.raises(ValueError, match='does not exist'):
        _evaluate([trained['model']], os.path.join(data['empty'], 'nope'))
    with pytest.raises(ValueError, match=r'epsilon must be in \[0, 1\].*-0.1'):
        _evaluate([trained['model']], data['eval'], epsilons=(0, -0.1))
    with pytest.raises(ValueError, match='epsilon must be'):
        fgsm(_pixel_model(trained), *data['eval_tensors'], -1 / 255)
    with pytest.raises(ValueError, match='name its architecture'):
        _evaluate([trained['checkpoint']], data['eval'])
    with pytest.raises(ValueError, match='does not fit model'):
        _evaluate([f"resnet10t={trained['checkpoint']}"], data['eval'], attacks=())
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        _evaluate([trained['model']], data['eval'], attacks=('cw',))
    with pytest.raises(ValueError, match='label 2 but the model has 2 classes'):
        _evaluate([timm.create_model('test_resnet', num_classes=2)], data['eval'], attacks=())
    # command line: argparse refuses a negative epsilon, bad names exit 2 with the message
    with pytest.raises(SystemExit) as e:
        cli.main(['robustness', '--models', 'test_resnet', '--data-dir', data['eval'], '--epsilons', '-0.1'])
    assert e.value.code == 2 and 'epsilon must be in [0, 1]' in capsys.readouterr().err
    assert cli.main(['robustness', '--models', 'nope_model', '--data-dir', data['eval']]) == 2
    assert "unknown model 'nope_model'" in capsys.readouterr().err
    assert cli.main(['robustness', '--models', 'test_resnet', '--data-dir', data['empty']]) == 2
    assert 'has no images' in capsys.readouterr().err
    assert parse_epsilon('8/255') == 8 / 255


def test_list_subcommand_still_works(capsys):
    assert cli.main(['list', 'san10*']) == 0
    assert capsys.readouterr().out.split() == ['san10_pairwise', 'san10_patchwise']


@pytest.mark.parametrize('module', ['matplotlib', 'tqdm'])
def test_without_the_robustness_extra_the_command_says_what_to_install(data, module):
    """matplotlib / tqdm come with ``timm-attn[robustness]``: without one, a message and exit status 2, no traceback."""
    code = (f"import sys; sys.modules[{module!r}] = None; from timm_attn import cli; "
            f"sys.exit(cli.main(['robustness', '--models', 'test_resnet', '--data-dir', {data['eval']!r}]))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get('PYTHONPATH')])))
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'timm-attn[robustness]'" in proc.stderr and module in proc.stderr
    assert 'Traceback' not in proc.stderr
