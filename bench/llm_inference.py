#!/usr/bin/env python
"""Task-A LLM inference benchmark: examples/s and F1 of free generation (batch 1, batched), label scoring with the
prompt's KV cache shared across the 19 candidates, and label scoring with the few-shot exemplar prefix cached once.

Every setting answers the same test items with the same prompts; the settings take turns on each chunk of items, so
a change in machine load hits all of them alike. Speeds are reported as ratios to setting `a` (batch-1 generation).

    python bench/llm_inference.py                      # gemma-270m, 3-shot, 40 EN test items, CPU
    python bench/llm_inference.py --limit 500          # the size the speed-up claim is made on
    python bench/llm_inference.py --model tiny --limit 3   # a tiny random model (tests)
"""
from __future__ import annotations
import json, time, statistics
from pathlib import Path
import _common as C
import torch
from relex.core import LABELS, append_jsonl, read_jsonl, write_json, provenance
from relex.data import load_examples, data_root
from relex.metrics import score
from relex.models import HFBackend, tiny_causal_lm
from relex.prompting import build_prompt, select_exemplars, parse_label

SETTINGS = {
    'a': 'free generation, batch 1 (the study)',
    'b': 'free generation, batched',
    'c': 'label scoring, prompt KV cache shared by the 19 candidates',
    'd': 'label scoring + exemplar prefix cached once, reused across items',
    'e': 'free generation, exemplar prefix cached (generate_cached)',
}
GEN = dict(max_new_tokens=16, stop='\n')  # what prompt_run uses for task A

def load_llm(model: str):
    "An `HFBackend` for `model`; `tiny` is a tiny random Llama (for tests)."
    if model == 'tiny': return HFBackend(*tiny_causal_lm(seed=0), name='tiny')
    return HFBackend.load(model)

def _argmax_label(be, p):
    s = be.score_candidates(p, LABELS)
    return LABELS[max(range(len(LABELS)), key=s.__getitem__)]

def run_setting(be, s: str, prompts: list, batch_size: int, state: dict) -> list:
    "Raw answers of setting `s` for `prompts`; `state` carries setting d's and e's exemplar-prefix caches between chunks."
    if s == 'a': return be.generate(prompts, batch_size=1, **GEN)
    if s == 'b': return be.generate(prompts, batch_size=batch_size, **GEN)
    if s == 'c':
        out = []
        for p in prompts:
            be._prefix = ([], None)  # forget the previous prompt: no prefix reuse across items
            out.append(_argmax_label(be, p))
        return out
    be._prefix = state.get(s, ([], None))  # the prefix cache this setting left behind
    out = [_argmax_label(be, p) for p in prompts] if s == 'd' else be.generate_cached(prompts, **GEN)
    state[s] = be._prefix
    return out

def batch_of(s, batch_size): return batch_size if s == 'b' else 1

def bench_llm(model='gemma-270m', lang='en', k=3, limit=40, settings='abcd', batch_size=8, chunk=16, selection='fixed',
              seed=42, out='reports/bench', resume=True, note='', backend=None, root=None, quiet=False, sizes=None, warmup=True) -> dict:
    "Run every setting in `settings` on the first `limit` test items, side by side; write and return the results."
    from tqdm.auto import tqdm
    bad = [s for s in settings if s not in SETTINGS]
    if bad or not settings: raise ValueError(f"unknown setting(s) {bad or settings!r}; choose from {''.join(SETTINGS)}")
    if limit is not None and limit < 1: raise ValueError('--limit must be at least 1')
    batch_size = min(batch_size, chunk)  # setting b batches within a chunk
    root = data_root(root, verbose=False)
    test = load_examples('test', lang, root)[:limit]
    pool = load_examples('train', lang, root) if k else []
    prompts = {e.id: build_prompt(e, 'A', select_exemplars(e, pool, k, selection, seed), lang) for e in test}
    tag = f"{Path(model).name}-{lang}-A-k{k}-{selection}-n{len(test)}"
    pred_dir = C.out_dir(Path(out)/'llm_inference'/tag)
    if not resume:
        for s in settings: (pred_dir/f'{s}.jsonl').unlink(missing_ok=True)
    done = {s: {r['id']: r for r in read_jsonl(pred_dir/f'{s}.jsonl')} if (pred_dir/f'{s}.jsonl').exists() else {} for s in settings}
    be = backend or load_llm(model)
    if warmup and any(len(done[s]) < len(test) for s in settings):  # warm up kernels and allocator once, untimed
        for s in sorted({'a' if s in 'abe' else 'c' for s in settings}): run_setting(be, s, [prompts[test[0].id]], 1, {})
    state, t0 = {}, time.time()
    chunks = [test[i:i + chunk] for i in range(0, len(test), chunk)]
    for ci, ch in enumerate(tqdm(chunks, desc=f'llm {tag}', disable=quiet)):
        order = settings[ci % len(settings):] + settings[:ci % len(settings)]  # rotate who goes first
        for s in order:
            todo = [e for e in ch if e.id not in done[s]]
            if not todo: continue
            raws, secs = [], []
            for part in ([todo] if s == 'b' else [[e] for e in todo]):  # batch-1 settings are timed item by item
                ts = time.perf_counter()
                raws += run_setting(be, s, [prompts[e.id] for e in part], batch_size, state)
                secs += [(time.perf_counter() - ts) / len(part)] * len(part)
            recs = [dict(id=e.id, gold=e.label, prediction=parse_label(r), raw=r, seconds=dt) for e, r, dt in zip(todo, raws, secs)]
            append_jsonl(pred_dir/f'{s}.jsonl', recs); done[s].update({r['id']: r for r in recs})
    gold = {e.id: e.label for e in test}
    rows = []
    for s in settings:
        recs = [done[s][e.id] for e in test]
        rep, secs = score(gold, {r['id']: r['prediction'] for r in recs}), sum(r['seconds'] for r in recs)
        rows.append(dict(setting=s, description=SETTINGS[s], batch_size=batch_of(s, batch_size), n=len(recs),
                         seconds=secs, examples_per_s=len(recs) / secs, official=rep['official'], accuracy=rep['accuracy'],
                         invalid_rate=rep['invalid_rate'], coarse=rep['coarse'], directional19=rep['directional19'],
                         seconds_at=_cumulative(recs, sizes), median_item_s=statistics.median(r['seconds'] for r in recs)))
    base = rows[0] if rows[0]['setting'] == 'a' else None
    for r in rows:
        r['speedup_vs_a'] = r['examples_per_s'] / base['examples_per_s'] if base else None
        r['f1_minus_a'] = r['official'] - base['official'] if base else None
        r['median_speedup_vs_a'] = base['median_item_s'] / r['median_item_s'] if base else None  # robust to load spikes
        if base: r['agree_with_a'] = 100 * sum(done[r['setting']][e.id]['prediction'] == done['a'][e.id]['prediction'] for e in test) / len(test)
    if 'c' in settings and 'd' in settings:  # cached and uncached label scoring should pick the same label
        rows[settings.index('d')]['agree_with_c'] = 100 * sum(done['d'][e.id]['prediction'] == done['c'][e.id]['prediction'] for e in test) / len(test)
    params = dict(model=model, lang=lang, task='A', k=k, selection=selection, seed=seed, limit=limit, n=len(test),
                  settings=settings, batch_size=batch_size, chunk=chunk, gen=GEN, data=root.describe())
    res = dict(bench='llm_inference', rows=rows, prompt_tokens=_prompt_tokens(be, prompts), wall_time_s=time.time() - t0,
               provenance=provenance(params, test, bench_machine=C.machine(note)))
    write_json(Path(out)/f'llm_inference-{tag}.json', res)
    if not quiet: print(f"{tag} on {C.cpu_model()} ({C.machine()['cores']} cores)\n" + table(rows))
    figure(res, Path(out)/f'llm_inference-{tag}.png')
    return res

def _cumulative(recs, sizes=None, points=4):
    "Seconds spent on the first n items for n in `sizes` (default: `points` evenly spaced sizes): how time grows with n."
    sizes = sorted({n for n in sizes if n <= len(recs)} if sizes else {max(1, round(len(recs) * (i + 1) / points)) for i in range(points)})
    return {n: sum(r['seconds'] for r in recs[:n]) for n in sizes}

def _prompt_tokens(be, prompts):
    n = [len(be.tok(be.render(p))['input_ids']) for p in list(prompts.values())[:50]]
    return dict(mean=sum(n) / len(n), min=min(n), max=max(n))

def table(rows):
    return C.table(rows, ['setting', 'batch_size', 'n', 'examples_per_s', 'speedup_vs_a', 'median_speedup_vs_a', 'official', 'accuracy', 'invalid_rate', 'agree_with_a'])

def figure(res, path):
    "Bar charts of examples/s (with the ratio to `a`) and official F1 per setting."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows, p = res['rows'], res['provenance']['params']
    fig, ax = plt.subplots(1, 2, figsize=(8, 3), dpi=80)
    names = [f"{r['setting']}\nbs {r['batch_size']}" for r in rows]
    bars = ax[0].bar(names, [r['examples_per_s'] for r in rows], color='tab:blue')
    for b, r in zip(bars, rows):
        if r.get('speedup_vs_a'): ax[0].annotate(f"{r['speedup_vs_a']:.1f}×", (b.get_x() + b.get_width() / 2, b.get_height()), ha='center', va='bottom')
    ax[0].set_ylabel('examples / s'); ax[0].margins(y=0.15)
    ax[1].bar(names, [r['official'] for r in rows], color='tab:orange'); ax[1].set_ylabel('official F1')
    fig.suptitle(f"{p['model']} · task A · {p['k']}-shot {p['lang']} · n={p['n']} · {res['provenance']['bench_machine']['cores']} CPU cores"
                 if not res['provenance']['bench_machine']['gpu'] else f"{p['model']} · n={p['n']} · {res['provenance']['bench_machine']['gpu']}", fontsize=9)
    fig.tight_layout(); fig.savefig(path); plt.close(fig)
    return path

def main(argv=None):
    ap = C.parser(__doc__, 'en', 'test language')
    ap.add_argument('--model', default='gemma-270m', help=C.CAUSAL_MODEL_HELP)
    ap.add_argument('--k', type=int, default=3, help='few-shot exemplars (0 = zero-shot)')
    ap.add_argument('--limit', type=int, default=40, help='first N test items (the claim needs >= 500)')
    ap.add_argument('--settings', default='abcd', help='settings to run, e.g. abcde: ' + '; '.join(f'{k}: {v}' for k, v in SETTINGS.items()))
    ap.add_argument('--batch-size', type=int, default=8, help='batch size of setting b')
    ap.add_argument('--chunk', type=int, default=16, help='items per turn; settings alternate chunk by chunk')
    ap.add_argument('--selection', default='fixed', help='exemplar selection: fixed, stratified or knn')
    ap.add_argument('--fresh', action='store_true', help='ignore predictions of an earlier interrupted run')
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: torch decides)')
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    C.run_or_exit(bench_llm, a.model, a.lang, a.k, a.limit, a.settings, a.batch_size, a.chunk, a.selection, out=a.out, resume=not a.fresh, note=a.note)

if __name__ == '__main__': main()
