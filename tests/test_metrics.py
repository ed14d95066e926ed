"The official-scorer parity acceptance tests: relex reproduces every number the perl scorer printed."
import json, os, subprocess, warnings
import pytest
from relex.metrics import EVAL_MODES, official_eval, read_answers, score
from scorer_output import parse_official_output


@pytest.mark.parametrize('n', [1, 2, 3, 5])
def test_cli_official_score_matches_fixture(shared_data, n):
    fx = shared_data/'semeval2010_task8/scorer_fixtures'
    out = subprocess.run(['relex', 'score', '--gold', fx/f'answer_key{n}.txt', '--pred', fx/f'proposed_answer{n}.txt', '--json'],
                         capture_output=True, text=True, check=True).stdout
    got = json.loads(out)
    want = parse_official_output((fx/f'result_scores{n}.txt').read_text())
    assert f"{got['official']:.2f}" == f"{want['official_score']:.2f}"
    for rel, v in want['official']['per_label'].items():
        for k in ('p', 'r', 'f1'): assert f"{got['per_relation'][rel][k]:.2f}" == f"{v[k]:.2f}", (rel, k)


@pytest.mark.parametrize('n', [1, 2, 3, 5])
@pytest.mark.parametrize('mode', list(EVAL_MODES))
def test_every_section_matches_fixture(shared_data, n, mode):
    fx = shared_data/'semeval2010_task8/scorer_fixtures'
    want = parse_official_output((fx/f'result_scores{n}.txt').read_text())[mode]
    got = official_eval(read_answers(fx/f'answer_key{n}.txt'), read_answers(fx/f'proposed_answer{n}.txt'), mode)
    assert set(got['per_label']) == set(want['per_label'])
    for rel, v in want['per_label'].items():
        for k in ('p', 'r', 'f1'): assert f"{got['per_label'][rel][k]:.2f}" == f"{v[k]:.2f}", (rel, k)
    for k in ('p', 'r', 'f1'): assert f"{got['macro'][k]:.2f}" == f"{want['macro'][k]:.2f}"


def test_malformed_prediction_file_is_one_clear_error(shared_data):
    fx = shared_data/'semeval2010_task8/scorer_fixtures'
    r = subprocess.run(['relex', 'score', '--gold', fx/'answer_key3.txt', '--pred', fx/'proposed_answer4.txt'],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ''
    assert r.stderr.startswith("relex score: error: unknown label 'Message-Topc(e1,e2)'")
    assert len(r.stderr.strip().splitlines()) == 1


def test_prediction_ids_outside_gold_are_an_error(tmp_path):
    (tmp_path/'g.txt').write_text('1\tOther\n')
    (tmp_path/'p.txt').write_text('1\tOther\n2\tOther\n')
    r = subprocess.run(['relex', 'score', '--gold', tmp_path/'g.txt', '--pred', tmp_path/'p.txt'], capture_output=True, text=True)
    assert r.returncode == 1 and 'not in the gold labels' in r.stderr


@pytest.mark.parametrize('n', [1, 2, 3, 5])
def test_every_micro_average_and_the_other_sections_match_fixture(shared_data, n):
    fx = shared_data/'semeval2010_task8/scorer_fixtures'
    want = parse_official_output((fx/f'result_scores{n}.txt').read_text())
    g, p = read_answers(fx/f'answer_key{n}.txt'), read_answers(fx/f'proposed_answer{n}.txt')
    for mode in EVAL_MODES:
        got = official_eval(g, p, mode)['micro']
        for k in ('p', 'r', 'f1'): assert f"{got[k]:.2f}" == f"{want[mode]['micro'][k]:.2f}", (mode, k)
    out = json.loads(subprocess.run(['relex', 'score', '--gold', fx/f'answer_key{n}.txt', '--pred', fx/f'proposed_answer{n}.txt', '--json'],
                                    capture_output=True, text=True, check=True).stdout)
    assert f"{out['official_18way']:.2f}" == f"{want['directional19']['macro']['f1']:.2f}"
    assert f"{out['official_undirected']:.2f}" == f"{want['undirected']['macro']['f1']:.2f}"
    assert f"{out['official']:.2f}" == f"{want['official']['macro']['f1']:.2f}"


def _write_runs(path, *runs):
    "Write an official gold file and a prediction file from (`gold`, `pred`, count) runs; return their paths."
    pairs = [(g, p) for g, p, k in runs for _ in range(k)]
    (path/'key.txt').write_text(''.join(f'{i}\t{g}\n' for i, (g, _) in enumerate(pairs, 1)))
    (path/'pred.txt').write_text(''.join(f'{i}\t{p}\n' for i, (_, p) in enumerate(pairs, 1)))
    return path/'key.txt', path/'pred.txt'


def _score_json(key, pred):
    return json.loads(subprocess.run(['relex', 'score', '--gold', key, '--pred', pred, '--json'], capture_output=True, text=True, check=True).stdout)


CE, MT = 'Cause-Effect(e1,e2)', 'Message-Topic(e1,e2)'


def test_ties_print_as_the_perl_scorer(tmp_path):
    "100*93/160 = 58.125 prints 58.12 (93/160*100 prints 58.13); F1 of 1/7 predicted, 1/57 gold prints 3.13, not 3.12."
    assert (f'{100 * 93 / 160:.2f}', f'{93 / 160 * 100:.2f}') == ('58.12', '58.13')
    got = _score_json(*_write_runs(tmp_path, (CE, CE, 93), ('Other', CE, 67), (MT, MT, 1), (MT, 'Other', 56), ('Other', MT, 6)))
    assert f"{got['per_relation']['Cause-Effect']['p']:.2f}" == '58.12'
    assert f"{got['per_relation']['Message-Topic']['f1']:.2f}" == '3.13'
    assert f"{got['official']:.2f}" == '38.32'


def test_official_score_tie_prints_as_the_perl_scorer(tmp_path):
    "Per-relation F1s 80 and 81.25 average to 80.625: perl prints 80.62 (F1 fractions averaged, then *100, print 80.63)."
    got = _score_json(*_write_runs(tmp_path, (CE, CE, 2), (CE, 'Other', 1), (MT, MT, 13), ('Other', MT, 1), (MT, 'Other', 5)))
    assert f"{got['official']:.2f}" == '80.62'
    assert f"{got['per_relation']['Message-Topic']['f1']:.2f}" == '81.25'


def test_other_only_key_scores_zero_without_nan_or_warning(tmp_path):
    key, pred = _write_runs(tmp_path, ('Other', 'Other', 3))
    r = subprocess.run(['relex', 'score', '--gold', key, '--pred', pred], capture_output=True, text=True, env=os.environ | {'PYTHONWARNINGS': 'error::RuntimeWarning'})
    assert r.returncode == 0 and r.stderr == '', r.stderr
    assert 'nan' not in r.stdout.lower()
    assert r.stdout.strip().endswith('official score (9+1-way, directionality taken into account, macro-F1) = 0.00%')
    got = _score_json(key, pred)
    assert (got['official'], got['official_18way'], got['official_undirected']) == (0.0, 0.0, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert official_eval({1: 'Other'}, {1: 'Other'})['macro'] == dict(p=0.0, r=0.0, f1=0.0)


def test_empty_prediction_file_is_one_clear_error(tmp_path):
    key, pred = _write_runs(tmp_path, (CE, CE, 2))
    pred.write_text('')
    r = subprocess.run(['relex', 'score', '--gold', key, '--pred', pred], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ''
    assert r.stderr == f'relex score: error: {pred}: the prediction file holds no predictions (it is empty)\n'
    with pytest.raises(ValueError, match=r'^no predictions to score \(the predictions are empty\)$'): score({1: CE}, {})
