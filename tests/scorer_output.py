"Test helper: the numbers the official perl scorer printed, read from its output, for the parity tests."
import re
from relex.core import OTHER

_SECTION = {'(2*9+1)-WAY': 'directional19', 'IGNORING DIRECTIONALITY': 'undirected', 'OFFICIAL': 'official'}
_REL_RE = re.compile(r'^\s*(\S+) :\s+P =.*?=\s*([\d.]+)%\s+R =.*?=\s*([\d.]+)%\s+F1 =\s*([\d.]+)%')
_MACRO_RE = re.compile(r'^P =\s*([\d.]+)%\s+R =\s*([\d.]+)%\s+F1 =\s*([\d.]+)%')
_MICRO_RE = re.compile(r'^P =\s*\d+/\s*\d+ =\s*([\d.]+)%\s+R =\s*\d+/\s*\d+ =\s*([\d.]+)%\s+F1 =\s*([\d.]+)%')


def parse_official_output(text: str) -> dict:
    "Per-label, micro and macro P/R/F1 of each section of the perl scorer's output `text`, and the official score."
    out, sec, prev = {}, None, ''
    for line in text.splitlines():
        if line.startswith('<<<') and 'WAY' in line:
            sec = next(v for k, v in _SECTION.items() if k in line); out[sec] = dict(per_label={})
        elif sec and (m := _REL_RE.match(line)):
            out[sec]['per_label'][m[1].replace('_Other', OTHER)] = dict(zip(('p', 'r', 'f1'),
                                                                             map(float, m.groups()[1:])))
        elif sec and 'Micro' in prev and (m := _MICRO_RE.match(line)):
            out[sec]['micro'] = dict(zip(('p', 'r', 'f1'), map(float, m.groups())))
        elif sec and (m := _MACRO_RE.match(line)) and 'macro' not in out[sec] and 'MACRO' in prev:
            out[sec]['macro'] = dict(zip(('p', 'r', 'f1'), map(float, m.groups())))
        if m := re.search(r'macro-averaged F1 = ([\d.]+)%', line): out['official_score'] = float(m[1])
        prev = line
    return out
