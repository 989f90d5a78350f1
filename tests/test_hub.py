"""The Hub path end to end: convert an official-layout checkpoint, publish it with the real
huggingface_hub client to a local Hub server, download it with timm (online, then offline from the
cache), and the failures a user meets (no network, corrupted file, wrong weights, unknown formats).
Downloads run in subprocesses with HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE set, as a user would."""
import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from hub_server import LocalHub
from peer import image_folder, needs_scripts, run_train_py
from pickled_objects import RunsACommand, TrainingConfig
from reference import RefSAN, randomize_batchnorm

ROOT = os.path.join(os.path.dirname(__file__), '..')
SCRIPTS = os.path.join(ROOT, 'scripts')
SAN10 = (2, 1, 2, 4, 1)
PREDICT = ("import json, timm, torch; m = timm.create_model({name!r}, pretrained=True).eval(); "
           "x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0)); "
           "print(json.dumps(m(x).detach()[0, :20].tolist()))")


def _env(hf_home, endpoint=None, offline=False):
    env = dict(os.environ, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY='1', HF_HUB_ETAG_TIMEOUT='5',
               HF_HUB_DOWNLOAD_TIMEOUT='20', TIMM_ATTN_HUB_NAMESPACE='timm-attn')
    env.pop('HF_TOKEN', None)
    env['HF_ENDPOINT'] = endpoint or 'http://127.0.0.1:9'  # nothing listens on the discard port
    if offline:
        env['HF_HUB_OFFLINE'] = '1'
    return env


def _python(args, env, timeout=300):
    return subprocess.run([sys.executable] + args, capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=ROOT)


def _predict(name, env):
    out = _python(['-c', PREDICT.format(name=name)], env)
    return out, (json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None)


@pytest.fixture(scope='module')
def published(tmp_path_factory):
    """An official-layout san10_patchwise checkpoint, converted and pushed to a local Hub."""
    tmp = tmp_path_factory.mktemp('hub')
    torch.manual_seed(0)
    ref = randomize_batchnorm(RefSAN(1, SAN10)).eval()
    ckpt = tmp / 'model_best.pth'
    torch.save({'epoch': 100, 'state_dict': {'module.' + k: v for k, v in ref.state_dict().items()}}, ckpt)
    folder = tmp / 'out' / 'san10_patchwise.in1k'
    hub = LocalHub(str(tmp / 'server'))
    try:
        conv = _python([os.path.join(SCRIPTS, 'convert_official.py'), 'san10_patchwise', str(ckpt), '--out',
                        str(folder)], _env(tmp / 'hf0'))
        assert conv.returncode == 0, conv.stderr[-3000:]
        push = _python([os.path.join(SCRIPTS, 'push_to_hub.py'), str(folder), '--token', 'hf_test'],
                       _env(tmp / 'hf0', hub.endpoint))
        assert push.returncode == 0, push.stdout[-2000:] + push.stderr[-3000:]
        x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            expected = ref(x)[0, :20]
        yield dict(hub=hub, tmp=tmp, folder=folder, expected=expected, convert_out=conv.stdout, push_out=push.stdout,
                   ref=ref)
    finally:
        hub.stop()


def test_convert_writes_a_hub_folder(published):
    folder = published['folder']
    assert sorted(os.listdir(folder)) == ['README.md', 'config.json', 'model.safetensors']
    config = json.loads((folder / 'config.json').read_text())
    assert config['architecture'] == 'san10_patchwise' and config['num_classes'] == 1000
    assert config['pretrained_cfg']['crop_pct'] == 0.875
    assert 'sha256 model.safetensors ' in published['convert_out']
    from timm_attn.hub import sha256_file
    assert sha256_file(str(folder / 'model.safetensors')) in published['convert_out']
    assert (folder / 'README.md').read_text().startswith('---\ntags:')


def test_push_uploaded_the_repo(published):
    repo = os.path.join(published['hub'].root, 'timm-attn', 'san10_patchwise.in1k')
    assert sorted(os.listdir(repo)) == ['README.md', 'config.json', 'model.safetensors']
    with open(os.path.join(repo, 'model.safetensors'), 'rb') as a, open(published['folder'] / 'model.safetensors',
                                                                           'rb') as b:
        assert a.read() == b.read()
    assert 'published timm-attn/san10_patchwise.in1k at commit' in published['push_out']


def test_pretrained_download_cache_offline_and_hf_hub_ids(published):
    hub, tmp, expected = published['hub'], published['tmp'], published['expected']
    env = _env(tmp / 'hf1', hub.endpoint)
    out, logits = _predict('san10_patchwise', env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert torch.allclose(torch.tensor(logits), expected, atol=1e-4, rtol=1e-4)
    assert any('/timm-attn/san10_patchwise.in1k/resolve/' in p for _, p in hub.requests)
    cached = list((tmp / 'hf1' / 'hub').glob('models--timm-attn--san10_patchwise.in1k/snapshots/*/model.safetensors'))
    assert len(cached) == 1

    # hf-hub: ids read config.json (architecture = a plugin model) and the weights
    out, logits_hub = _predict('hf-hub:timm-attn/san10_patchwise.in1k', env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert torch.allclose(torch.tensor(logits_hub), expected, atol=1e-4, rtol=1e-4)

    # offline: cache only, no request reaches the server
    n = len(hub.requests)
    out, logits_offline = _predict('san10_patchwise', _env(tmp / 'hf1', hub.endpoint, offline=True))
    assert out.returncode == 0, out.stderr[-3000:]
    assert logits_offline == logits and len(hub.requests) == n


def test_no_cache_no_network_says_which_repo_and_how(tmp_path):
    out, _ = _predict('san10_pairwise', _env(tmp_path / 'hf', offline=True))
    assert out.returncode != 0
    assert "PretrainedWeightsError: could not load pretrained weights for san10_pairwise from Hugging Face Hub repo " \
           "'timm-attn/san10_pairwise.in1k' (file 'model.safetensors')" in out.stderr
    assert 'not in the local Hugging Face cache' in out.stderr and 'scripts/convert_official.py' in out.stderr
    out, _ = _predict('san10_pairwise', _env(tmp_path / 'hf'))  # online, nothing listening
    assert "repo 'timm-attn/san10_pairwise.in1k'" in out.stderr and 'could not be reached' in out.stderr


def test_missing_repo_corrupted_file_and_wrong_weights(published, tmp_path):
    hub = published['hub']
    env = _env(tmp_path / 'hf', hub.endpoint)
    out, _ = _predict('san15_patchwise', env)  # never published
    assert "repo 'timm-attn/san15_patchwise.in1k'" in out.stderr and 'does not exist' in out.stderr

    data = (published['folder'] / 'model.safetensors').read_bytes()
    for name, payload, expect in [
        ('san10_pairwise', data[:len(data) // 2], 'corrupted or truncated'),  # truncated download
        ('san19_pairwise', b'\x08\x00\x00\x00\x00\x00\x00\x00{garbage', 'corrupted or truncated'),
        ('san19_patchwise', data, 'do not fit this model'),  # san10 weights in a san19 repo
    ]:
        repo = os.path.join(hub.root, 'timm-attn', f'{name}.in1k')
        os.makedirs(repo, exist_ok=True)
        with open(os.path.join(repo, 'model.safetensors'), 'wb') as f:
            f.write(payload)
        out, _ = _predict(name, env)
        assert out.returncode != 0
        assert f"repo 'timm-attn/{name}.in1k' (file 'model.safetensors')" in out.stderr, out.stderr[-2000:]
        assert expect in out.stderr, out.stderr[-2000:]


def test_push_dry_run_and_refusals(published, tmp_path):
    n = len(published['hub'].requests)
    out = _python([os.path.join(SCRIPTS, 'push_to_hub.py'), str(published['folder']), '--dry-run',
                   '--repo-id', 'me/test'], _env(tmp_path / 'hf', published['hub'].endpoint))
    assert out.returncode == 0, out.stderr
    assert 'would upload to me/test:' in out.stdout and 'model.safetensors (' in out.stdout
    assert len(published['hub'].requests) == n  # nothing contacted
    bad = tmp_path / 'bad'
    bad.mkdir()
    (bad / 'pytorch_model.bin').write_bytes(b'x')
    for f in ('model.safetensors', 'config.json', 'README.md'):
        (bad / f).write_text('x')
    out = _python([os.path.join(SCRIPTS, 'push_to_hub.py'), str(bad), '--dry-run'], _env(tmp_path / 'hf'))
    assert out.returncode == 2 and 'pickle' in out.stderr


def test_convert_refuses_unknown_formats(tmp_path):
    text = tmp_path / 'notes.txt'
    text.write_text('not a checkpoint')
    out = _python([os.path.join(SCRIPTS, 'convert_official.py'), 'san10_patchwise', str(text), '--out',
                   str(tmp_path / 'o')], _env(tmp_path / 'hf'))
    assert out.returncode == 2 and 'is not a PyTorch checkpoint' in out.stderr
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'module.' + k: v for k, v in RefSAN(0, SAN10).state_dict().items()}}, other)
    out = _python([os.path.join(SCRIPTS, 'convert_official.py'), 'san10_patchwise', str(other), '--out',
                   str(tmp_path / 'o')], _env(tmp_path / 'hf'))
    assert out.returncode == 2 and 'does not fit' in out.stderr and 'unexpected keys' in out.stderr


def test_convert_reads_checkpoints_that_pickle_other_objects(published, tmp_path):
    """A checkpoint that torch.load(weights_only=True) refuses because it also pickles a config object
    (and here a callable that would run a command) converts with those objects replaced by inert
    placeholders: the command never runs and the weights are the official ones."""
    marker = tmp_path / 'command-ran'
    ref = published['ref']
    ckpt = tmp_path / 'ckpt_with_config.pth'
    torch.save({'state_dict': {'module.' + k: v for k, v in ref.state_dict().items()}, 'epoch': 100,
                'config': TrainingConfig(), 'hook': RunsACommand(marker)}, ckpt)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)
    folder = tmp_path / 'out'
    out = _python([os.path.join(SCRIPTS, 'convert_official.py'), 'san10_patchwise', str(ckpt), '--out', str(folder)],
                  _env(tmp_path / 'hf'))
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'ignored pickled objects that are not tensors' in out.stdout and 'TrainingConfig' in out.stdout
    assert not marker.exists()
    import timm
    model = timm.create_model('san10_patchwise', pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(folder / 'model.safetensors'))).eval()
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model(x)[0, :20], published['expected'], rtol=1e-4, atol=1e-5)


def test_cards_are_up_to_date():
    out = _python([os.path.join(SCRIPTS, 'generate_cards.py'), '--check'], dict(os.environ))
    assert out.returncode == 0, out.stdout + out.stderr
    from timm_attn.cards import plugin_pretrained_tags
    cards = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, 'hub_cards')))
    assert cards == sorted(plugin_pretrained_tags())
    text = open(os.path.join(ROOT, 'hub_cards', 'san10_patchwise.in1k.md')).read()
    for piece in ('library_name: timm', 'license: mit', '- imagenet-1k', 'https://arxiv.org/abs/2004.13621',
                  '**Params (M):** 11.84', '**GMACs:**', '**Activations (M):**', "paper's numbers",
                  'top-1 77.1', 'convert_official.py san10_patchwise', 'features_only=True', '@inproceedings'):
        assert piece in text, piece


@needs_scripts
def test_push_a_train_py_output(published, tmp_path):
    """timm's train.py output folder -> exported (safetensors + config + card naming the command) -> Hub ->
    hf-hub: id."""
    data = image_folder(tmp_path / 'data', per_class=2)
    run_train_py(data, tmp_path / 'out', ['--model', 'san10_patchwise', '--num-classes', '2', '--img-size', '128',
                                          '-b', '2'], experiment='run', env=_env(tmp_path / 'hf'))
    hub = published['hub']
    push = _python([os.path.join(SCRIPTS, 'push_to_hub.py'), str(tmp_path / 'out' / 'run'), '--repo-id',
                    'me/san10_patchwise.smoke', '--tag', 'smoke', '--token', 'hf_test'],
                   _env(tmp_path / 'hf', hub.endpoint))
    assert push.returncode == 0, push.stdout[-2000:] + push.stderr[-3000:]
    repo = os.path.join(hub.root, 'me', 'san10_patchwise.smoke')
    assert sorted(os.listdir(repo)) == ['README.md', 'config.json', 'model.safetensors']
    card = open(os.path.join(repo, 'README.md')).read()
    assert 'Trained with timm-attn' in card and 'python train.py' in card and '--model san10_patchwise' in card
    code = ("import json, timm, torch; m = timm.create_model('hf-hub:me/san10_patchwise.smoke', pretrained=True)"
            ".eval(); r = timm.create_model('san10_patchwise', num_classes=2); "
            f"timm.models.load_checkpoint(r, {str(tmp_path / 'out' / 'run' / 'model_best.pth.tar')!r}); r.eval(); "
            "x = torch.randn(1, 3, 128, 128); print(m.num_classes, torch.allclose(m(x), r(x), atol=1e-5))")
    out = _python(['-c', code], _env(tmp_path / 'hf2', hub.endpoint))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-2:] == ['2', 'True']


# one tag per family without an official checkpoint to convert (SAN is covered above), at its input size
FAMILY_TAGS = [('coatnet_0.in1k', 224), ('gsa_resnet26_cifar.cifar100', 32),
               ('acmix_swin_tiny_patch4_window7_224.in1k', 224)]


def _with_trained_batchnorm(model, size):
    """Random BN affine parameters and running statistics that match the activations (from two training-mode
    batches), so eval outputs depend on every BN buffer. (Arbitrary running statistics are not enough here:
    GSA's unnormalised positional attention is quadratic in its input, and mismatched statistics overflow.)"""
    randomize_batchnorm(model)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, size, size))
    for bn in bns:
        bn.momentum = 0.1
    return model.eval()


@pytest.mark.parametrize('name_tag,size', FAMILY_TAGS)
def test_every_family_downloads_from_the_hub(published, tmp_path, name_tag, size):
    """A model exported with the publishing code, pushed with push_to_hub.py, then created with
    pretrained=True from the Hub in a fresh process: same outputs."""
    import timm
    from timm_attn.hub import export_hub_folder
    arch = name_tag.split('.')[0]
    torch.manual_seed(0)
    model = _with_trained_batchnorm(timm.create_model(name_tag), size)
    folder = tmp_path / name_tag
    export_hub_folder(model, str(folder), name_tag)
    hub = published['hub']
    push = _python([os.path.join(SCRIPTS, 'push_to_hub.py'), str(folder), '--token', 'hf_test'],
                   _env(tmp_path / 'hf', hub.endpoint))
    assert push.returncode == 0, push.stderr[-3000:]
    code = (f"import json, timm, torch; m = timm.create_model({arch!r}, pretrained=True).eval(); "
            f"x = torch.randn(1, 3, {size}, {size}, generator=torch.Generator().manual_seed(0)); "
            "print(json.dumps(m(x).detach()[0, :20].tolist()))")
    out = _python(['-c', code], _env(tmp_path / 'hf', hub.endpoint))
    assert out.returncode == 0, out.stderr[-3000:]
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)[0, :20]
    assert torch.allclose(torch.tensor(json.loads(out.stdout.strip().splitlines()[-1])), expected, atol=1e-4)


def test_weights_table_lists_every_pretrained_tag():
    """docs/weights.md's table (linked from the README): one row per pretrained tag, with its repo."""
    from timm_attn.cards import plugin_pretrained_tags
    from timm_attn.hub import hub_id
    doc = open(os.path.join(ROOT, 'docs', 'weights.md')).read()
    tags = plugin_pretrained_tags()
    missing = [t for t in tags if f'| {t} | {hub_id(t)} |' not in doc]
    assert tags and not missing, missing


def test_licenses_follow_one_rule():
    """cards.py's rule: converted official weights carry the official code's license, weights trained here and
    cfgs without weights the project's (apache-2.0); a card without official code says so."""
    import timm
    from timm_attn.card_data import family_card_data
    from timm_attn.cards import family_official_code, plugin_pretrained_tags
    from timm_attn.models import plugin_models
    tagged = set(plugin_pretrained_tags())
    for arch in plugin_models():
        module = timm.models.model_entrypoint(arch).__module__
        for name_tag in timm.models.get_arch_pretrained_cfgs(arch):
            cfg = timm.models.get_pretrained_cfg(name_tag)
            official = family_official_code(getattr(family_card_data(module), 'HUB_CARD', {}), arch)
            expected = official[1] if official and name_tag in tagged else 'apache-2.0'
            assert cfg.license == expected, (name_tag, cfg.license)
    for name_tag in ('coatnet_0.in1k', 'gsa_resnet50.in1k'):
        text = open(os.path.join(ROOT, 'hub_cards', f'{name_tag}.md')).read()
        assert 'Official code: no official code released.' in text and 'license: apache-2.0' in text
    text = open(os.path.join(ROOT, 'hub_cards', 'acmix_swin_tiny_patch4_window7_224.in1k.md')).read()
    assert 'license: unknown' in text and 'https://github.com/LeapLabTHU/ACmix (license: unknown)' in text


def test_card_prose_is_card_data_not_model_code():
    import timm_attn.models as models
    for family in ('san', 'coatnet', 'gsa', 'acmix', 'acmix_san_pvt', 'attention_resnet', 'resattnet', 'pvt'):
        module = getattr(models, family)
        assert not {'HUB_CARD', '_PAPER_ACCURACY', '_paper_note', '_training_command', '_NOTE', '_PAPERS'} & set(
            vars(module)), family
