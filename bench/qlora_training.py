#!/usr/bin/env python
"""QLoRA training-step benchmark: seconds per example of one LoRA forward + backward on the same training batch, for
the full and the short prompt, with the batch's shared prompt start computed once (what `relex qlora` does without
gradient checkpointing) or per row. Settings are interleaved round by round so load changes hit all of them.

    python bench/qlora_training.py                       # gemma-270m, EN+RO train, batch 16, 3 rounds
    python bench/qlora_training.py --model tiny --batch-size 4 --rounds 2   # a tiny random model (tests)
"""
from __future__ import annotations
import time, random, statistics
from functools import partial
import _common as C
from relex.core import write_json, provenance

SETTINGS = {'full-plain': ('full', False), 'full-shared': ('full', True), 'short-plain': ('short', False),
            'short-shared': ('short', True)}

def _model(name):
    from relex.models import load_causal_lm, tiny_causal_lm
    if name == 'tiny': return tiny_causal_lm(seed=0)
    return load_causal_lm(name)

def run(model='gemma-270m', batch_size=16, rounds=3, settings=tuple(SETTINGS), threads=None, seed=0, root=None):
    "Seconds per example of each of `settings` on one random EN+RO training batch, best-of and median over `rounds`."
    import torch
    from relex.prompting import build_prompt, answer_text
    from relex.qlora import qlora_data, sft_dataset, lora_model, AnswerCollator, answer_loss, with_prefix_cache
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown: raise ValueError(f"unknown setting(s) {', '.join(unknown)}; choose from {', '.join(SETTINGS)}")
    if threads: torch.set_num_threads(threads)
    base, tok = _model(model)
    train = qlora_data('A', ('en', 'ro'), root=root)[0]
    batch = random.Random(seed).sample(train, min(batch_size, len(train)))
    feats = {style: [r for r in sft_dataset(batch, tok, partial(build_prompt, task='A', style=style), partial(answer_text, task='A'), 10**9)]
             for style in {SETTINGS[s][0] for s in settings}}
    pm = lora_model(base, dropout=0.); pm.train()
    times = {s: [] for s in settings}
    for r in range(rounds + 1):  # round 0 warms up
        for s in settings:
            style, share = SETTINGS[s]
            b = AnswerCollator(tok.pad_token_id, share)(feats[style]); labels = b.pop('labels')
            t0 = time.perf_counter()
            answer_loss(pm(**with_prefix_cache(pm, b)), labels).backward(); pm.zero_grad()
            if r: times[s].append((time.perf_counter() - t0) / len(batch))
    ref = statistics.median(times[settings[0]])
    rows = []
    for s in settings:
        style, share = SETTINGS[s]
        f = feats[style]
        rows.append(dict(setting=s, prompt=style, shared_prefix=share, tokens_per_example=sum(len(x['input_ids']) for x in f) / len(f),
                         s_per_example_median=statistics.median(times[s]), s_per_example_best=min(times[s]),
                         speedup_vs_first=ref / statistics.median(times[s]), rounds=rounds))
    return rows

def main():
    ap = C.parser(__doc__, 'en,ro', 'training languages (fixed: EN+RO, as the study)')
    ap.add_argument('--model', default='gemma-270m', help=C.CAUSAL_MODEL_HELP)
    ap.add_argument('--batch-size', type=int, default=16)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--settings', default=','.join(SETTINGS), help='comma-separated: ' + ', '.join(SETTINGS))
    ap.add_argument('--threads', type=int, default=None)
    a = ap.parse_args()
    rows = C.run_or_exit(run, a.model, a.batch_size, a.rounds, tuple(a.settings.split(',')), a.threads)
    print(C.table(rows, ['setting', 'tokens_per_example', 's_per_example_median', 's_per_example_best', 'speedup_vs_first']))
    out = C.out_dir(a.out)/'qlora_training.json'
    write_json(out, dict(rows=rows, machine=C.machine(a.note), provenance=provenance(vars(a))))
    print(f'written to {out}')

if __name__ == '__main__': main()
