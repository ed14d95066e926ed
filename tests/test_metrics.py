"The official-scorer parity acceptance tests: relex reproduces every number the perl scorer printed."
import json, subprocess
import pytest
from relex.metrics import EVAL_MODES, official_eval, parse_official_output, read_answers


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
