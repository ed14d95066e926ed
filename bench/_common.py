"""Helpers the bench scripts share: machine description, output folder, tables, timers."""
from __future__ import annotations
import os, sys, json, time, platform, argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))  # run from a checkout without installing relex
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')

def cpu_model() -> str:
    "CPU model name from /proc/cpuinfo (or the platform's processor string)."
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or 'unknown'

def machine(note: str = '') -> dict:
    "What the numbers were measured on: cores, CPU model, load, threads, GPU, and a free-text `note`."
    import torch
    load = os.getloadavg() if hasattr(os, 'getloadavg') else None
    return dict(cpu_model=cpu_model(), cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                load_avg_1_5_15=[round(x, 2) for x in load] if load else None,
                gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, note=note)

def out_dir(path) -> Path:
    p = Path(path); p.mkdir(parents=True, exist_ok=True); return p

def table(rows: list, cols: list) -> str:
    "A plain-text table of `rows` (dicts) with columns `cols`."
    fmt = lambda v: f'{v:.3g}' if isinstance(v, float) and abs(v) < 1000 else f'{v:.0f}' if isinstance(v, float) else str(v)
    cells = [[c for c in cols]] + [[fmt(r.get(c, '')) for c in cols] for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    lines = ['  '.join(x.rjust(w[i]) for i, x in enumerate(r)) for r in cells]
    return '\n'.join([lines[0], '  '.join('-' * x for x in w)] + lines[1:])

def ints(s: str) -> list:
    "Comma-separated integers `s` as a list."
    try: return [int(x) for x in str(s).split(',') if x.strip()]
    except ValueError: raise ValueError(f"expected comma-separated integers, got {s!r}") from None

CAUSAL_MODEL_HELP = "causal LM: registry name, folder, or 'tiny' (random, for tests)"

def parser(doc: str, lang: str, lang_help: str) -> argparse.ArgumentParser:
    "The argument parser of a bench script described by `doc`, with the options every script has: --lang, --out, --note."
    ap = argparse.ArgumentParser(description=doc.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--lang', default=lang, help=lang_help)
    ap.add_argument('--out', default='reports/bench', help='output folder')
    ap.add_argument('--note', default='', help='free-text note stored with the machine description (e.g. concurrent jobs)')
    return ap

def run_or_exit(fn, *args, **kw):
    "Call `fn`; bad input (ValueError, FileNotFoundError) ends the script with one `error:` line."
    try: return fn(*args, **kw)
    except (ValueError, FileNotFoundError) as e: raise SystemExit(f'error: {e}')
