"bench/qlora_training.py on a tiny model: every setting lands in the JSON with its numbers; bad input. No timing assertions."
import json, subprocess, sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]/'bench'


def test_every_setting_in_the_json(tmp_path):
    r = subprocess.run([sys.executable, str(BENCH/'qlora_training.py'), '--model', 'tiny', '--batch-size', '4', '--rounds', '1',
                        '--threads', '1', '--out', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    js = json.loads((tmp_path/'qlora_training.json').read_text())
    rows = {x['setting']: x for x in js['rows']}
    assert list(rows) == ['full-plain', 'full-shared', 'short-plain', 'short-shared']
    assert rows['full-plain']['speedup_vs_first'] == 1 and all(x['s_per_example_median'] > 0 for x in rows.values())
    assert rows['short-plain']['tokens_per_example'] < rows['full-plain']['tokens_per_example'] / 3  # the short prompt is short
    assert rows['short-plain']['tokens_per_example'] == rows['short-shared']['tokens_per_example']
    assert js['machine']['cores'] >= 1 and 'full-plain' in r.stdout


def test_unknown_setting_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(BENCH/'qlora_training.py'), '--model', 'tiny', '--settings', 'fast', '--out', str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip() == 'error: unknown setting(s) fast; choose from full-plain, full-shared, short-plain, short-shared'
