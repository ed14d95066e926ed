"Data loading on the real release (RELEX_DATA) and on the shipped sample."
import json, os, subprocess
from relex.core import LABELS
from relex.data import load_examples, split_summary


def test_release_sizes(shared_data):
    en, ro = split_summary(shared_data, 'en'), split_summary(shared_data, 'ro')
    assert (en['train_full']['n'], en['test']['n']) == (8000, 2717)
    assert (en['train']['n'], en['dev']['n']) == (7200, 800)
    assert (ro['test']['n'], ro['train_full']['n']) == (2664, 7871)
    # stratified: every label with at least 10 training sentences has its share in dev
    for l, n in en['train_full']['labels'].items():
        if n >= 10: assert abs(en['dev']['labels'][l] - n / 10) <= 1, l


def test_romanian_labels_come_from_english(shared_data):
    en = {e.id: e.label for e in load_examples('test', 'en', shared_data)}
    ro = load_examples('test', 'ro', shared_data)
    assert all(e.label == en[e.id] for e in ro)


def _cli(*args, **env):
    e = {k: v for k, v in os.environ.items() if k != 'RELEX_DATA'} | env
    return subprocess.run(['relex', *args], capture_output=True, text=True, env=e)


def test_cli_on_sample_when_relex_data_unset(tmp_path):
    r = _cli('data', '--lang', 'ro', '--json_out', XDG_CACHE_HOME=str(tmp_path))
    assert 'shipped with relex' in r.stderr
    out = json.loads(r.stdout)
    assert out['splits']['test']['n'] == 38
    assert list(out['splits']['train_full']['labels']) == LABELS  # every label, in order


def test_cli_on_release(shared_data):
    r = _cli('data', '--lang', 'ro', RELEX_DATA=str(shared_data))
    assert f'RELEX_DATA: {shared_data}' in r.stderr
    assert r.stdout.strip().splitlines()[-1].split() == ['total', '7086', '785', '2664', '7871']


def test_missing_relex_data_is_one_clear_error(tmp_path):
    r = _cli('data', RELEX_DATA=str(tmp_path/'nowhere'))
    assert r.returncode == 1 and 'has no semeval2010_task8/TRAIN_FILE.TXT' in r.stderr and 'Traceback' not in r.stderr
