#!/usr/bin/env python
"""Scaling benchmark: how task-A inference time grows with the test-set size and with k (few-shot exemplars).

For each k, the chosen settings of `bench/llm_inference.py` run side by side on the first max(sizes) test items; the
time spent on the first n items is read at every n in `--sizes`, and a line time(n) = fixed + n x per-item is fitted,
so a one-off cost (the exemplar prefix of setting d) shows as `fixed` and the cost of each further item as `per_item_s`.

    python bench/scaling.py                                # gemma-270m, settings c,d, k 0/1/3, sizes 2,4,8
    python bench/scaling.py --settings abcd --ks 0,1,3,5 --sizes 50,100,200,500
    python bench/scaling.py --model tiny --sizes 1,2,3 --ks 0,1,3   # tests
"""
from __future__ import annotations
import time
from pathlib import Path
import _common as C
from relex.core import write_json, provenance
from llm_inference import bench_llm, load_llm, SETTINGS

def fit_line(xs, ys):
    "Least-squares intercept and slope of `ys` against `xs` (slope only, through the origin, for one point)."
    n = len(xs)
    if n == 1: return 0., ys[0] / xs[0]
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope

def bench_scaling(model='gemma-270m', lang='en', sizes='2,4,8', ks='0,1,3', settings='cd', batch_size=8, out='reports/bench',
                  note='', quiet=False) -> dict:
    "Run `settings` for every k in `ks` on max(`sizes`) items; time at each size and the fitted per-item cost."
    sizes, ks = C.ints(sizes), C.ints(ks)
    if len(sizes) < 1 or min(sizes) < 1 or min(ks, default=0) < 0: raise ValueError('sizes must be >= 1 and ks >= 0')
    be, rows, t0, runs = load_llm(model), [], time.time(), {}
    for k in ks:
        r = bench_llm(model, lang, k, max(sizes), settings, batch_size, chunk=min(sizes), out=out, note=note, backend=be,
                      quiet=quiet, sizes=sizes, warmup=k == ks[0])
        runs[k] = r['provenance']['params'] | dict(prompt_tokens=r['prompt_tokens'])
        for row in r['rows']:
            at = {int(n): s for n, s in row['seconds_at'].items()}
            fixed, per = fit_line(list(at), list(at.values()))
            rows += [dict(setting=row['setting'], k=k, n=n, seconds=s, prompt_tokens=r['prompt_tokens']['mean'],
                          fixed_s=fixed, per_item_s=per, official=row['official']) for n, s in sorted(at.items())]
    params = dict(model=model, lang=lang, sizes=sizes, ks=ks, settings=settings, batch_size=batch_size)
    res = dict(bench='scaling', rows=rows, runs=runs, wall_time_s=time.time() - t0, provenance=provenance(params, bench_machine=C.machine(note)))
    tag = f"{Path(model).name}-{lang}-{settings}-k{'_'.join(map(str, ks))}-n{max(sizes)}"
    write_json(Path(out)/f'scaling-{tag}.json', res)
    if not quiet: print(f"{tag} on {C.cpu_model()} ({C.machine()['cores']} cores)\n" + table(rows))
    figure(res, Path(out)/f'scaling-{tag}.png')
    return res

def table(rows): return C.table(rows, ['setting', 'k', 'prompt_tokens', 'n', 'seconds', 'fixed_s', 'per_item_s'])

def figure(res, path):
    "Time against test-set size (largest k) and per-item seconds against k, one line per setting."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    p, rows = res['provenance']['params'], res['rows']
    fig, ax = plt.subplots(1, 2, figsize=(8, 3), dpi=80)
    for s in p['settings']:
        rs = [r for r in rows if r['setting'] == s and r['k'] == max(p['ks'])]
        ax[0].plot([r['n'] for r in rs], [r['seconds'] for r in rs], 'o-', label=f"{s} (k={max(p['ks'])})")
        per = {r['k']: r['per_item_s'] for r in rows if r['setting'] == s}
        ax[1].plot(list(per), list(per.values()), 'o-', label=s)
    ax[0].set_xlabel('test items'); ax[0].set_ylabel('seconds'); ax[0].legend(fontsize=8)
    ax[1].set_xlabel('k (exemplars)'); ax[1].set_ylabel('seconds per extra item'); ax[1].legend(fontsize=8)
    fig.suptitle(f"{p['model']} · task A · {res['provenance']['bench_machine']['cores']} CPU cores", fontsize=9)
    fig.tight_layout(); fig.savefig(path); plt.close(fig)
    return path

def main(argv=None):
    ap = C.parser(__doc__, 'en', 'test language')
    ap.add_argument('--model', default='gemma-270m', help=C.CAUSAL_MODEL_HELP)
    ap.add_argument('--sizes', default='2,4,8', help='comma-separated test-set sizes (>= 3 for a trend)')
    ap.add_argument('--ks', default='0,1,3', help='comma-separated numbers of exemplars')
    ap.add_argument('--settings', default='cd', help='settings of bench/llm_inference.py: ' + '; '.join(f'{k}: {v}' for k, v in SETTINGS.items()))
    ap.add_argument('--batch-size', type=int, default=8, help='batch size of setting b')
    a = ap.parse_args(argv)
    C.run_or_exit(bench_scaling, a.model, a.lang, a.sizes, a.ks, a.settings, a.batch_size, a.out, a.note)

if __name__ == '__main__': main()
