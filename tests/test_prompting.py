"Prompting stage: parsers on adversarial outputs, exemplar selection, label scoring against a plain forward pass, resume after kill, CLI errors."
import os, signal, subprocess, sys, textwrap, time
import pytest
import torch
from relex.core import LABELS, OTHER, Example, read_jsonl, coarse
from relex.data import load_examples
from relex.prompting import (parse_label, parse_task_b, select_exemplars, build_prompt, answer_text, prompt_run, run_name,
                             STRATEGIES, label_scores, _predict, PromptConfig)
from relex.scoring import reference_scores, train_tiny_answerer, TokenTrie, NORMS, _tokens, _candidate_ids
from relex.models import HFBackend, tiny_causal_lm, tiny_tokenizer

torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared CPU

ADVERSARIAL_A = [
    ('Cause-Effect(e1,e2)', 'Cause-Effect(e1,e2)'),
    ('  cause-effect ( E2 , e1 )  ', 'Cause-Effect(e2,e1)'),
    ('```\nComponent_Whole(e1,e2)\n```', 'Component-Whole(e1,e2)'),
    ('The answer is **Entity Destination(e1, e2)** because the ball moves.', 'Entity-Destination(e1,e2)'),
    ('{"relation": "Message-Topic(e2,e1)"}', 'Message-Topic(e2,e1)'),
    ('OTHER', OTHER),
    ('Other.\nUser: Sentence: Cause-Effect(e1,e2)', OTHER),
    ('Cause-Effect', None),                       # no direction
    ('Cause-Effect(e1,e1)', None),                # not a direction
    ('Cause-Effect(e3,e1)', None),
    ('Causes-Effect(e1,e2)', None),               # not a relation name
    ('another', None),                            # 'other' inside a word
    ('', None), ('   ', None), ('\x00\x01(((', None), ('é' * 10000, None),
]


@pytest.mark.parametrize('text,want', ADVERSARIAL_A)
def test_parse_label_adversarial(text, want):
    assert parse_label(text) == want


@pytest.mark.parametrize('bad', [None, 3, b'Other', ['Other'], {'relation': 'Other'}])
def test_parse_label_never_raises_on_non_strings(bad):
    assert parse_label(bad) is None


ADVERSARIAL_B = [
    ('{"e1": "fire", "e2": "smoke", "relation": "Cause-Effect(e1,e2)"}', ('fire', 'smoke', 'Cause-Effect(e1,e2)')),
    ('```json\n{"E1": " foc ", "e2": "fum", "relation": "cause-effect(e1, e2)"}\n```\nExplanation: {x}', ('foc', 'fum', 'Cause-Effect(e1,e2)')),
    ('{"e1": "a", "e2": "b", "relation": "Other"', ('a', 'b', OTHER)),            # cut at the stop string '}'
    ('{"e1": "a", "e2": "b", "relation": "Other', ('a', 'b', OTHER)),
    ('{"e1": "a"} then {"e1": "c", "e2": "d", "relation": "Member-Collection(e2,e1)"}', ('c', 'd', 'Member-Collection(e2,e1)')),
    ('{"e1": "a", "e2": "b", "relation": "Cause-Effect"}', None),
    ('{"e1": ["a"], "e2": "b", "relation": "Other"}', None),
    ("{'e1': 'a', 'e2': 'b', 'relation': 'Other'}", None),                           # not JSON
    ('{"e1": "a", "e2": "b", "relation": "Other"' + '}' * 3, ('a', 'b', OTHER)),
    ('[' * 3000 + '{' * 3000, None), ('', None), ('null', None),
]


@pytest.mark.parametrize('text,want', ADVERSARIAL_B)
def test_parse_task_b_adversarial(text, want):
    got = parse_task_b(text)
    assert (got if got is None else (got['e1'], got['e2'], got['relation'])) == want


def test_answer_text_round_trips_through_the_parsers():
    for e in load_examples('test', 'en')[:50]:
        assert parse_label(answer_text(e, 'A')) == e.label
        assert parse_task_b(answer_text(e, 'B')) == dict(e1=e.e1, e2=e.e2, relation=e.label)


@pytest.fixture(scope='module')
def pools():
    return load_examples('train', 'en'), load_examples('train', 'ro'), load_examples('test', 'en')[:5], load_examples('test', 'ro')[:5]


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_selection_is_deterministic_and_in_the_items_language(pools, strategy):
    en_pool, ro_pool, en_test, ro_test = pools
    for item in en_test[:2] + ro_test[:2]:
        a = select_exemplars(item, en_pool + ro_pool, 3, strategy)
        b = select_exemplars(item, list(reversed(ro_pool + en_pool)), 3, strategy)
        assert [e.id for e in a] == [e.id for e in b]      # pool order does not matter
        assert len(a) == 3 and {e.lang for e in a} == {item.lang} and item.id not in {e.id for e in a}


def test_fixed_selection_is_the_studys(pools):
    en_pool, ro_pool, en_test, ro_test = pools
    five = select_exemplars(en_test[0], en_pool, 5)
    assert [e.id for e in five] == [e.id for e in select_exemplars(en_test[3], en_pool, 5)]   # same for every item
    assert [e.id for e in select_exemplars(en_test[0], en_pool, 3)] == [e.id for e in five[:3]]  # k=1 ⊂ k=3 ⊂ k=5
    assert len({coarse(e.label) for e in five}) == 5 and OTHER not in {e.label for e in five}
    assert [e.id for e in select_exemplars(en_test[0], en_pool, 5, seed=1)] != [e.id for e in five]


def test_knn_prefers_the_nearest_sentence(pools):
    en_pool, _, en_test, _ = pools
    item = en_test[0]
    twin = Example.make(99999, 'en', item.text.replace('.', ', indeed.'), item.label)
    assert select_exemplars(item, en_pool + [twin], 3, 'knn')[-1].id == 99999


def test_cached_scores_match_a_plain_forward_pass():
    be = HFBackend(*tiny_causal_lm(seed=7), name='tiny')
    exs = load_examples('test', 'en')[:3]
    prompts = [build_prompt(e, 'A', [exs[0]]) for e in exs] + ['Short unrelated prompt:']
    cands = LABELS + ['x']
    for p in prompts + prompts[:1]:
        got, want = be.score_candidates(p, cands), reference_scores(be, p, cands)
        assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4


def test_label_scoring_picks_the_gold_label_when_the_prompt_makes_it_obvious():
    gold = ['Product-Producer(e1,e2)', 'Product-Producer(e2,e1)', 'Entity-Origin(e2,e1)', OTHER]
    cue = [f'Sentence: <e1>{a}</e1> <e2>{b}</e2>\nAnswer:' for a, b in ['pq', 'qp', 'mn', 'zz']]
    be = train_tiny_answerer(cue, gold, seed=1)
    picks = [LABELS[max(range(19), key=be.score_candidates(c, LABELS).__getitem__)] for c in cue]
    assert picks == gold
    for norm in NORMS:  # trie scoring, full and constrained, picks the same labels
        assert [LABELS[max(range(19), key=be.score_trie(c, LABELS, norm).__getitem__)] for c in cue] == gold


def _argmax(s): return max(range(len(s)), key=s.__getitem__)


def test_trie_scores_match_plain_forward_passes():
    be = HFBackend(*tiny_causal_lm(seed=7), name='tiny')
    exs = load_examples('test', 'en')[:3]
    prompts = [build_prompt(e, 'A', [exs[0]]) for e in exs] + ['Short unrelated prompt:']
    cands = LABELS + ['x', 'Oth']  # a one-token candidate, a prefix of another
    for p in prompts + prompts[:1]:  # a fresh cache, partly reused ones, the first prompt again
        for norm in NORMS:
            got, want = be.score_trie(p, cands, norm), reference_scores(be, p, cands, norm)
            assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4, norm
        assert be._prefix[1].get_seq_length() == len(be._prefix[0])  # the trie's tokens are cropped off the cache again


def test_constrained_scores_are_a_distribution_over_the_labels():
    be = HFBackend(*tiny_causal_lm(seed=2), name='tiny')
    p = build_prompt(load_examples('test', 'en')[0])
    full, cons = be.score_trie(p, LABELS), be.score_trie(p, LABELS, 'constrained')
    assert abs(sum(torch.tensor(cons).exp().tolist()) - 1) < 1e-4
    assert all(c >= f - 1e-6 for c, f in zip(cons, full))
    assert _predict(be, 'A', 'trie', [p])[0] == [LABELS[_argmax(full)]]
    assert _predict(be, 'A', 'trie-constrained', [p])[0] == [LABELS[_argmax(cons)]]
    assert label_scores(be, p, 'trie-constrained') == cons


def test_trie_with_a_sliding_window_shorter_than_the_prompt():
    from transformers import Gemma3TextConfig, Gemma3ForCausalLM
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                           num_key_value_heads=1, head_dim=16, sliding_window=12, final_logit_softcapping=20.,
                           layer_types=['sliding_attention', 'full_attention', 'sliding_attention'],
                           pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    be = HFBackend(Gemma3ForCausalLM(cfg).eval(), tok, name='tiny-gemma3')
    p = build_prompt(load_examples('test', 'en')[1])
    for norm in NORMS:
        got, want = be.score_trie(p, LABELS, norm), reference_scores(be, p, LABELS, norm)
        assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4, norm


def test_trie_on_gemma_270m():
    "The embedded model (Gemma 3, sliding window 512) on a 3-shot prompt longer than its window."
    be = HFBackend.load('gemma-270m')
    item = load_examples('test', 'en')[0]
    p = build_prompt(item, 'A', select_exemplars(item, load_examples('train', 'en'), 3))
    text = be.render(p)
    ids, cids = _tokens(be, text), _candidate_ids(be, text, LABELS)
    assert len(ids) > be.model.config.sliding_window
    trie = TokenTrie(cids)
    assert len(trie) < sum(map(len, cids)) and len(trie.inputs()) == 115 and len(trie.inputs(True)) < 115
    full, cons, rows = be.score_trie(p, LABELS), be.score_trie(p, LABELS, 'constrained'), be.score_candidates(p, LABELS)
    assert max(abs(a - b) for a, b in zip(full, rows)) < 1e-4
    j = LABELS.index('Cause-Effect(e2,e1)')  # by hand from one plain forward pass: full and renormalised over the allowed tokens
    c = cids[j]
    with torch.no_grad(): logits = be.model(torch.tensor([ids + c])).logits[0, len(ids) - 1:].float()
    lp = torch.log_softmax(logits, -1)
    assert abs(full[j] - sum(lp[k, t].item() for k, t in enumerate(c))) < 1e-4
    allowed = [sorted({o[k] for o in cids if len(o) > k and o[:k] == c[:k]}) for k in range(len(c))]
    assert abs(cons[j] - sum((logits[k, t] - torch.logsumexp(logits[k, allowed[k]], 0)).item() for k, t in enumerate(c))) < 1e-4


class _SlowTiny(HFBackend):
    "A tiny backend that takes its time, so a run can be killed half-way."
    def generate_cached(self, prompts, *a, **kw):
        time.sleep(0.3 * len(prompts)); return super().generate_cached(prompts, *a, **kw)


_CHILD = textwrap.dedent('''
    import sys, time, torch; torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_prompting import _SlowTiny
    from relex.prompting import prompt_run, PromptConfig
    from relex.models import tiny_causal_lm
    cfg = PromptConfig('tiny', 'en', 'A', 'fewshot', 1, limit=12, batch_size=2, out_dir={out!r})
    prompt_run(cfg, _SlowTiny(*tiny_causal_lm(seed=5)))
''')


def test_resume_after_kill(tmp_path):
    out = tmp_path/'killed'
    p = subprocess.Popen([sys.executable, '-c', _CHILD.format(tests=os.path.dirname(__file__), out=str(out))],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pred = out/run_name('tiny', 'en', 'A', 'fewshot', 1, 'fixed', 'generate', 12)/'predictions.jsonl'
    t0 = time.time()
    while time.time() - t0 < 120 and not (pred.exists() and len(read_jsonl(pred)) >= 4): time.sleep(0.1)
    p.send_signal(signal.SIGKILL); p.wait()
    before = read_jsonl(pred)
    done = len(before)
    assert 4 <= done < 12, done
    be = HFBackend(*tiny_causal_lm(seed=5))
    m = prompt_run(PromptConfig('tiny', 'en', 'A', 'fewshot', 1, limit=12, batch_size=2, out_dir=out), be)
    assert m['provenance']['items_this_call'] == 12 - done
    resumed = read_jsonl(pred)
    assert len(resumed) == 12 and len({r['id'] for r in resumed}) == 12 and m['n'] == 12
    kept = {r['id']: r for r in resumed}
    assert all(kept[r['id']] == r for r in before)          # work done before the kill is kept as it was
    # the tiny byte tokenizer's ids can differ between processes, so compare the resumed items with a fresh run here
    prompt_run(PromptConfig('tiny', 'en', 'A', 'fewshot', 1, limit=12, batch_size=2, out_dir=tmp_path/'fresh'), be)
    fresh = {r['id']: r for r in read_jsonl(tmp_path/'fresh'/pred.parent.name/'predictions.jsonl')}
    assert list(fresh) == list(kept)
    assert all(kept[i]['raw'] == fresh[i]['raw'] for i in kept if i not in {r['id'] for r in before})


@pytest.mark.parametrize('args,msg', [
    (['--task', 'B', '--scoring', 'labels'], 'label scoring is for task A'),
    (['--mode', 'fewshot'], 'fewshot needs --k 1 or more'),
    (['--selection', 'random', '--mode', 'fewshot', '--k', '1'], "unknown selection 'random'"),
    (['--task', 'C'], "unknown task 'C'"),
    (['--calibrate'], 'use it with --scoring labels'),
    (['--scoring', 'beam'], "unknown scoring 'beam'"),
    (['--task', 'B', '--scoring', 'trie-constrained'], 'label scoring is for task A'),
    (['--lang', 'en', '--translate', 'same'], 'translate-test reads a non-English test set'),
    (['--lang', 'ro', '--translate', 'no-such-model', '--limit', '1'], "unknown model 'no-such-model'"),
])
def test_cli_bad_arguments_are_one_line(args, msg, tmp_path):
    r = subprocess.run(['relex', 'prompt', *args, '--out_dir', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
