"QLoRA stage: answer-only masking, LoRA targets, checkpoint + resume, adapter and evaluation files, CLI, CUDA 4-bit path."
import json, subprocess
from pathlib import Path
import pytest
import torch
from relex.core import data_hash, read_jsonl
from relex.prompting import build_prompt, answer_text, SHORT_PROMPT_ID
from relex.qlora import (lora_target_modules, lora_model, sft_dataset, AnswerCollator, answer_loss, qlora_run, qlora_data,
                         run_dir, is_quantized, sft_trainer, QLoraConfig)
from relex.models import HFBackend, tiny_causal_lm

TINY = dict(max_length=256, per_device_batch=2, grad_acc=1, lr=1e-3, lora_r=4, lora_alpha=8)


def _tiny(): return tiny_causal_lm(seed=0, initializer_range=0.2)


@pytest.mark.parametrize('chat', [False, True])
def test_masking_is_exactly_the_generation_prompt(chat):
    _, tok = tiny_causal_lm(chat_template=chat)
    exs = qlora_data('A', ('en', 'ro'), limit=3)[0]
    ds = sft_dataset(exs, tok, lambda e: build_prompt(e, 'A'), lambda e: answer_text(e, 'A'), max_length=10**6)
    be = HFBackend(None, tok)
    for e, r in zip(exs, ds):
        prompt = tok(be.render(build_prompt(e, 'A')), add_special_tokens=not chat)['input_ids']
        n = len(prompt)
        assert r['input_ids'][:n] == prompt and r['labels'][:n] == [-100] * n
        assert all(l != -100 for l in r['labels'][n:]) and r['labels'][n:] == r['input_ids'][n:]
        assert tok.decode(r['labels'][n:]) == (f'{e.label}\n<eos>' if chat else f' {e.label}<eos>')


def test_collated_loss_is_the_answer_only_causal_lm_loss():
    m, tok = _tiny()
    exs = qlora_data('A', 'en', limit=3)[0]
    ds = sft_dataset(exs, tok, lambda e: [{'role': 'user', 'content': e.text}], lambda e: e.label, max_length=512)
    b = AnswerCollator(tok.pad_token_id)([ds[i] for i in range(3)])
    with torch.no_grad():
        ref = m(input_ids=b['input_ids'], attention_mask=b['attention_mask'], position_ids=b['position_ids'], labels=b['labels']).loss
        got = answer_loss(m(**{k: v for k, v in b.items() if k != 'labels'}), b['labels'])
    assert torch.allclose(ref, got, atol=1e-5)
    assert b['logits_to_keep'] < b['input_ids'].shape[1]  # the head ran on the answer positions only
    assert int((b['labels'] != -100).sum()) == sum(sum(l != -100 for l in r['labels']) for r in ds)


def test_lora_goes_on_every_attention_and_mlp_projection():
    m, _ = _tiny()
    names = lora_target_modules(m)
    assert names == ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']
    pm = lora_model(m, r=4, alpha=8)
    adapted = [n for n, x in pm.named_modules() if hasattr(x, 'lora_A')]
    assert {n.rsplit('.', 1)[-1] for n in adapted} == set(names) and len(adapted) == 2 * 7 and not is_quantized(m)
    assert all('lora_' in n for n, p in pm.named_parameters() if p.requires_grad)


def test_checkpoint_then_resume_continues_with_optimizer_state(tmp_path):
    kw = dict(task='A', langs=('en',), limit=12, eval_limit=2, save_steps=2, scoring=(), out_dir=tmp_path, **TINY)
    first = qlora_run(QLoraConfig(max_steps=4, **kw), _tiny())
    assert first['global_step'] == 4 and first['optimizer_steps'] == 4
    ck = Path(first['run_dir'])/'checkpoints'
    assert {p.name for p in ck.iterdir()} >= {'checkpoint-4'}
    with pytest.raises(ValueError, match='already holds checkpoints'): qlora_run(QLoraConfig(max_steps=6, **kw), _tiny())
    # a fresh process would start from a fresh model: only the checkpoint carries the state
    second = qlora_run(QLoraConfig(max_steps=6, resume=True, **kw), _tiny())
    assert (second['resumed_from_step'], second['global_step']) == (4, 6)
    assert second['optimizer_steps'] == 6  # Adam's step count came back with the optimizer state (2 without it)
    assert [s for s, _ in second['loss']] == [1, 2, 3, 4, 5, 6]  # the log history continued too
    state = json.loads((ck/'checkpoint-6'/'trainer_state.json').read_text())
    assert state['global_step'] == 6



def test_shared_prefix_training_takes_the_same_steps(tmp_path):
    "Training with the batch's prompt prefix computed once gives the losses and LoRA weights of plain training."
    exs = qlora_data('A', ('en', 'ro'), limit=4)[0]
    runs = {}
    for share in (False, True):
        m, tok = _tiny()
        ds = sft_dataset(exs, tok, lambda e: build_prompt(e, 'A', style='short'), lambda e: answer_text(e, 'A'), max_length=256)
        cfg = QLoraConfig(max_steps=3, per_device_batch=4, grad_acc=2, lr=1e-3, warmup=0, save_steps=100)
        tr = sft_trainer(lora_model(m, r=4, alpha=8, dropout=0.), tok, ds, cfg=cfg, out_dir=tmp_path/str(share),
                         progress=False, share_prefix=share)
        tr.train()
        runs[share] = ([h['loss'] for h in tr.state.log_history if 'loss' in h],
                       {k: v.detach().clone() for k, v in tr.model.state_dict().items() if 'lora_B' in k})
    (plain, wp), (shared, ws) = runs[False], runs[True]
    assert len(plain) == 3 and plain == pytest.approx(shared, abs=1e-4)
    assert all(torch.allclose(wp[k], ws[k], atol=1e-5) for k in wp) and any(float(v.abs().sum()) > 0 for v in ws.values())

def test_run_saves_adapter_metadata_and_evaluation(tmp_path):
    res = qlora_run(QLoraConfig(task='A', langs=('en', 'ro'), limit=4, eval_limit=2, max_steps=2, out_dir=tmp_path, **TINY),
                    _tiny())
    out = Path(res['run_dir'])
    assert out == run_dir(tmp_path, 'custom', 'A', ('en', 'ro'), 4)
    ad = out/'adapter'
    cfg = json.loads((ad/'adapter_config.json').read_text())
    assert cfg['r'] == 4 and cfg['lora_alpha'] == 8 and (ad/'adapter_model.safetensors').exists()
    meta = json.loads((ad/'relex_qlora.json').read_text())
    train = qlora_data('A', ('en', 'ro'), 4, 2)[0]
    assert meta['prompt_id'] == SHORT_PROMPT_ID['A'] and meta['prompt'] == 'short' and meta['train_data_hash'] == data_hash(train) == meta['data_hash']
    assert meta['lora']['target_modules'] == ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']
    assert meta['global_step'] == 2 and meta['params']['lr'] == 1e-3 and meta['quantization'] is None
    assert [s for s, _ in meta['eval_loss']] == [0, 1, 2]  # dev loss before training and at each checkpoint
    runs = sorted(p.parent.name for p in (out/'eval').glob('*/metrics.json'))
    assert len(runs) == 4 and sum('-generate' in r for r in runs) == 2 and sum('-labels' in r for r in runs) == 2
    for p in (out/'eval').glob('*/metrics.json'):
        m = json.loads(p.read_text())
        assert m['n'] == 2 and len(read_jsonl(p.parent/'predictions.jsonl')) == 2 and 'official' in m
    assert set(res['test']) == {'en/generate', 'en/labels', 'ro/generate', 'ro/labels'}
    # the adapter reloads onto a fresh base model, with trained (non-zero) LoRA B matrices
    from peft import PeftModel
    base, tok = _tiny()
    pm = PeftModel.from_pretrained(base, str(ad))
    assert any(float(v.abs().sum()) > 0 for k, v in pm.state_dict().items() if 'lora_B' in k)


def test_task_b_trains_and_is_scored(tmp_path):
    res = qlora_run(QLoraConfig(task='B', langs='en,ro', lang='ro', limit=2, eval_limit=2, max_steps=1, out_dir=tmp_path,
                                **TINY), _tiny())
    assert set(res['test']) == {'ro/generate'} and 'exact' in res['test']['ro/generate']  # B: generation only, RO only
    assert json.loads((Path(res['adapter'])/'relex_qlora.json').read_text())['prompt_id'] == SHORT_PROMPT_ID['B']


def test_cli_errors_are_one_line(tmp_path):
    r = subprocess.run(['relex', 'qlora', '--task', 'C', '--out_dir', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == "relex qlora: error: unknown task 'C'; choose 'A' or 'B'"
    h = subprocess.run(['relex', 'qlora', '--help'], capture_output=True, text=True)
    assert h.returncode == 0 and '--resume' in h.stdout and '--max_steps' in h.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason='the 4-bit NF4 path needs CUDA and bitsandbytes')
def test_cuda_4bit_qlora(tmp_path):
    res = qlora_run(QLoraConfig('gemma-270m', task='A', langs=('en', 'ro'), limit=16, eval_limit=4, max_steps=2, save_steps=1,
                                out_dir=tmp_path, scoring=('generate', 'labels')))
    meta = json.loads((Path(res['adapter'])/'relex_qlora.json').read_text())
    assert meta['quantization'] == 'bnb-nf4-double-quant-bf16' and meta['optimizer'].startswith('paged_adamw')
    assert res['global_step'] == 2 and len(res['test']) == 4
