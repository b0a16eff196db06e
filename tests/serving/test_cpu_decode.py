"""Paired decoding on CPU, one row per core (alignui.serving.cpu_decode): same numbers, same text, opt-in switch."""

import threading

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from torch import nn

from alignui.config import AppConfig
from alignui.serving.cpu_decode import BatchParallelLinear, is_batch_parallel, plain_linear, use_batch_parallel
from alignui.serving.generation import PairSettings, stream_pair
from alignui.serving.loading import load_model, load_pretrained


@pytest.fixture
def demo(demo_model_dir):
    model, tok, _ = load_pretrained(demo_model_dir, "cpu", local_only=True)
    return model, tok


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("shape", [(2, 1, 48), (3, 1, 48), (1, 1, 48), (2, 5, 48), (4, 48)])
@pytest.mark.parametrize("bias", [True, False])
def test_same_outputs_and_gradients_as_a_plain_linear(shape, bias):
    torch.manual_seed(0)
    layer = nn.Linear(48, 80, bias=bias)
    x = torch.randn(*shape)
    expected = F.linear(x, layer.weight, layer.bias)
    expected.sum().backward()
    grad = layer.weight.grad.clone()
    layer.weight.grad = None
    layer.__class__ = BatchParallelLinear
    got = layer(x)
    got.sum().backward()
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(layer.weight.grad, grad, atol=1e-4)


def greedy_pair(model, tok) -> torch.Tensor:
    prompts = [[{"role": "user", "content": "Tell me about the sea."}],
               [{"role": "user", "content": "Hi"}]]  # different lengths: the pair is left-padded
    texts = [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    batch = tok(texts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        return model.generate(**batch, max_new_tokens=24, do_sample=False, pad_token_id=tok.pad_token_id)


def test_a_switched_model_writes_the_same_greedy_pair_and_switches_back(demo):
    model, tok = demo
    before = greedy_pair(model, tok)
    use_batch_parallel(model)
    assert all(type(m) is BatchParallelLinear for m in model.modules() if isinstance(m, nn.Linear))
    assert torch.equal(greedy_pair(model, tok), before)
    plain_linear(model)
    assert not is_batch_parallel(model)


def test_lora_wraps_a_switched_model_and_computes_the_same_step(demo):
    model, _ = demo
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    with torch.inference_mode():
        cache = peft_model(input_ids=ids[:, :2], use_cache=True).past_key_values
        plain = peft_model(input_ids=ids[:, 2:], past_key_values=cache, use_cache=True).logits
    use_batch_parallel(peft_model)
    wrapped = [m.base_layer for m in peft_model.modules() if hasattr(m, "lora_A")]
    assert wrapped and all(type(b) is BatchParallelLinear for b in wrapped)
    with torch.inference_mode():
        cache = peft_model(input_ids=ids[:, :2], use_cache=True).past_key_values
        switched = peft_model(input_ids=ids[:, 2:], past_key_values=cache, use_cache=True).logits
    assert torch.allclose(switched, plain, atol=1e-5)


def test_the_served_model_stays_plain_unless_asked(storage):
    handle = load_model(AppConfig(storage=storage, model="demo", offline=True), log=lambda m: None)
    assert not is_batch_parallel(handle.model) and not handle.batch_parallel
    handle.close()


def test_asked_for_it_switches_logs_and_records_it_with_each_generation(storage):
    logs = []
    handle = load_model(AppConfig(storage=storage, model="demo", offline=True, cpu_batch_parallel=True),
                        log=logs.append)
    try:
        assert is_batch_parallel(handle.model) and handle.batch_parallel
        assert any("one response per CPU core" in m for m in logs)
        *_, last = stream_pair(handle, [{"role": "user", "content": "Hi"}], PairSettings.same(max_new_tokens=4))
        assert all(g.params["cpu_batch_parallel"] is True for g in last.result)
    finally:
        handle.close()


# -- the served model's CPU threads (AppConfig.cpu_threads) ------------------------------------------------------
def worker_threads(handle) -> int:
    return handle.submit(torch.get_num_threads).result()


def fresh_thread_threads() -> int:
    """What a thread that starts using torch now gets (it takes the last count set anywhere)."""
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    return seen[0]


def test_the_demo_model_runs_on_one_thread_and_leaves_every_other_thread_alone(storage, threads):
    threads(2)
    logs = []
    handle = load_model(AppConfig(storage=storage, model="demo", offline=True), log=logs.append)
    try:
        assert worker_threads(handle) == 1 and handle.cpu_threads == 1
        assert any("runs on 1 CPU thread (its steps are too small to split; --cpu-threads N to change)" in m
                   for m in logs)
        assert torch.get_num_threads() == 2 and fresh_thread_threads() == 2
        *_, last = stream_pair(handle, [{"role": "user", "content": "Hi"}], PairSettings.same(max_new_tokens=4))
        assert all(g.n_tokens >= 1 for g in last.result) and worker_threads(handle) == 1
    finally:
        handle.close()


def test_cpu_threads_given_are_applied_and_batch_parallel_keeps_torchs_default(storage, threads):
    threads(2)
    logs = []
    handle = load_model(AppConfig(storage=storage, model="demo", offline=True, cpu_threads=3), log=logs.append)
    try:
        assert worker_threads(handle) == 3 and any("runs on 3 CPU threads (--cpu-threads)" in m for m in logs)
    finally:
        handle.close()
    handle = load_model(AppConfig(storage=storage, model="demo", offline=True, cpu_batch_parallel=True),
                        log=lambda m: None)
    try:  # one core per row needs the second thread
        assert worker_threads(handle) == 2 and handle.cpu_threads == 0
    finally:
        handle.close()
