"""The arena core on the real demo model with real PEFT LoRA adapters and a real DuckDB file.

`make_adapter` is shared with the other arena tests (API and browser).
"""

import random
from pathlib import Path

import pytest

from alignui.serving.adapters import BASE, adapter_server
from alignui.annotation.pairs import user_turn
from alignui.arena.battle import (ArenaSettings, BattleProgress, assign_sides, choose_pair, draw_heldout_prompt,
                           stream_battle, vote)
from alignui.errors import ConflictError, NotFoundError, UserError
from alignui.serving.generation import PairSettings, generate_pair

FAST = ArenaSettings(sampling=PairSettings.same(max_new_tokens=12))
GREEDY = PairSettings.same(temperature=0.0, max_new_tokens=12)


def make_adapter(store, storage: Path, run_id: str, *, seed: int = 0, method: str = "dpo") -> Path:
    """A real LoRA adapter on the demo model, registered as a finished run (random B: outputs differ)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    from alignui.config import AppConfig

    base = AutoModelForCausalLM.from_pretrained(AppConfig().demo_model_dir)  # the per-machine cache (conftest)
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=2, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    path = storage / "runs" / run_id / "adapter"
    peft.save_pretrained(path)
    store.upsert_run(run_id, method=method, status="done", adapter_path=str(path), base_model="demo")
    return path


def battle(ctx, prompt="Tell me about rivers.", settings=FAST, **kwargs) -> BattleProgress:
    last = None
    for last in stream_battle(ctx.store, adapter_server(ctx.model), user_turn(prompt), ctx.rng, settings=settings,
                              **kwargs):
        pass
    return last


def test_without_an_adapter_the_arena_says_what_to_do(ctx):
    with pytest.raises(UserError, match="needs at least two models: train an adapter first"):
        battle(ctx)


def test_mixed_batch_serves_base_and_adapter_in_one_call_on_the_one_base_model(ctx, storage):
    messages = user_turn("What is the sun?")
    before = generate_pair(ctx.model, messages, GREEDY)
    make_adapter(ctx.store, storage, "dpo-one")
    server = adapter_server(ctx.model)
    assert server is adapter_server(ctx.model)  # one server per handle
    run = ctx.store.get_run("dpo-one")
    last = list(server.stream_two(messages, None, run, GREEDY))[-1]
    base_side, adapter_side = last.result
    assert (base_side.model_ref, adapter_side.model_ref) == (BASE, "dpo-one")
    assert base_side.text == before[0].text  # the base row is the base model
    assert adapter_side.text != base_side.text  # the adapter row is not
    assert server.peft_model.get_base_model() is ctx.model.model  # adapters live in the one base model
    # the adapter row equals what the adapter alone produces, and the Annotate path still gets the base
    alone = list(server.stream_two(messages, run, run, GREEDY))[-1].result
    assert alone[0].text == alone[1].text == adapter_side.text
    assert [g.text for g in generate_pair(ctx.model, messages, GREEDY)] == [g.text for g in before]


def test_pairing_defaults_to_base_vs_newest_and_can_pick_the_least_played_pair(ctx, storage):
    make_adapter(ctx.store, storage, "dpo-old", seed=1)
    make_adapter(ctx.store, storage, "dpo-new", seed=2)
    models = ["base", "dpo-new", "dpo-old"]
    rng = random.Random(0)
    assert choose_pair(ctx.store, models, "base_vs_newest", rng) == ("base", "dpo-new")
    for _ in range(2):
        battle(ctx)  # base vs dpo-new twice
    assert set(choose_pair(ctx.store, models, "fewest_battles", rng)) != {"base", "dpo-new"}
    assert set(choose_pair(ctx.store, models, "most_uncertain", rng)) != {"base", "dpo-new"}  # unplayed: widest


def test_each_battle_is_seated_by_the_coin_it_is_handed(ctx, storage):
    """Balance over many battles and unpredictability: tests/arena/test_seating.py."""
    make_adapter(ctx.store, storage, "dpo-one")
    for _ in range(2):
        saved = ctx.store.get_comparison(battle(ctx).battle_id)
        assert {saved.model_a, saved.model_b} == {"base", "dpo-one"}
    assert assign_sides(ctx.store, ("base", "dpo-one"), random.Random(3)) == \
        assign_sides(ctx.store, ("base", "dpo-one"), random.Random(3))


def test_a_battle_is_blind_until_the_one_vote_reveals_it(ctx, storage):
    make_adapter(ctx.store, storage, "dpo-secret")
    steps = list(stream_battle(ctx.store, adapter_server(ctx.model), user_turn("Name a fruit."), ctx.rng,
                               settings=FAST))
    assert len(steps) > 2 and all(set(vars(s)) == {"text_a", "text_b", "battle_id", "question"} for s in steps)
    assert all(s.question == "Name a fruit." for s in steps)  # the prompt being judged, never a model name
    battle_id = steps[-1].battle_id
    assert battle_id and "secret" not in battle_id and "base" not in battle_id
    saved = ctx.store.get_comparison(battle_id)
    assert saved.kind == "arena" and saved.verdict is None and {saved.model_a, saved.model_b} == {"base",
                                                                                                 "dpo-secret"}
    reveal = vote(ctx.store, battle_id, "b", annotator="ann")
    assert reveal.text == f"{saved.model_a} vs {saved.model_b}" and "Saved" in reveal.markdown
    with pytest.raises(ConflictError, match="already decided"):
        vote(ctx.store, battle_id, "a")
    assert ctx.store.get_comparison(battle_id).verdict == "b"
    with pytest.raises(UserError, match="verdict must be one of a, b, tie, both_bad"):
        vote(ctx.store, battle_id, "skip")
    battles = ctx.store.arena_battles()
    assert len(battles) == 1 and battles["winner"][0] == "model_b" and battles["length_a"][0] > 0


def test_votes_refuse_unknown_ids_and_annotation_pairs(ctx, storage):
    from alignui.db import NewGeneration

    pair = ctx.store.save_pair(user_turn("hi"), NewGeneration("base", "x"), NewGeneration("base", "y"))
    for bad in ("nope", pair.id, ""):
        with pytest.raises(NotFoundError, match="no arena battle with id"):
            vote(ctx.store, bad, "a")
    assert ctx.store.get_comparison(pair.id).verdict is None


def test_held_out_prompts_feed_the_arena(ctx, storage):
    with pytest.raises(UserError, match="no held-out prompts yet.*Data tab: Import, Split field"):  # not only the CLI
        draw_heldout_prompt(ctx.store, ctx.rng)
    pid = ctx.store.add_prompt(user_turn("A held-out question?"), split="heldout")
    ctx.store.add_prompt(user_turn("A training question?"), split="train")
    prompt = draw_heldout_prompt(ctx.store, random.Random(0))
    assert prompt.id == pid
    make_adapter(ctx.store, storage, "dpo-one")
    b = battle(ctx, prompt.last_user_text, prompt_id=prompt.id)
    assert ctx.store.get_comparison(b.battle_id).prompt_id == pid


def test_a_missing_or_foreign_adapter_is_a_clear_error(ctx, storage):
    ctx.store.upsert_run("dpo-gone", method="dpo", status="done", adapter_path=str(storage / "nowhere"))
    with pytest.raises(UserError, match="adapter of run dpo-gone is missing"):
        battle(ctx)
    bad = storage / "runs" / "dpo-bad" / "adapter"
    make_adapter(ctx.store, storage, "dpo-bad")
    cfg = (bad / "adapter_config.json").read_text().replace('"q_proj"', '"no_such_proj"').replace('"v_proj"',
                                                                                                  '"nor_this"')
    (bad / "adapter_config.json").write_text(cfg)
    with pytest.raises(UserError, match="does not fit the loaded base model"):
        battle(ctx)


@pytest.mark.gpu
def test_mixed_batch_battles_run_on_cuda_in_the_gpu_dtype(storage):
    """On CUDA the base loads in bf16/fp16 while saved LoRA weights are fp32: a battle must still run."""
    from alignui.config import AppConfig
    from alignui.context import AppContext

    ctx = AppContext.open(AppConfig(storage=storage, model="demo", device="cuda", offline=True), seed=0,
                          log=lambda msg: None)
    try:
        make_adapter(ctx.store, storage, "dpo-gpu")
        last = battle(ctx)
        saved = ctx.store.get_comparison(last.battle_id)
        assert {saved.model_a, saved.model_b} == {"base", "dpo-gpu"} and saved.text_a is not None
        assert str(ctx.model.dtype) in ("torch.bfloat16", "torch.float16")
    finally:
        ctx.close()


def test_an_adapter_that_cannot_be_served_is_left_out_of_the_arena(ctx, storage):
    make_adapter(ctx.store, storage, "dpo-good")
    make_adapter(ctx.store, storage, "dpo-broken")  # newest: the default pairing would pick it
    cfg = storage / "runs" / "dpo-broken" / "adapter" / "adapter_config.json"
    cfg.write_text(cfg.read_text().replace('"q_proj"', '"no_such_proj"').replace('"v_proj"', '"nor_this"'))
    b = battle(ctx)
    saved = ctx.store.get_comparison(b.battle_id)
    assert {saved.model_a, saved.model_b} == {"base", "dpo-good"}
    assert "dpo-broken" in adapter_server(ctx.model).failed
