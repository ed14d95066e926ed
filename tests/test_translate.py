"Translation stage: validator on hand-written pairs of every issue type, kill-and-resume of a translation run, CLI errors."
import json, os, signal, subprocess, sys, time
import pytest
from relex.core import Example, read_jsonl
from relex.validate import ISSUE_TYPES, validate_pair

SRC = 'The <e1>company</e1> fabricates plastic <e2>chairs</e2>.'
# one hand-written bad translation per issue type: (English source or None for SRC, translation, language)
BAD = {
    'empty_output': (None, '   ', 'ro'),
    'marker_format': (None, 'Compania fabrică <e2>scaune</e2> din plastic.', 'ro'),
    'nested_markers': (None, '<e1>Compania fabrică <e2>scaune</e2></e1> din plastic.', 'ro'),
    'empty_entity': (None, '<e1> </e1> fabrică <e2>scaune</e2> din plastic.', 'ro'),
    'marker_splits_word': (None, '<e1>Compani</e1>a fabrică <e2>scaune</e2> din plastic.', 'ro'),
    'untranslated_entity': (None, '<e1>company</e1> fabrică <e2>scaune</e2> din plastic.', 'ro'),
    'partly_untranslated_entity': ('The <e1>water systems</e1> failed after the <e2>storm</e2> yesterday.',
                                   '<e1>sistemele water</e1> au cedat după <e2>furtuna</e2> de ieri.', 'ro'),
    'misplaced_marker': (None, 'Compania <e1>fabrică</e1> <e2>scaune</e2> din plastic.', 'ro'),
    'marker_on_modifier': ('The electron <e1>beam</e1> hit the <e2>target</e2>.', 'Fasciculul de <e1>electroni</e1> a lovit <e2>ținta</e2>.', 'ro'),
    'marker_on_other_word': ('A <e1>ban</e1> on <e2>beer</e2> was lifted by Sunshine.', 'O <e1>interdicție</e1> asupra <e2>Sunshine</e2> a fost ridicată.', 'ro'),
    'entity_as_name': ('Insurgents have thrown a <e1>grenade</e1> into the <e2>crowd</e2>.', 'Insurgenții au aruncat o <e1>Granada</e1> în <e2>mulțime</e2>.', 'ro'),
    'mistranslated_entity': ('The <e1>heart</e1> was put in a silver <e2>casket</e2>.', '<e1>Inima</e1> a fost pusă într-o <e2>cutie</e2> de argint.', 'ro'),
    'swapped_entities': (None, '<e1>Scaunele</e1> din plastic sunt fabricate de <e2>companie</e2>.', 'ro'),
    'unaligned_entity': ('The <e1>water</e1> filled the <e2>bottle</e2> quickly.', '<e1>Laptele</e1> a umplut repede <e2>sticla</e2>.', 'ro'),
    'entity_span_length': ('The <e1>company</e1> that was always good fabricates <e2>chairs</e2>.',
                           '<e1>Compania</e1> care a fost mereu bună fabrică <e2>scaune de plastic foarte bune și ieftine</e2>.', 'ro'),
    'wrong_language': (None, 'The <e1>company</e1> fabricates plastic <e2>chairs</e2>.', 'ro'),
    'wrong_script': (None, '<e1>Компания</e1> производит пластиковые <e2>стулья</e2>.', 'ro'),
    'no_diacritics': ('The <e1>company</e1> that we visited last year in the north fabricates many cheap plastic <e2>chairs</e2> for schools.',
                      '<e1>Compania</e1> pe care am vizitat-o anul trecut in nord fabrica multe <e2>scaune</e2> ieftine din plastic pentru scoli.', 'ro'),
    'cedilla_diacritics': (None, '<e1>Compania</e1> fabrică <e2>scaune</e2> din plastic ş.a.', 'ro'),
    'length_ratio': (None, '<e1>Compania</e1> <e2>scaune</e2>.', 'ro'),
}
GOOD = [
    (None, '<e1>Compania</e1> fabrică <e2>scaune</e2> din plastic.', 'ro'),
    (None, '<e2>Scaunele</e2> din plastic sunt fabricate de <e1>companie</e1>.', 'ro'),
    ('I met <e1>Maria</e1> at the <e2>school</e2> gate today.', 'Am întâlnit-o pe <e1>Maria</e1> azi la poarta <e2>școlii</e2>.', 'ro'),
    ('The <e1>BBC</e1> produced the <e2>documentary</e2> last year.', '<e1>BBC</e1> a produs <e2>documentarul</e2> anul trecut.', 'ro'),
    (None, '<e1>Компания</e1> производит пластиковые <e2>стулья</e2>.', 'ru'),
    (None, "L'<e1>entreprise</e1> fabrique des <e2>chaises</e2> en plastique.", 'fr'),
    ('The electron <e1>beam</e1> hit the <e2>target</e2>.', '<e1>Fasciculul</e1> de electroni a lovit <e2>ținta</e2>.', 'ro'),  # the head, marked
    ('The Bush <e1>administration</e1> sent the <e2>troops</e2>.', '<e1>Administrația</e1> Bush a trimis <e2>trupele</e2>.', 'ro'),
]


def _issues(src, tgt, lang):
    return validate_pair(Example.make(0, 'en', src or SRC), tgt, lang)


def test_every_issue_type_has_a_bad_pair():
    assert set(BAD) == set(ISSUE_TYPES)


@pytest.mark.parametrize('kind', list(BAD))
def test_bad_pair_is_flagged(kind):
    iss = _issues(*BAD[kind])
    assert kind in [i.type for i in iss], iss
    assert all(i.severity in ('error', 'warning', 'info') and i.message for i in iss)


@pytest.mark.parametrize('pair', GOOD)
def test_good_pair_is_clean(pair):
    assert _issues(*pair) == []


def test_unknown_language_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown language code 'xx'"): _issues(None, 'x', 'xx')


# a run of translate_examples on a tiny random causal LM, started in a subprocess so it can be killed
DRIVER = '''
import sys
from relex.translate import translate_examples
from relex.align import Aligner
from relex.data import load_examples
from relex.models import HFBackend, tiny_causal_lm
exs = (load_examples('test') * 1)[:int(sys.argv[2])]
be = HFBackend(*tiny_causal_lm(), name='tiny-causal')
translate_examples(exs, be, 'ro', sys.argv[1], max_attempts=1, batch_size=1, max_new_tokens=int(sys.argv[3]), aligner=Aligner('ro'))
print('done')
'''


def _lines(p): return len(p.read_text().splitlines()) if p.exists() else 0


def test_killed_run_resumes_without_lost_or_duplicated_ids(tmp_path):
    from relex.data import load_examples
    n, cache = 16, tmp_path/'cache.jsonl'
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    err = open(tmp_path/'err.log', 'w')
    p = subprocess.Popen([sys.executable, '-c', DRIVER, str(cache), str(n), '24'], env=env, stdout=subprocess.DEVNULL, stderr=err)
    t0 = time.time()
    while _lines(cache) < 3 and p.poll() is None and time.time() - t0 < 300: time.sleep(0.05)
    assert p.poll() is None, f"the run ended before it could be killed: {(tmp_path/'err.log').read_text()[-2000:]}"
    p.send_signal(signal.SIGKILL); p.wait()
    before = read_jsonl(cache)
    assert 3 <= len(before) < n
    r = subprocess.run([sys.executable, '-c', DRIVER, str(cache), str(n), '24'], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and 'done' in r.stdout, r.stderr[-2000:]
    after = read_jsonl(cache)
    want = [e.id for e in load_examples('test')[:n]]
    assert sorted(x['id'] for x in after) == sorted(want)          # nothing lost, nothing twice
    assert after[:len(before)] == before                           # what was written before the kill is kept as it was
    assert all(x['verdict'] in ('ok', 'warning', 'error') and 'issues' in x and x['attempts'] == 1 for x in after)


def test_validate_cli_errors_are_one_line(tmp_path):
    (tmp_path/'t.jsonl').write_text(json.dumps({'id': 8001, 'sentence_ro': '<e1>a</e1> <e2>b</e2>'}) + '\n')
    for args, msg in [(['--tgt', tmp_path/'t.jsonl', '--lang', 'zz'], "unknown language code 'zz'"),
                      (['--tgt', tmp_path/'missing.jsonl'], 'translation file not found'),
                      (['--src', tmp_path/'missing.txt', '--tgt', tmp_path/'t.jsonl'], 'SemEval file not found')]:
        r = subprocess.run(['relex', 'validate', *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_translate_cli_unreachable_endpoint_is_one_clear_error(tmp_path):
    env = dict(os.environ, RELEX_OPENAI_BASE_URL='http://127.0.0.1:9/v1')
    r = subprocess.run(['relex', 'translate', '--model', 'openai:x', '--limit', '1', '--out', str(tmp_path/'o.jsonl')],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0 and 'cannot reach the endpoint' in r.stderr


def test_validate_full_reference(shared_data):
    "The acceptance run: the whole Romanian reference test set, per-type counts, known problems flagged."
    if not (shared_data/'ro_reference/test_ro.jsonl').exists(): pytest.skip('no Romanian reference')
    r = subprocess.run(['relex', 'validate', '--src', shared_data/'semeval2010_task8/TEST_FILE_FULL.TXT',
                        '--tgt', shared_data/'ro_reference/test_ro.jsonl', '--json'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep['n'] == 2664 and set(rep['counts']) == set(ISSUE_TYPES)
    assert rep['counts']['untranslated_entity'] > 50 and rep['counts']['misplaced_marker'] > 20
    assert 8884 in [x['id'] for x in rep['examples']['nested_markers']]


AUDIT = [dict(id=8002, split='test', half='dev', e1='ok', e2='ok'), dict(id=8003, split='test', half='report', e1='misplaced', e2='ok')]


def test_validate_audit_cli(tmp_path, shared_data):
    "`relex validate --audit` scores the validator on the reference pairs of an audit, per half, at both severities."
    p = tmp_path/'audit.jsonl'
    p.write_text(''.join(json.dumps(r) + '\n' for r in AUDIT))
    r = subprocess.run(['relex', 'validate', '--audit', str(p), '--half', 'all', '--json'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep['n'] == 2 and set(rep) >= {'error', 'warning', 'signals', 'misses'}
    s = rep['error']['sentence']
    assert (s['tp'], s['fp'], s['fn']) == (1, 0, 0) and rep['error']['types']['misplaced']['tp'] == 1  # 8003: Maestrul <e1>școlii</e1>
    txt = subprocess.run(['relex', 'validate', '--audit', str(p), '--half', 'report'], capture_output=True, text=True, timeout=600).stdout
    assert 'sentence' in txt and '1 sentences' in txt


def test_validate_audit_errors_are_one_line(tmp_path):
    (tmp_path/'bad.jsonl').write_text('{"id": 1, "split": "test", "half": "dev", "e1": "wrong", "e2": "ok"}\n')
    for args, msg in [(['--audit', tmp_path/'none.jsonl'], 'audit file not found'), (['--audit', tmp_path/'bad.jsonl'], 'bad.jsonl line 1'),
                      (['--audit', tmp_path/'bad.jsonl', '--half', 'x'], "unknown audit half 'x'")]:
        r = subprocess.run(['relex', 'validate', *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
