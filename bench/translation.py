#!/usr/bin/env python
"""Translation benchmark: sentences/s of each backend at each batch size (HF models) or concurrency (OpenAI-compatible
endpoints), through `relex.translate.translate_examples` (prompting, marker protection, validation), on the same
English test sentences; plus the share of outputs the validator accepts.

    python bench/translation.py                                  # gemma-270m, 8 sentences, batch 1, 4, 8
    python bench/translation.py --models opus-mt-en-ro,openai:my-model --batch-sizes 1,8,32 --limit 256
    python bench/translation.py --models tiny-seq2seq --limit 3  # a tiny random Marian model (tests)
"""
from __future__ import annotations
import time
from pathlib import Path
import _common as C
from relex.core import write_json, provenance
from relex.data import load_examples, data_root
from relex.translate import translation_backend, translate_examples, Seq2SeqBackend, tiny_seq2seq
from relex.align import default_aligner

def make_backend(model: str, lang: str, batch_size: int, cache: dict):
    "The backend translating with `model` at `batch_size` (concurrency for `openai:` endpoints); models load once."
    if model.startswith('openai:'): return translation_backend(model, lang, batch_size, concurrency=batch_size)
    if model not in cache:
        cache[model] = Seq2SeqBackend(*tiny_seq2seq(), name='tiny-seq2seq', tgt_lang=lang) if model == 'tiny-seq2seq' \
            else translation_backend(model, lang, batch_size)
    be = cache[model]; be.batch_size = batch_size
    return be

def bench_translation(models='gemma-270m', lang='ro', limit=8, batch_sizes='1,4,8', max_attempts=1, max_new_tokens=None,
                      out='reports/bench', note='', root=None, quiet=False) -> dict:
    "Translate the first `limit` English test sentences with each backend and batch size; write and return the results."
    models, sizes = [m for m in models.split(',') if m], C.ints(batch_sizes)
    if not models or not sizes or min(sizes) < 1: raise ValueError('give at least one model and batch sizes >= 1')
    if limit < 1: raise ValueError('--limit must be at least 1')
    src = load_examples('test', 'en', data_root(root, verbose=False))[:limit]
    al, loaded, rows, t0 = default_aligner(lang), {}, [], time.time()
    for m in models:
        for bs in sizes:
            be = make_backend(m, lang, bs, loaded)
            if not rows or rows[-1]['model'] != m: translate_examples(src[:1], be, lang, max_attempts=1, batch_size=1, aligner=al)  # warm-up
            ts = time.perf_counter()
            recs = translate_examples(src, be, lang, cache=None, max_attempts=max_attempts, batch_size=bs,
                                      max_new_tokens=max_new_tokens, aligner=al)
            secs = time.perf_counter() - ts
            rows.append(dict(model=m, backend=type(be).__name__, batch_size=bs, n=len(recs), seconds=secs,
                             sentences_per_s=len(recs) / secs, accepted=100 * sum(r['verdict'] != 'error' for r in recs) / len(recs),
                             attempts_mean=sum(r['attempts'] for r in recs) / len(recs)))
    for r in rows:
        b1 = next((x for x in rows if x['model'] == r['model'] and x['batch_size'] == min(sizes)), None)
        r['speedup_vs_smallest_batch'] = r['sentences_per_s'] / b1['sentences_per_s']
    params = dict(models=models, lang=lang, limit=limit, batch_sizes=sizes, max_attempts=max_attempts, max_new_tokens=max_new_tokens)
    res = dict(bench='translation', rows=rows, wall_time_s=time.time() - t0, provenance=provenance(params, src, bench_machine=C.machine(note)))
    tag = f"{'+'.join(Path(m).name.replace(':', '_') for m in models)}-{lang}-n{limit}"
    write_json(Path(out)/f'translation-{tag}.json', res)
    if not quiet: print(f"{tag} on {C.cpu_model()} ({C.machine()['cores']} cores)\n" + table(rows))
    figure(res, Path(out)/f'translation-{tag}.png')
    return res

def table(rows):
    return C.table(rows, ['model', 'batch_size', 'n', 'seconds', 'sentences_per_s', 'speedup_vs_smallest_batch', 'accepted', 'attempts_mean'])

def figure(res, path):
    "Sentences/s against batch size (or concurrency), one line per backend."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 3), dpi=80)
    for m in res['provenance']['params']['models']:
        rs = [r for r in res['rows'] if r['model'] == m]
        ax.plot([r['batch_size'] for r in rs], [r['sentences_per_s'] for r in rs], 'o-', label=m)
    ax.set_xlabel('batch size / concurrency'); ax.set_ylabel('sentences / s'); ax.legend(fontsize=8)
    ax.set_title(f"EN→{res['provenance']['params']['lang']} · n={res['provenance']['params']['limit']} · {res['provenance']['bench_machine']['cores']} CPU cores", fontsize=9)
    fig.tight_layout(); fig.savefig(path); plt.close(fig)
    return path

def main(argv=None):
    ap = C.parser(__doc__, 'ro', 'target language')
    ap.add_argument('--models', default='gemma-270m', help="comma-separated: causal LMs, seq2seq MT models, openai:<model>, or 'tiny-seq2seq'")
    ap.add_argument('--limit', type=int, default=8, help='first N English test sentences')
    ap.add_argument('--batch-sizes', default='1,4,8', help='comma-separated batch sizes (concurrency for openai: endpoints)')
    ap.add_argument('--max-attempts', type=int, default=1, help='translation attempts (1 = no repair loop: raw throughput)')
    ap.add_argument('--max-new-tokens', type=int, default=None, help='generation cap (default: from the sentence length)')
    a = ap.parse_args(argv)
    C.run_or_exit(bench_translation, a.models, a.lang, a.limit, a.batch_sizes, a.max_attempts, a.max_new_tokens, out=a.out, note=a.note)

if __name__ == '__main__': main()
