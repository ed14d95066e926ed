#!/usr/bin/env python
"""Task-A LLM inference benchmark: examples/s and F1 of free generation (batch 1, batched), label scoring with the
prompt's KV cache shared across the 19 candidates, label scoring with the few-shot exemplar prefix cached once, and
label scoring as a token trie in one tree-masked pass (full-vocabulary likelihood, or constrained to the allowed tokens).

Every setting answers the same test items with the same prompts; the settings take turns on each chunk of items, so
a change in machine load hits all of them alike. Speeds are reported as ratios to setting `a` (batch-1 generation).

    python bench/llm_inference.py                      # gemma-270m, 3-shot, 40 EN test items, CPU
    python bench/llm_inference.py --limit 500          # the size the speed-up claim is made on
    python bench/llm_inference.py --model tiny --limit 3   # a tiny random model (tests)
    python bench/llm_inference.py --adapter ~/.cache/relex/runs/qlora/gemma-270m-en+ro-A/adapter --prompt short --k 0 --settings adfg
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
from relex.prompting import build_prompt, select_exemplars, parse_label, PROMPT_STYLES

SETTINGS = {
    'a': 'free generation, batch 1 (the study)',
    'b': 'free generation, batched',
    'c': 'label scoring, prompt KV cache shared by the 19 candidates',
    'd': 'label scoring + exemplar prefix cached once, reused across items',
    'e': 'free generation, exemplar prefix cached (generate_cached)',
    'f': 'label scoring as a token trie, one tree-masked pass, full-vocabulary likelihood, exemplar prefix cached',
    'g': 'label scoring as a token trie, constrained to the allowed tokens at each branch, exemplar prefix cached',
}
LABEL_SETTINGS = {'c': 'labels', 'd': 'labels', 'f': 'full', 'g': 'constrained'}  # how each label-scoring setting scores
STEPS = ('prefill', 'forward', 'project')  # the time breakdown of label scoring (HFBackend.score_candidates / score_trie)
GEN = dict(max_new_tokens=16, stop='\n')  # what prompt_run uses for task A

def adapter_info(adapter) -> dict:
    "What the QLoRA run recorded about its `adapter` folder (relex_qlora.json: base model, prompt, steps), or {}."
    meta = Path(adapter)/'relex_qlora.json'
    return json.loads(meta.read_text()) if meta.is_file() else {}

def load_llm(model: str, adapter: str = None):
    "An `HFBackend` for `model`, with the peft LoRA `adapter` folder merged in; `tiny` is a tiny random Llama (for tests)."
    be = HFBackend(*tiny_causal_lm(seed=0), name='tiny') if model == 'tiny' else HFBackend.load(model)
    if adapter:
        from peft import PeftModel
        if not (Path(adapter)/'adapter_config.json').is_file(): raise FileNotFoundError(f'no peft adapter in {adapter} (no adapter_config.json)')
        be.model = PeftModel.from_pretrained(be.model, str(adapter)).merge_and_unload().eval()  # merged: inference as fast as the base
        be.name = f'{be.name}+lora'
    return be

def _argmax_label(be, p, how='labels', times=None):
    s = be.score_candidates(p, LABELS, times=times) if how == 'labels' else be.score_trie(p, LABELS, how, times=times)
    return LABELS[max(range(len(LABELS)), key=s.__getitem__)]

def run_setting(be, s: str, prompts: list, batch_size: int, state: dict, times: dict = None) -> list:
    "Raw answers of setting `s` for `prompts`; `state` carries the exemplar-prefix caches of d–g between chunks; label scoring adds its step seconds to `times`."
    if s == 'a': return be.generate(prompts, batch_size=1, **GEN)
    if s == 'b': return be.generate(prompts, batch_size=batch_size, **GEN)
    if s == 'c':
        out = []
        for p in prompts:
            be._prefix = ([], None)  # forget the previous prompt: no prefix reuse across items
            out.append(_argmax_label(be, p, times=times))
        return out
    be._prefix = state.get(s, ([], None))  # the prefix cache this setting left behind
    out = [_argmax_label(be, p, LABEL_SETTINGS[s], times) for p in prompts] if s in LABEL_SETTINGS else be.generate_cached(prompts, **GEN)
    state[s] = be._prefix
    return out

def batch_of(s, batch_size): return batch_size if s == 'b' else 1

def bench_llm(model='gemma-270m', lang='en', k=3, limit=40, settings='abcdfg', batch_size=8, chunk=16, selection='fixed',
              seed=42, out='reports/bench', resume=True, note='', backend=None, root=None, quiet=False, sizes=None, warmup=True,
              adapter=None, prompt=None) -> dict:
    "Run every setting in `settings` on the first `limit` test items, side by side (`prompt` style; LoRA `adapter` merged in); write and return the results."
    from tqdm.auto import tqdm
    bad = [s for s in settings if s not in SETTINGS]
    if bad or not settings: raise ValueError(f"unknown setting(s) {bad or settings!r}; choose from {''.join(SETTINGS)}")
    if limit is not None and limit < 1: raise ValueError('--limit must be at least 1')
    if adapter and not (Path(adapter)/'adapter_config.json').is_file(): raise FileNotFoundError(f'no peft adapter in {adapter} (no adapter_config.json)')
    trained = adapter_info(adapter) if adapter else {}
    prompt = prompt or trained.get('prompt', 'full')  # an adapter answers best on the prompt it was trained with
    if prompt not in PROMPT_STYLES: raise ValueError(f"unknown prompt {prompt!r}; choose one of {', '.join(PROMPT_STYLES)}")
    if trained.get('prompt') and trained['prompt'] != prompt and not quiet: print(f"warning: the adapter was trained with --prompt {trained['prompt']}, not {prompt}")
    batch_size = min(batch_size, chunk)  # setting b batches within a chunk
    root = data_root(root, verbose=False)
    test = load_examples('test', lang, root)[:limit]
    pool = load_examples('train', lang, root) if k else []
    prompts = {e.id: build_prompt(e, 'A', select_exemplars(e, pool, k, selection, seed), lang, prompt) for e in test}
    tag = (f"{Path(model).name}" + (f'+lora-{_adapter_name(adapter)}' if adapter else '') + f"-{lang}-A-k{k}-{selection}"
           + ('-short' if prompt == 'short' else '') + f"-n{len(test)}")
    pred_dir = C.out_dir(Path(out)/'llm_inference'/tag)
    if not resume:
        for s in settings: (pred_dir/f'{s}.jsonl').unlink(missing_ok=True)
    done = {s: {r['id']: r for r in read_jsonl(pred_dir/f'{s}.jsonl')} if (pred_dir/f'{s}.jsonl').exists() else {} for s in settings}
    be = backend or load_llm(model, adapter)
    if warmup and any(len(done[s]) < len(test) for s in settings):  # warm up kernels and allocator once, untimed
        for s in sorted({'a' if s in 'abe' else 'c' if s in 'cd' else 'f' for s in settings}): run_setting(be, s, [prompts[test[0].id]], 1, {})
    state, t0 = {}, time.time()
    chunks = [test[i:i + chunk] for i in range(0, len(test), chunk)]
    for ci, ch in enumerate(tqdm(chunks, desc=f'llm {tag}', disable=quiet)):
        order = settings[ci % len(settings):] + settings[:ci % len(settings)]  # rotate who goes first
        for s in order:
            todo = [e for e in ch if e.id not in done[s]]
            if not todo: continue
            raws, secs, steps = [], [], []
            for part in ([todo] if s == 'b' else [[e] for e in todo]):  # batch-1 settings are timed item by item
                ts, times = time.perf_counter(), ({} if s in LABEL_SETTINGS else None)
                raws += run_setting(be, s, [prompts[e.id] for e in part], batch_size, state, times)
                secs += [(time.perf_counter() - ts) / len(part)] * len(part)
                steps += [times] * len(part)
            recs = [dict(id=e.id, gold=e.label, prediction=parse_label(r), raw=r, seconds=dt, **(dict(steps=st) if st is not None else {}))
                    for e, r, dt, st in zip(todo, raws, secs, steps)]
            append_jsonl(pred_dir/f'{s}.jsonl', recs); done[s].update({r['id']: r for r in recs})
    gold = {e.id: e.label for e in test}
    rows = []
    for s in settings:
        recs = [done[s][e.id] for e in test]
        rep, secs = score(gold, {r['id']: r['prediction'] for r in recs}), sum(r['seconds'] for r in recs)
        rows.append(dict(setting=s, description=SETTINGS[s], batch_size=batch_of(s, batch_size), n=len(recs),
                         seconds=secs, examples_per_s=len(recs) / secs, official=rep['official'], accuracy=rep['accuracy'],
                         invalid_rate=rep['invalid_rate'], coarse=rep['coarse'], directional19=rep['directional19'],
                         seconds_at=_cumulative(recs, sizes), median_item_s=statistics.median(r['seconds'] for r in recs), **_breakdown(recs)))
    base = rows[0] if rows[0]['setting'] == 'a' else None
    for r in rows:
        r['speedup_vs_a'] = r['examples_per_s'] / base['examples_per_s'] if base else None
        r['f1_minus_a'] = r['official'] - base['official'] if base else None
        r['median_speedup_vs_a'] = base['median_item_s'] / r['median_item_s'] if base else None  # robust to load spikes
        if base: r['agree_with_a'] = 100 * sum(done[r['setting']][e.id]['prediction'] == done['a'][e.id]['prediction'] for e in test) / len(test)
    agree = lambda s, t: 100 * sum(done[s][e.id]['prediction'] == done[t][e.id]['prediction'] for e in test) / len(test)
    if 'c' in settings and 'd' in settings: rows[settings.index('d')]['agree_with_c'] = agree('d', 'c')  # cached and uncached: same labels
    for s in 'fg':  # the trie computes d's log-likelihoods (f) or renormalises them over the allowed tokens (g)
        if s in settings and 'd' in settings: rows[settings.index(s)]['agree_with_d'] = agree(s, 'd')
    params = dict(model=model, lang=lang, task='A', k=k, selection=selection, seed=seed, limit=limit, n=len(test),
                  settings=settings, batch_size=batch_size, chunk=chunk, gen=GEN, data=root.describe(), prompt=prompt,
                  adapter=str(adapter) if adapter else None, adapter_trained={x: trained.get(x) for x in
                  ('base_model', 'prompt_id', 'langs', 'global_step', 'best_checkpoint', 'best_eval_loss', 'time')} if trained else None)
    res = dict(bench='llm_inference', rows=rows, prompt_tokens=_prompt_tokens(be, prompts), wall_time_s=time.time() - t0,
               provenance=provenance(params, test, bench_machine=C.machine(note)))
    write_json(Path(out)/f'llm_inference-{tag}.json', res)
    if not quiet: print(f"{tag} on {C.cpu_model()} ({C.machine()['cores']} cores)\n" + table(rows))
    figure(res, Path(out)/f'llm_inference-{tag}.png')
    return res

def _adapter_name(adapter):
    "A short name for an adapter folder: its run folder's name when the folder is called `adapter` (as `relex qlora` saves it)."
    p = Path(adapter).expanduser().resolve()
    return (p.parent.name if p.name == 'adapter' else p.name).replace('+', '_')

def _breakdown(recs) -> dict:
    "Mean seconds per item of each label-scoring step (prefill of the prompt's new tail, candidate forward pass, projections), and the rest."
    timed = [r for r in recs if r.get('steps')]
    if not timed: return {}
    out = {f'{k}_s': sum(r['steps'].get(k, 0.) for r in timed) / len(timed) for k in STEPS}
    return out | dict(other_s=sum(r['seconds'] for r in timed) / len(timed) - sum(out.values()))

def _cumulative(recs, sizes=None, points=4):
    "Seconds spent on the first n items for n in `sizes` (default: `points` evenly spaced sizes): how time grows with n."
    sizes = sorted({n for n in sizes if n <= len(recs)} if sizes else {max(1, round(len(recs) * (i + 1) / points)) for i in range(points)})
    return {n: sum(r['seconds'] for r in recs[:n]) for n in sizes}

def _prompt_tokens(be, prompts):
    n = [len(be.tok(be.render(p))['input_ids']) for p in list(prompts.values())[:50]]
    return dict(mean=sum(n) / len(n), min=min(n), max=max(n))

def table(rows):
    return C.table(rows, ['setting', 'batch_size', 'n', 'examples_per_s', 'speedup_vs_a', 'median_speedup_vs_a', 'official', 'accuracy', 'invalid_rate',
                          'agree_with_a', 'agree_with_d', 'prefill_s', 'forward_s', 'project_s', 'other_s'])

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
    ap.add_argument('--settings', default='abcdfg', help='settings to run, e.g. abcdefg: ' + '; '.join(f'{k}: {v}' for k, v in SETTINGS.items()))
    ap.add_argument('--batch-size', type=int, default=8, help='batch size of setting b')
    ap.add_argument('--chunk', type=int, default=16, help='items per turn; settings alternate chunk by chunk')
    ap.add_argument('--selection', default='fixed', help='exemplar selection: fixed, stratified or knn')
    ap.add_argument('--fresh', action='store_true', help='ignore predictions of an earlier interrupted run')
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: torch decides)')
    ap.add_argument('--adapter', default=None, help='a peft LoRA adapter folder to merge into --model (e.g. the adapter/ of a relex qlora run)')
    ap.add_argument('--prompt', default=None, choices=PROMPT_STYLES, help="prompt style: full (definitions) or short (what relex qlora trains on); "
                                                                          "default: the adapter's training prompt, else full")
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    C.run_or_exit(bench_llm, a.model, a.lang, a.k, a.limit, a.settings, a.batch_size, a.chunk, a.selection, out=a.out, resume=not a.fresh,
                  note=a.note, adapter=a.adapter and str(Path(a.adapter).expanduser()), prompt=a.prompt)

if __name__ == '__main__': main()
