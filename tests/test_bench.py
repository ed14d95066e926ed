"Benchmarks (bench/*.py) on tiny models: every setting lands in the JSON with its numbers; resume; bad input. No timing assertions."
import json, subprocess, sys
from pathlib import Path
import pytest
import torch
from relex.data import load_examples

BENCH = Path(__file__).resolve().parents[1]/'bench'
sys.path.insert(0, str(BENCH))
import llm_inference, encoder_training, translation, scaling

torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared CPU


def _load(path): return json.loads(Path(path).read_text())


@pytest.fixture(scope='module')
def tiny_llm(): return llm_inference.load_llm('tiny')


def test_llm_every_setting(tmp_path, tiny_llm):
    res = llm_inference.bench_llm('tiny', k=1, limit=3, settings='abcde', batch_size=2, chunk=3, out=tmp_path, backend=tiny_llm, quiet=True)
    js = _load(next(tmp_path.glob('llm_inference-*.json')))
    assert js['rows'] == json.loads(json.dumps(res['rows']))
    assert [r['setting'] for r in js['rows']] == list('abcde')
    assert [r['batch_size'] for r in js['rows']] == [1, 2, 1, 1, 1]
    for r in js['rows']:
        assert r['n'] == 3 and r['examples_per_s'] > 0 and 0 <= r['official'] <= 100 and 0 <= r['invalid_rate'] <= 100
        assert r['speedup_vs_a'] > 0 and r['median_speedup_vs_a'] > 0 and list(r['seconds_at'])[-1] == '3'
    rows = {r['setting']: r for r in js['rows']}
    assert rows['a']['speedup_vs_a'] == 1 and rows['a']['agree_with_a'] == 100
    assert rows['c']['invalid_rate'] == 0 and rows['d']['invalid_rate'] == 0  # label scoring always answers a label
    assert rows['d']['agree_with_c'] == 100  # the cached exemplar prefix must not change the chosen label
    m = js['provenance']['bench_machine']
    assert m['cores'] >= 1 and m['cpu_model'] and js['provenance']['params']['n'] == 3
    from PIL import Image
    fig = Image.open(tmp_path/next(tmp_path.glob('llm_inference-*.json')).name.replace('.json', '.png'))
    assert fig.format == 'PNG' and min(fig.size) > 100


def test_llm_trie_settings(tmp_path, tiny_llm):
    res = llm_inference.bench_llm('tiny', k=1, limit=3, settings='adfg', chunk=2, out=tmp_path, backend=tiny_llm, quiet=True)
    rows = {r['setting']: r for r in res['rows']}
    assert list(rows) == list('adfg') and all(rows[s]['n'] == 3 and rows[s]['invalid_rate'] == 0 for s in 'dfg')
    assert rows['f']['agree_with_d'] == 100  # the trie computes the same log-likelihoods as the padded rows
    assert 0 <= rows['g']['agree_with_d'] <= 100 and 'agree_with_d' not in rows['d']
    for s in 'dfg':  # the time breakdown of label scoring
        assert all(rows[s][f'{k}_s'] >= 0 for k in ('prefill', 'forward', 'project')) and 'other_s' in rows[s]
    assert 'prefill_s' not in rows['a']
    recs = [json.loads(l) for l in next(tmp_path.glob('llm_inference/*/g.jsonl')).read_text().splitlines()]
    assert set(recs[0]['steps']) == {'prefill', 'forward', 'project'}


def test_llm_with_a_lora_adapter_and_the_short_prompt(tmp_path):
    from relex.qlora import lora_model
    from relex.core import write_json
    base = llm_inference.load_llm('tiny')
    lora_model(base.model).save_pretrained(tmp_path/'run'/'adapter')
    write_json(tmp_path/'run'/'adapter'/'relex_qlora.json', dict(prompt='short', prompt_id='relex-A-short-v1', global_step=0))
    be = llm_inference.load_llm('tiny', tmp_path/'run'/'adapter')
    assert be.name == 'tiny+lora' and not hasattr(be.model, 'peft_config')  # merged into the base
    res = llm_inference.bench_llm('tiny', k=0, limit=2, settings='dg', out=tmp_path, backend=be, quiet=True, adapter=tmp_path/'run'/'adapter')
    p = res['provenance']['params']
    assert p['prompt'] == 'short' and p['adapter_trained']['prompt_id'] == 'relex-A-short-v1'  # the adapter's training prompt by default
    assert next(tmp_path.glob('llm_inference-*.json')).name == 'llm_inference-tiny+lora-run-en-A-k0-fixed-short-n2.json'
    with pytest.raises(FileNotFoundError, match='no peft adapter'): llm_inference.bench_llm('tiny', adapter=tmp_path, out=tmp_path)
    with pytest.raises(ValueError, match='unknown prompt'): llm_inference.bench_llm('tiny', prompt='long', out=tmp_path, backend=be)


def test_llm_resumes_without_recomputing(tmp_path, tiny_llm):
    kw = dict(k=0, limit=2, settings='ac', chunk=1, out=tmp_path, backend=tiny_llm, quiet=True)
    llm_inference.bench_llm('tiny', **kw)
    d = next((tmp_path/'llm_inference').iterdir())
    before = (d/'a.jsonl').read_text()
    ids = [e.id for e in load_examples('test', 'en')[:2]]
    assert [json.loads(l)['id'] for l in before.splitlines()] == ids
    first = (d/'c.jsonl').read_text().splitlines()[0]
    (d/'c.jsonl').write_text(first + '\n')  # as if killed after one item
    llm_inference.bench_llm('tiny', **kw)
    assert (d/'a.jsonl').read_text() == before
    c = (d/'c.jsonl').read_text().splitlines()
    assert c[0] == first and [json.loads(l)['id'] for l in c] == ids  # the first item kept as it was, the second added


def test_llm_bad_input(tmp_path):
    with pytest.raises(ValueError, match='unknown setting'): llm_inference.bench_llm('tiny', settings='az', out=tmp_path)
    with pytest.raises(ValueError, match='limit'): llm_inference.bench_llm('tiny', limit=0, out=tmp_path)


def test_encoder_every_setting(tmp_path):
    res = encoder_training.bench_encoder('tiny', limit=4, max_lengths='40,64', batch_size=2, out=tmp_path, isolate=False, quiet=True)
    js = _load(next(tmp_path.glob('encoder_training-*.json')))
    assert js['rows'] == json.loads(json.dumps(res['rows']))
    got = {(r['head'], r['max_length'], r['padding']) for r in js['rows']}
    assert got == {(h, L, p) for h in ('cls', 'entity-start') for L in (40, 64) for p in ('dynamic', 'max_length')}
    for r in js['rows']:
        assert r['n'] == 4 and r['steps'] == 2 and r['examples_per_s'] > 0 and r['peak_memory_mb'] > 0
        assert r['tokens_real'] <= r['tokens_padded']
        if r['padding'] == 'max_length': assert r['tokens_padded'] == 4 * r['max_length']
    by = {(r['head'], r['max_length'], r['padding']): r for r in js['rows']}
    for h in ('cls', 'entity-start'):  # padding to the longest in a batch never pads more than padding to max length
        assert by[h, 64, 'dynamic']['tokens_padded'] <= by[h, 64, 'max_length']['tokens_padded']
    with pytest.raises(ValueError, match='unknown head'): encoder_training.bench_encoder('tiny', heads='mean', out=tmp_path)


def test_translation_every_batch_size(tmp_path):
    translation.bench_translation('tiny-seq2seq', limit=2, batch_sizes='1,2', max_new_tokens=8, out=tmp_path, quiet=True)
    js = _load(next(tmp_path.glob('translation-*.json')))
    assert [(r['model'], r['batch_size'], r['n']) for r in js['rows']] == [('tiny-seq2seq', 1, 2), ('tiny-seq2seq', 2, 2)]
    assert all(r['sentences_per_s'] > 0 and 0 <= r['accepted'] <= 100 for r in js['rows'])
    with pytest.raises(ValueError, match='batch sizes'): translation.bench_translation('tiny-seq2seq', batch_sizes='0', out=tmp_path)


def test_scaling_every_size_and_k(tmp_path):
    scaling.bench_scaling('tiny', sizes='1,2', ks='0,1', settings='cd', out=tmp_path, quiet=True)
    js = _load(next(tmp_path.glob('scaling-*.json')))
    assert {(r['setting'], r['k'], r['n']) for r in js['rows']} == {(s, k, n) for s in 'cd' for k in (0, 1) for n in (1, 2)}
    toks = {r['k']: r['prompt_tokens'] for r in js['rows']}
    assert toks[1] > toks[0]  # an exemplar makes the prompt longer
    assert scaling.fit_line([1, 2, 3], [3, 5, 7]) == pytest.approx((1, 2))


def test_cli_prints_table(tmp_path):
    r = subprocess.run([sys.executable, str(BENCH/'llm_inference.py'), '--model', 'tiny', '--k', '0', '--limit', '2', '--settings', 'ad',
                        '--out', str(tmp_path), '--threads', '1'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'examples_per_s' in r.stdout and 'speedup_vs_a' in r.stdout
    bad = subprocess.run([sys.executable, str(BENCH/'llm_inference.py'), '--settings', 'x', '--out', str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and 'unknown setting' in bad.stderr
