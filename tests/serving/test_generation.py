import pytest

from alignui.errors import UserError
from alignui.serving.generation import PairSettings, SamplingSettings, encode_prompt, generate_pair, stream_pair

MSGS = [{"role": "user", "content": "Tell me about a whale."}]


def test_a_sampled_pair_has_two_different_responses(ctx):
    different = 0
    for seed in range(5):
        a, b = generate_pair(ctx.model, MSGS, PairSettings.same(seed=seed, temperature=1.0))
        assert a.text.strip() and b.text.strip()
        different += a.text != b.text
    assert different >= 4


def test_streaming_yields_partial_text_for_both_sides_before_the_end(ctx):
    updates = list(stream_pair(ctx.model, MSGS, PairSettings.same(seed=1, max_new_tokens=48)))
    final = updates[-1]
    assert final.result is not None and final.done == (True, True)
    partial_a = [u for u in updates[:-1] if u.text_a and u.text_a != final.text_a]
    partial_b = [u for u in updates[:-1] if u.text_b and u.text_b != final.text_b]
    assert partial_a and partial_b, "both sides must show text before they are finished"
    both_growing = [u for u in updates[:-1] if not any(u.done) and u.text_a and u.text_b]
    assert both_growing, "the two sides must stream at the same time, not one after the other"
    for earlier, later in zip(updates, updates[1:]):  # text only grows
        assert later.text_a.startswith(earlier.text_a) and later.text_b.startswith(earlier.text_b)


def test_settings_seed_tokens_and_latency_are_recorded_per_side(ctx):
    settings = PairSettings(a=SamplingSettings(temperature=0.0, max_new_tokens=40),
                            b=SamplingSettings(temperature=1.3, top_p=0.9, max_new_tokens=6), seed=7)
    a, b = generate_pair(ctx.model, MSGS, settings)
    assert a.params["temperature"] == 0.0 and b.params["temperature"] == 1.3 and b.params["top_p"] == 0.9
    assert a.params["seed"] == b.params["seed"] == 7 and (a.params["side"], b.params["side"]) == ("a", "b")
    assert b.n_tokens <= 6 and 0 < a.n_tokens <= 40
    assert a.latency_ms > 0 and b.latency_ms > 0
    assert a.model_ref == "demo"


def test_greedy_side_ignores_the_seed_and_sampled_side_follows_it(ctx):
    s = lambda seed: PairSettings(a=SamplingSettings(temperature=0), b=SamplingSettings(temperature=1.0), seed=seed)
    a1, b1 = generate_pair(ctx.model, MSGS, s(1))
    a2, b2 = generate_pair(ctx.model, MSGS, s(2))
    a1_again, b1_again = generate_pair(ctx.model, MSGS, s(1))
    assert a1.text == a2.text == a1_again.text
    assert b1.text == b1_again.text


def test_prompt_over_the_context_is_refused_or_truncated_from_the_start(ctx):
    long = [{"role": "user", "content": "word " * 2000 + "the end"}]
    with pytest.raises(UserError, match="only .* fit .*allow truncation"):
        encode_prompt(ctx.model, long, 64)
    ids = encode_prompt(ctx.model, long, 64, truncate=True)
    assert len(ids) == ctx.model.context_length - 64
    assert ctx.model.tokenizer.decode(ids).endswith("<|assistant|>\n")  # the end of the prompt is kept
    a, b = generate_pair(ctx.model, long, PairSettings.same(max_new_tokens=8), truncate=True)
    assert a.params["prompt_tokens"] == ctx.model.context_length - 8


@pytest.mark.parametrize("kwargs, fragment", [
    ({"temperature": -1}, "temperature"), ({"top_p": 0}, "top_p"), ({"max_new_tokens": 0}, "max new tokens")])
def test_bad_sampling_settings_are_refused(kwargs, fragment):
    with pytest.raises(UserError, match=fragment):
        SamplingSettings(**kwargs)
