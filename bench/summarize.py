#!/usr/bin/env python
"""Markdown tables of bench JSON results (what bench/README.md quotes): `python bench/summarize.py reports/bench/*.json`."""
from __future__ import annotations
import sys, json
from pathlib import Path

COLS = {'llm_inference': ['setting', 'batch_size', 'n', 'examples_per_s', 'speedup_vs_a', 'median_item_s', 'median_speedup_vs_a', 'official', 'accuracy', 'invalid_rate', 'agree_with_a'],
        'encoder_training': ['head', 'max_length', 'padding', 'n', 'examples_per_s', 'speedup_vs_max_length', 'pad_share', 'train_memory_mb'],
        'translation': ['model', 'batch_size', 'n', 'sentences_per_s', 'speedup_vs_smallest_batch', 'accepted'],
        'scaling': ['setting', 'k', 'prompt_tokens', 'n', 'seconds', 'fixed_s', 'per_item_s']}

def fmt(v):
    if v is None: return ''
    if isinstance(v, float): return f'{v:.3g}' if abs(v) < 100 else f'{v:.0f}'
    return str(v)

def markdown(path) -> str:
    "A markdown table of the rows of bench result `path`, with the machine it ran on."
    r = json.loads(Path(path).read_text())
    cols, m = COLS[r['bench']], r['provenance']['bench_machine']
    out = [f"`{Path(path).name}` — {m['cpu_model']}, {m['cores']} cores, torch {r['provenance']['torch']}, "
           f"{r['provenance']['time']}; load avg at the end {m['load_avg_1_5_15']}; {m['note']}", '',
           '| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    out += ['| ' + ' | '.join(fmt(row.get(c)) for c in cols) + ' |' for row in r['rows']]
    return '\n'.join(out)

if __name__ == '__main__':
    for p in sys.argv[1:]: print(markdown(p), end='\n\n')
