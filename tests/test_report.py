"End-to-end checks of the papermill entry notebooks, params grids and the HTML report (rendered in headless Chromium)."
import json, os, re, shutil, subprocess, sys, textwrap
from pathlib import Path
import pytest

papermill = pytest.importorskip('papermill')
import nbformat
from relex.experiments import EXPERIMENT_DEFAULTS, run_experiment, run_grid
from relex.data import RELEASE_LAYOUT, SAMPLE_DIR, SAMPLE_LAYOUT

ROOT = Path(__file__).resolve().parents[1]
ENTRY = ('train', 'evaluate', 'report')
PARAMETERS = dict(train=list(EXPERIMENT_DEFAULTS), evaluate=['pred', 'gold', 'task', 'lang', 'data', 'out_dir'],
                  report=['runs_dir', 'out_dir', 'paper'])

STANDIN = '''
from relex.data import load_examples
from relex.metrics import score, write_run
def run(model='x', lang='en', limit=None, seed=42, out_dir=None, root=None):
    "A stand-in stage: predicts Other for the first `limit` test items."
    test = load_examples('test', lang, root)[:limit]
    recs = [dict(id=e.id, lang=lang, gold=e.label, prediction='Other') for e in test]
    rep = score({e.id: e.label for e in test}, {r['id']: r['prediction'] for r in recs})
    write_run(out_dir, recs, rep, dict(model=model, lang=lang, seed=seed), test, wall_time_s=0.5)
'''


def _errors(nb_path):
    nb = nbformat.read(str(nb_path), as_version=4)
    return [o for c in nb.cells for o in c.get('outputs', []) if o.output_type == 'error']


@pytest.mark.parametrize('name', ENTRY)
def test_entry_notebook_is_a_papermill_template(name):
    nb = nbformat.read(str(ROOT/'nbs'/f'{name}.ipynb'), as_version=4)
    tagged = [c for c in nb.cells if 'parameters' in c.metadata.get('tags', [])]
    assigned = [re.findall(r'^(\w+) *=', c.source, re.M) for c in tagged]
    assert assigned == [PARAMETERS[name]], \
        f"{name}.ipynb needs one cell tagged 'parameters' that assigns {PARAMETERS[name]}"
    assert nb.cells[0].cell_type == 'raw' and 'skip_exec: true' in nb.cells[0].source, 'nbdev_test must skip entry notebooks'
    assert not any(c.get('outputs') for c in nb.cells if c.cell_type == 'code'), f'{name}.ipynb is committed with outputs'
    assert not any(re.search(r'^\s*(def|class) ', c.source, re.M) for c in nb.cells if c.cell_type == 'code'), 'entry notebooks hold no logic'


def test_train_parameters_are_the_experiment_defaults():
    got = papermill.inspect_notebook(str(ROOT/'nbs/train.ipynb'))
    assert set(got) == set(EXPERIMENT_DEFAULTS)
    for k, v in EXPERIMENT_DEFAULTS.items(): assert eval(got[k]['default']) == v, k


def test_bare_train_then_evaluate(tmp_path):
    "`papermill nbs/train.ipynb …` with the defaults (run folder moved to tmp) writes metrics, an HTML report and the notebook."
    out, run = tmp_path/'train.ipynb', tmp_path/'run'
    r = subprocess.run([sys.executable, '-m', 'papermill', str(ROOT/'nbs/train.ipynb'), str(out), '-p', 'output_dir', str(run),
                        '--no-progress-bar'], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not _errors(out)
    m = json.loads((run/'metrics.json').read_text())
    assert m['experiment']['name'] == 'majority-en-A-baseline' and m['experiment']['mode'] == 'baseline'
    assert m['n'] > 0 and 0 <= m['official'] <= 100 and m['provenance']['data_hash']
    html = (run/'report.html').read_text()
    assert html.count('<table') >= 2 and 'src="data:image/png;base64,' in html
    ev = tmp_path/'evaluate.ipynb'
    papermill.execute_notebook(str(ROOT/'nbs/evaluate.ipynb'), str(ev), cwd=str(ROOT), progress_bar=False,
                               parameters=dict(pred=str(run/'predictions.jsonl'), out_dir=str(tmp_path/'eval')))
    assert json.loads((tmp_path/'eval/metrics.json').read_text())['official'] == pytest.approx(m['official'])


def test_gpu_setting_fails_clearly(monkeypatch, tmp_path):
    "`-p model gemma -p lang ro` is the GPU-VM setting: offline without its weights it stops with one clear message."
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    msg = r"^model 'gemma' \(google/gemma-4-31b-it\) is not in the local Hugging Face cache"
    with pytest.raises(FileNotFoundError, match=msg):
        run_experiment(model='gemma', lang='ro', output_dir=tmp_path)


PAPER = """## Task A — relation classification
| system | lang | metric kind | macro-F1 | accuracy |
|---|---|---|---|---|
| minilm | en | coarse | 55.55 | 44.44 |
"""


def _release_from_sample(d):
    "The shipped sample laid out as the official release in `d`/data, with a published-results file in `d`/docs."
    for k in ('train', 'test'):
        (d/'data'/RELEASE_LAYOUT[k]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE_DIR/SAMPLE_LAYOUT[k], d/'data'/RELEASE_LAYOUT[k])
        src, dst = (lay['translation'].format(split=k, lang='ro') for lay in (SAMPLE_LAYOUT, RELEASE_LAYOUT))
        (d/'data'/dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE_DIR/src, d/'data'/dst)
    (d/'docs').mkdir()
    (d/'docs/paper_results.md').write_text(PAPER)
    return d/'data'


@pytest.fixture(scope='module')
def grid(tmp_path_factory):
    """A grid of three offline experiments (two baselines and a stand-in stage) and one failing run, run twice, on the
    shipped sample laid out as the release, with a published-results file beside it (so the report always compares)."""
    d = tmp_path_factory.mktemp('grid')
    (d/'standin_stage.py').write_text(STANDIN)
    (d/'grid.yaml').write_text(textwrap.dedent('''
        runs:
          - {model: majority, lang: en}
          - {model: majority, lang: ro}
          - {model: minilm, lang: en, limit: 12, extra: {stage: 'standin_stage:run'}}
          - {model: gemma-270m, lang: ro, name: broken, extra: {stage: 'relex.no_such_stage:run'}}
    '''))
    with pytest.MonkeyPatch.context() as mp:  # the papermill kernels inherit both
        mp.setenv('PYTHONPATH', os.pathsep.join(filter(None, [str(d), os.environ.get('PYTHONPATH')])))
        mp.setenv('RELEX_DATA', str(_release_from_sample(d)))
        first = run_grid(d/'grid.yaml', d/'reports', d/'runs', log=lambda s: None)
        second = run_grid(d/'grid.yaml', d/'reports', d/'runs', log=lambda s: None)
    return d, first, second


def test_grid_runs_keeps_failures_and_resumes(grid):
    d, first, second = grid
    st = {s['name']: s for s in first}
    assert [st[n]['status'] for n in ('majority-en-A-baseline', 'majority-ro-A-baseline', 'minilm-en-A-encoder-n12')] == ['done'] * 3
    assert st['broken']['status'] == 'failed' and 'stage not available' in st['broken']['error']
    assert (d/'reports/broken.ipynb').exists() and _errors(d/'reports/broken.ipynb'), 'a failed run keeps its error notebook'
    assert st['report']['status'] == 'done'
    for n, lang, size in (('majority-en-A-baseline', 'en', 38), ('majority-ro-A-baseline', 'ro', 38),
                          ('minilm-en-A-encoder-n12', 'en', 12)):
        m = json.loads((d/'runs'/n/'metrics.json').read_text())  # the sample's 38 test sentences, or the stage's limit
        assert (m['experiment']['name'], m['provenance']['params']['lang'], m['n']) == (n, lang, size)
        assert not _errors(d/'reports'/f'{n}.ipynb')
        assert f"official score (9+1-way, directionality taken into account, macro-F1) = {m['official']:.2f}%" in \
            (d/'reports'/f'{n}.html').read_text()
    again = {s['name']: s['status'] for s in second}
    assert again == {'majority-en-A-baseline': 'skipped', 'majority-ro-A-baseline': 'skipped', 'minilm-en-A-encoder-n12': 'skipped',
                     'broken': 'failed', 'report': 'done'}


def test_grid_report_compares_with_the_study(grid):
    d, *_ = grid
    html = (d/'reports/report.html').read_text()
    for n in ('majority-en-A-baseline', 'majority-ro-A-baseline', 'minilm-en-A-encoder-n12'): assert n in html
    assert f"Published numbers from <code>{(d/'docs/paper_results.md').resolve()}</code>" in html
    assert 'No published results file found' not in html
    m = json.loads((d/'runs/minilm-en-A-encoder-n12/metrics.json').read_text())
    rows = [re.findall(r'<td>(.*?)</td>', r) for r in re.findall(r'<tr>(.*?)</tr>', html, re.S)]
    ours = [r for r in rows if r[:4] == ['A', 'minilm', 'encoder', 'en']]  # task, model, setting, lang
    close = lambda cell, v: re.fullmatch(r'-?\d+\.\d\d', cell) is not None and abs(float(cell) - v) <= 0.005
    triple = lambda r, i: close(r[i], m['coarse']) and r[i + 1] == '55.55' and close(r[i + 2], m['coarse'] - 55.55)
    assert len(ours) == 1 and any(triple(ours[0], i) for i in range(len(ours[0]) - 2)), ours  # ours, the paper's, Δ


def test_grid_only_report_reads_committed_results(grid):
    """`only_report` runs nothing and builds the report from a folder of finished runs (a copy found twice counts once)."""
    d, *_ = grid
    shutil.copytree(d/'runs/majority-en-A-baseline', d/'committed/baseline/majority-en-A-baseline')
    st = run_grid(d/'grid.yaml', d/'rep_only', d/'no_runs', log=lambda s: None, only_report=True,
                  results=[d/'committed', d/'runs'])
    assert {s['name']: s['status'] for s in st} == {'majority-en-A-baseline': 'not run', 'majority-ro-A-baseline': 'not run',
                                                   'minilm-en-A-encoder-n12': 'not run', 'broken': 'not run',
                                                   'report': 'done'}
    assert not (d/'rep_only/majority-en-A-baseline.ipynb').exists() and not (d/'no_runs').exists()
    html = (d/'rep_only/report.html').read_text()
    rows = [re.findall(r'<td>(.*?)</td>', r) for r in re.findall(r'<tr>(.*?)</tr>', html, re.S)]
    assert sum(r[:1] == ['majority-en-A-baseline'] for r in rows) == 1, 'the committed copy is the same run'
    assert 'minilm-en-A-encoder-n12' in html

def _chromium():
    return next((shutil.which(b) for b in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(b)), None)


@pytest.mark.skipif(_chromium() is None, reason='headless Chromium is not installed (Debian: apt-get install -y chromium)')
def test_html_report_renders_in_chromium(grid, tmp_path):
    d, *_ = grid
    url = (d/'reports/report.html').resolve().as_uri()
    flags = [_chromium(), '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync', f'--user-data-dir={tmp_path/"profile"}',
             '--window-size=1400,2400']
    dom = subprocess.run(flags + ['--dump-dom', url], capture_output=True, text=True, timeout=120).stdout
    assert len(re.findall(r'<table', dom)) >= 3, 'the runs table and the comparison tables'
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom)) >= 4, 'figures embedded in the page'
    assert 'Comparison with the study' in dom and 'majority-ro-A-baseline' in dom
    png = tmp_path/'report.png'
    subprocess.run(flags + [f'--screenshot={png}', url], capture_output=True, timeout=120)
    assert png.exists() and png.stat().st_size > 20_000
    from PIL import Image
    im = Image.open(png).convert('RGB')
    assert im.size == (1400, 2400)
    assert len(im.getcolors(maxcolors=1 << 20) or []) > 50, 'the screenshot is blank'
