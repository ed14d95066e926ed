#!/usr/bin/env python
"""Encoder training benchmark: examples/s, peak memory and padding overhead per head and max length, with dynamic
padding + length-grouped batches (what `relex encoder` does) vs naive padding of every sentence to max length.

Each setting trains in a fresh process (so its peak memory is its own) on the same training examples, one epoch.

    python bench/encoder_training.py                         # MiniLM, 64 EN train sentences, heads x {96, 192}
    python bench/encoder_training.py --limit 1024 --model xlmr-base --max-lengths 128,192,256
    python bench/encoder_training.py --model tiny --limit 8  # a tiny random BERT (tests)
"""
from __future__ import annotations
import json, time, itertools, resource, multiprocessing as mp
from pathlib import Path
import _common as C
from relex.core import write_json, provenance

PADDINGS = {'dynamic': 'dynamic padding + length-grouped batches', 'dynamic-random': 'dynamic padding, random batches',
            'max_length': 'every sentence padded to max length, random batches'}
# Note: the HF LengthGroupedSampler sorts within mega-batches of min(n // (4 * batch), 50) batches, so below 4 x 4 batches
# of examples (n < 128 at batch 16) it cannot group anything and 'dynamic' behaves like 'dynamic-random'.

def _rss_mb():
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmRSS'): return int(line.split()[1]) / 1024
    return None

def train_one(cfg: dict) -> dict:
    "Train one setting `cfg` for one epoch in this process; its speed, memory and padding numbers."
    import torch
    from transformers import Trainer, TrainingArguments, DataCollatorWithPadding, set_seed
    from relex.data import load_examples, data_root
    from relex.encoders import load_encoder, encode_marked, MarkerClassifier, MARKERS, tiny_encoder_dir
    if cfg.get('threads'): torch.set_num_threads(cfg['threads'])
    set_seed(cfg['seed'])
    train = load_examples('train', cfg['lang'], data_root(cfg.get('root'), verbose=False))[:cfg['limit']]
    model = str(tiny_encoder_dir(Path(cfg['out'])/'tiny-encoder')) if cfg['model'] == 'tiny' else cfg['model']
    tok, enc = load_encoder(model)
    mids = [tok.convert_tokens_to_ids(m) for m in MARKERS]
    feats = [encode_marked(e, tok, cfg['max_length'], mids) for e in train]
    dyn = cfg['padding'].startswith('dynamic')
    collator = DataCollatorWithPadding(tok) if dyn else DataCollatorWithPadding(tok, padding='max_length', max_length=cfg['max_length'])
    clf = MarkerClassifier(enc, cfg['head'])
    args = TrainingArguments(str(Path(cfg['out'])/'trainer'), num_train_epochs=1, per_device_train_batch_size=cfg['batch_size'],
                             learning_rate=2e-5, save_strategy='no', eval_strategy='no', logging_strategy='no', report_to='none',
                             train_sampling_strategy='group_by_length' if cfg['padding'] == 'dynamic' else 'random', seed=cfg['seed'],
                             dataloader_num_workers=0, dataloader_pin_memory=torch.cuda.is_available(), disable_tqdm=True, bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    tr = Trainer(model=clf, args=args, train_dataset=feats, data_collator=collator)
    batches = list(tr.get_train_dataloader())  # the padded batches this setting trains on (same sampler seed as training)
    padded = sum(b['input_ids'].numel() for b in batches)
    real = sum(len(f['input_ids']) for f in feats)
    if torch.cuda.is_available(): torch.cuda.reset_peak_memory_stats()
    rss0, t0 = _rss_mb(), time.perf_counter()
    out = tr.train()
    secs = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(cfg, n=len(feats), steps=out.global_step, seconds=secs, examples_per_s=len(feats) / secs,
                trainer_examples_per_s=out.metrics.get('train_samples_per_second'), tokens_padded=padded, tokens_real=real,
                pad_share=100 * (padded - real) / padded, peak_memory_mb=peak, rss_before_train_mb=rss0,
                train_memory_mb=peak if torch.cuda.is_available() else max(peak - rss0, 0.),  # what training added to the process
                memory_kind='cuda max allocated' if torch.cuda.is_available() else 'process peak RSS')

def _child(cfg, q):
    try: q.put(train_one(cfg))
    except Exception as e: q.put(dict(cfg, error=f'{type(e).__name__}: {e}'))

def run_isolated(cfg: dict) -> dict:
    "`train_one(cfg)` in a fresh spawned process (so peak memory is measured per setting)."
    ctx = mp.get_context('spawn'); q = ctx.Queue()
    p = ctx.Process(target=_child, args=(cfg, q)); p.start()
    res = q.get(); p.join()
    if 'error' in res: raise RuntimeError(f"setting {cfg['head']}/{cfg['max_length']}/{cfg['padding']} failed: {res['error']}")
    return res

def bench_encoder(model='minilm', lang='en', limit=64, heads='cls,entity-start', max_lengths='96,192', paddings='dynamic,max_length',
                  batch_size=16, seed=42, out='reports/bench', note='', threads=None, isolate=True, quiet=False) -> dict:
    "Train every head x max length x padding setting for one epoch on `limit` examples; write and return the results."
    from tqdm.auto import tqdm
    from relex.encoders import HEADS
    heads, pads, lens = [h for h in heads.split(',') if h], [p for p in paddings.split(',') if p], C.ints(max_lengths)
    if bad := [h for h in heads if h not in HEADS]: raise ValueError(f"unknown head(s) {bad}; choose from {', '.join(HEADS)}")
    if bad := [p for p in pads if p not in PADDINGS]: raise ValueError(f"unknown padding(s) {bad}; choose from {', '.join(PADDINGS)}")
    if limit < 1: raise ValueError('--limit must be at least 1')
    tag = f"{Path(model).name}-{lang}-n{limit}-bs{batch_size}"
    work = C.out_dir(Path(out)/'encoder_training'/tag)
    rows, t0 = [], time.time()
    grid = list(itertools.product(lens, heads, pads))
    for L, h, p in tqdm(grid, desc=f'encoder {tag}', disable=quiet):
        cfg = dict(model=model, lang=lang, limit=limit, head=h, max_length=L, padding=p, batch_size=batch_size, seed=seed,
                   out=str(work), threads=threads)
        rows.append((run_isolated if isolate else train_one)(cfg))
    for r in rows:  # speed-up and memory saving of dynamic padding over naive padding, same head and max length
        naive = next((x for x in rows if x['head'] == r['head'] and x['max_length'] == r['max_length'] and x['padding'] == 'max_length'), None)
        r['speedup_vs_max_length'] = r['examples_per_s'] / naive['examples_per_s'] if naive else None
    params = dict(model=model, lang=lang, limit=limit, heads=heads, max_lengths=lens, paddings=pads, batch_size=batch_size, seed=seed, epochs=1)
    res = dict(bench='encoder_training', rows=rows, wall_time_s=time.time() - t0,
               provenance=provenance(params, bench_machine=C.machine(note)))
    write_json(Path(out)/f'encoder_training-{tag}.json', res)
    if not quiet: print(f"{tag} on {C.cpu_model()} ({C.machine()['cores']} cores)\n" + table(rows))
    figure(res, Path(out)/f'encoder_training-{tag}.png')
    return res

def table(rows):
    return C.table(rows, ['head', 'max_length', 'padding', 'n', 'steps', 'examples_per_s', 'speedup_vs_max_length', 'pad_share', 'peak_memory_mb', 'train_memory_mb'])

def figure(res, path):
    "Examples/s and peak memory per head and max length, dynamic vs naive padding."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows, p = res['rows'], res['provenance']['params']
    fig, ax = plt.subplots(1, 2, figsize=(8, 3), dpi=80)
    keys = [(h, L) for L in p['max_lengths'] for h in p['heads']]
    w = 0.8 / max(len(p['paddings']), 1)
    for j, pad in enumerate(p['paddings']):
        get = lambda f: [next((r[f] for r in rows if (r['head'], r['max_length'], r['padding']) == (h, L, pad)), 0) for h, L in keys]
        xs = [i + j * w for i in range(len(keys))]
        ax[0].bar(xs, get('examples_per_s'), w, label=pad); ax[1].bar(xs, get('train_memory_mb'), w, label=pad)
    for a, t in zip(ax, ('train examples / s', 'MB added by training\n(' + rows[0]['memory_kind'] + ')')):
        a.set_xticks([i + w * (len(p['paddings']) - 1) / 2 for i in range(len(keys))], [f'{h}\n{L}' for h, L in keys], fontsize=8)
        a.set_ylabel(t, fontsize=8)
    ax[0].legend(fontsize=8)
    fig.suptitle(f"{p['model']} · {p['limit']} sentences · batch {p['batch_size']} · {res['provenance']['bench_machine']['cores']} CPU cores", fontsize=9)
    fig.tight_layout(); fig.savefig(path); plt.close(fig)
    return path

def main(argv=None):
    ap = C.parser(__doc__, 'en', 'training language')
    ap.add_argument('--model', default='minilm', help="encoder: registry name, hub id, folder, or 'tiny' (random, for tests)")
    ap.add_argument('--limit', type=int, default=64, help='training sentences (one epoch)')
    ap.add_argument('--heads', default='cls,entity-start', help='comma-separated heads')
    ap.add_argument('--max-lengths', default='96,192', help='comma-separated max lengths')
    ap.add_argument('--paddings', default='dynamic,max_length', help='dynamic (+ length-grouped batches), dynamic-random and/or max_length (naive)')
    ap.add_argument('--batch-size', type=int, default=16, help='training batch size')
    ap.add_argument('--threads', type=int, default=None, help='torch threads per setting (default: torch decides)')
    ap.add_argument('--no-isolate', action='store_true', help='train in this process (faster; peak memory is then cumulative)')
    a = ap.parse_args(argv)
    C.run_or_exit(bench_encoder, a.model, a.lang, a.limit, a.heads, a.max_lengths, a.paddings, a.batch_size, out=a.out, note=a.note,
                  threads=a.threads, isolate=not a.no_isolate)

if __name__ == '__main__': main()
