"Encoder baselines: tiny random encoders trained for a few steps — heads, label mapping, marker positions, resume, errors, CLI."
import json, os, subprocess
import numpy as np
import pytest
import torch
from relex.core import LABELS, LABEL2ID, Example, read_jsonl
from relex.data import load_examples
from relex.metrics import score
from relex.encoders import (MARKERS, MarkerClassifier, encode_marked, encode_bio, decode_spans, BIO, load_encoder,
                            tiny_encoder_dir, train_classifier, classify, encoder_run, mode_splits, EncoderConfig)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return str(tiny_encoder_dir(tmp_path_factory.mktemp('tiny')))


@pytest.fixture(scope='module')
def tok(tiny): return load_encoder(tiny)[0]


def _toy(n_per=4):
    "A learnable toy set: the relation is spelled out by the word between the entities."
    words = {'Cause-Effect(e1,e2)': 'caused', 'Component-Whole(e2,e1)': 'contains', 'Other': 'near'}
    exs, i = [], 1
    for lab, w in words.items():
        for k in range(n_per):
            exs.append(Example.make(i, 'en', f'the <e1>thing{k}</e1> {w} the <e2>item{k}</e2> today .', lab)); i += 1
    return exs


@pytest.mark.parametrize('head', ['entity-start', 'cls'])
def test_both_heads_learn_a_toy_task(tiny, tmp_path, head):
    exs = _toy()
    cfg = EncoderConfig(tiny, head=head, epochs=15, batch_size=4, lr=3e-3)
    clf, tok, info = train_classifier(exs, exs, tmp_path, cfg)
    preds = classify(clf, tok, exs)
    assert clf.classifier.in_features == clf.encoder.config.hidden_size * (2 if head == 'entity-start' else 1)
    assert sum(p == e.label for p, e in zip(preds, exs)) / len(exs) >= 0.9, preds
    assert info['best_epoch'] == max(info['dev_by_epoch'], key=lambda t: t[1])[0]


def test_entity_start_head_reads_only_the_start_markers(tiny):
    tok, enc = load_encoder(tiny)
    clf = MarkerClassifier(enc, 'entity-start').eval()
    h = torch.randn(3, 9, enc.config.hidden_size)
    e1, e2 = torch.tensor([1, 2, 3]), torch.tensor([5, 6, 8])
    pooled = clf.pool(h, e1, e2)
    h2 = h.clone(); h2[:, 0] += 1; h2[:, 4] += 1  # change tokens that are not start markers
    assert torch.equal(clf.pool(h2, e1, e2), pooled)
    assert torch.equal(pooled[:, :h.shape[-1]], h[torch.arange(3), e1])


def test_label_mapping_round_trips_all_19(tok):
    for lab in LABELS:
        f = encode_marked(Example.make(1, 'en', '<e1>a</e1> b <e2>c</e2>', lab), tok)
        assert LABELS[f['labels']] == lab and LABEL2ID[lab] == f['labels']


@pytest.mark.parametrize('text', [
    'the <e1>fire</e1> made <e2>smoke</e2> .',
    'w ' * 400 + 'the <e1>fire</e1> made <e2>smoke</e2> .',                  # entities past max_length
    'the <e1>fire</e1> made <e2>smoke</e2> ' + 'w ' * 400,                   # long tail
    'w ' * 200 + '<e2>smoke</e2> from <e1>fire</e1> ' + 'w ' * 200,           # e2 first, in the middle
])
def test_entity_start_positions_survive_truncation(tok, text):
    f = encode_marked(Example.make(1, 'en', text, 'Other'), tok, max_length=24)
    toks = tok.convert_ids_to_tokens(f['input_ids'])
    assert len(toks) <= 24 and toks[0] == '[CLS]' and toks[-1] == '[SEP]'
    assert toks[f['e1_pos']] == '<e1>' and toks[f['e2_pos']] == '<e2>'
    assert all(m in toks for m in MARKERS)
    assert {'fire', 'smoke'} <= set(toks)


def test_long_test_sentences_are_predicted_not_dropped(tiny, tmp_path):
    exs = _toy(2)
    clf, tok, _ = train_classifier(exs, exs, tmp_path, EncoderConfig(tiny, epochs=1, batch_size=4))
    long = Example.make(99, 'en', 'w ' * 500 + 'the <e1>a</e1> caused the <e2>b</e2>', 'Other')
    alone = classify(clf, tok, [exs[0], exs[1]], max_length=32, batch_size=1)
    preds = classify(clf, tok, [exs[0], long, exs[1]], max_length=32, batch_size=1)
    assert preds[1] in LABEL2ID and [preds[0], preds[2]] == alone  # a label for the long one, in its place


def test_resume_continues_from_the_epoch_checkpoint(tiny, tmp_path):
    exs = _toy(2)
    _, _, first = train_classifier(exs, exs, tmp_path, EncoderConfig(tiny, epochs=1, batch_size=4))
    ckpt = tmp_path/'checkpoints'/'checkpoint-2'
    state = lambda c: {k: v for k, v in json.loads((c/'trainer_state.json').read_text()).items()
                       if k in ('epoch', 'global_step')}
    assert state(ckpt) == dict(epoch=1.0, global_step=2)
    stamp = (ckpt/'model.safetensors').stat().st_mtime_ns
    _, _, info = train_classifier(exs, exs, tmp_path, EncoderConfig(tiny, epochs=2, batch_size=4, resume=True))
    assert [e for e, _ in info['dev_by_epoch']] == [1.0, 2.0]
    assert info['dev_by_epoch'][0] == first['dev_by_epoch'][0]  # epoch 1 came from the checkpoint, not retrained
    assert (ckpt/'model.safetensors').stat().st_mtime_ns == stamp
    assert state(tmp_path/'checkpoints'/'checkpoint-4') == dict(epoch=2.0, global_step=4)
    with pytest.raises(ValueError, match='already holds checkpoints'):
        train_classifier(exs, exs, tmp_path, EncoderConfig(tiny, epochs=1))


def test_encoder_run_writes_a_scored_run(tiny, tmp_path):
    m = encoder_run(EncoderConfig(tiny, epochs=1, batch_size=8, lr=1e-3, limit=24, out_dir=str(tmp_path)))
    recs = read_jsonl(tmp_path/'predictions.jsonl')
    test = {e.id: e.label for e in load_examples('test', 'en')}
    assert len(recs) == m['n'] == 24
    assert all(r['gold'] == test[r['id']] and r['prediction'] in LABEL2ID for r in recs)
    assert score({r['id']: r['gold'] for r in recs}, {r['id']: r['prediction'] for r in recs})['official'] == m['official']
    p = m['provenance']
    assert {k: p['params'][k] for k in ('lang', 'mode', 'head', 'task')} == dict(lang='en', mode='en-only', head='entity-start', task='A')
    assert p['wall_time_s'] > 0 and p['examples_per_s'] > 0 and p['peak_memory_mb'] > 0 and p['n_params'] > 0


def test_zero_shot_trains_on_english_and_tests_on_romanian(tiny, tmp_path):
    m = encoder_run(EncoderConfig(tiny, lang='ro', mode='zero-shot', epochs=1, batch_size=8, limit=16,
                                  out_dir=str(tmp_path)))
    assert m['provenance']['params']['train_langs'] == ['en']
    assert {r['lang'] for r in read_jsonl(tmp_path/'predictions.jsonl')} == {'ro'}


def test_task_b_pipeline(tiny, tmp_path):
    m = encoder_run(EncoderConfig(tiny, task='B', epochs=1, batch_size=8, lr=1e-3, limit=16, out_dir=str(tmp_path)))
    assert m['n'] == 16 and {'exact', 'entities', 'relation', 'entities_strict'} <= set(m['report'])
    r = read_jsonl(tmp_path/'predictions.jsonl')[0]
    assert set(r['prediction']) == {'e1', 'e2', 'relation'} and set(r['gold']) == {'e1', 'e2', 'relation'}


def test_bio_tags_and_decoding(tok):
    ex = Example.make(1, 'en', 'a big <e2>red house</e2> has a <e1>door</e1> .', 'Component-Whole(e1,e2)')
    f = encode_bio(ex, tok)
    assert [BIO[t] for t in f['labels'] if t > 0] == ['B-E2', 'I-E2', 'B-E1']
    logits = np.eye(5)[[max(t, 0) for t in f['labels']]]
    assert decode_spans(logits, f['offsets']) == (ex.e1_span, ex.e2_span)


def test_clear_errors(tiny, tok, tmp_path):
    with pytest.raises(ValueError, match="unknown model 'no-such-encoder'"): EncoderConfig('no-such-encoder')
    bad = Example(7, 'en', '<e1>a</e1> b <e2>c</e2>', 'Cause-Effect(e1, e2)')
    with pytest.raises(ValueError, match="unknown label 'Cause-Effect\\(e1, e2\\)' in training example 7"):
        train_classifier([bad], [bad], tmp_path, EncoderConfig(tiny, epochs=1))
    far = Example.make(8, 'en', '<e1>a</e1> ' + 'b ' * 100 + '<e2>c</e2>', 'Other')
    with pytest.raises(ValueError, match='sentence 8: the entity markers span .* more than max_length=64'):
        encode_marked(far, tok, 64)
    with pytest.raises(ValueError, match="unknown head 'mean'"): EncoderConfig(tiny, head='mean')
    with pytest.raises(ValueError, match='use --mode zero-shot'): mode_splits('en-only', 'ro')


def test_cli_reports_one_line_errors_and_runs(tiny, tmp_path):
    r = subprocess.run(['relex', 'encoder', '--model', 'nope'], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == ["relex encoder: error: unknown model 'nope'; use one of "
                                                                   + r.stderr.split('use one of ')[1].strip()]
    r = subprocess.run(['relex', 'encoder', '--model', tiny, '--epochs', '1', '--limit', '16', '--out_dir', str(tmp_path/'run')],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'run written to' in r.stdout and json.loads((tmp_path/'run'/'metrics.json').read_text())['n'] == 16


def test_cli_resumes_after_a_kill(tiny, tmp_path):
    "SIGKILL once the first epoch checkpoint is on disk, then `--resume`: training ends with every epoch, the first one not redone."
    import signal, time
    run = tmp_path/'run'
    cmd = ['relex', 'encoder', '--model', tiny, '--epochs', '4', '--limit', '400', '--batch_size', '4', '--out_dir', str(run)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpts = run/'classifier'/'checkpoints'
    while p.poll() is None and not any((c/'trainer_state.json').exists() for c in ckpts.glob('checkpoint-*')): time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert not (run/'metrics.json').exists(), 'the run finished before it could be killed'
    first = min(ckpts.glob('checkpoint-*'), key=lambda c: int(c.name.split('-')[1]))
    time.sleep(0.5)  # let a half-written second checkpoint (if any) stay as it was
    stamp = (first/'trainer_state.json').stat().st_mtime_ns
    r = subprocess.run(cmd + ['--resume'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((run/'metrics.json').read_text())
    assert [e for e, _ in m['provenance']['dev_by_epoch']] == [1.0, 2.0, 3.0, 4.0]
    assert m['n'] == 400 and len(read_jsonl(run/'predictions.jsonl')) == 400
    assert not first.exists() or (first/'trainer_state.json').stat().st_mtime_ns == stamp  # kept or rotated out, never rewritten
