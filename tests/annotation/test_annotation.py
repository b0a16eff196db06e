"""The annotation loop on the real demo model and a real DuckDB file: generate, vote, edit, undo, continue."""

import pytest

from alignui.annotation import workspace as flow
from alignui.annotation.prefs import AnnotationPrefs, browser_secret
from alignui.db import Store
from alignui.errors import ConflictError, UserError

FAST = AnnotationPrefs(max_new_tokens=24)


def last(views):
    views = list(views)
    assert views, "a step must show something"
    return views[-1]


def pool(ctx, *texts):
    ctx.store.add_prompts_bulk([[{"role": "user", "content": t}] for t in texts])


def ready(ctx, ws=None, prefs=FAST, annotator="ann"):
    view = last(flow.next_prompt(ctx.store, ctx.model, ws or flow.Workspace(), prefs, ctx.rng, annotator=annotator))
    assert view.ws.pair_id and flow.READY in view.status, view.status
    return view


def test_a_drawn_prompt_streams_both_sides_then_saves_a_pending_pair_linked_to_the_pool(ctx):
    pool(ctx, "Tell me about the ocean.")
    views = list(flow.next_prompt(ctx.store, ctx.model, flow.Workspace(), FAST, ctx.rng, annotator="ann"))
    assert views[0].status == "Generating…" and views[0].prompt == "Tell me about the ocean."
    assert any(v.text_a and v.text_b and not v.ws.pair_id for v in views[1:-1]), "both sides stream before the end"
    done = views[-1]
    pair = ctx.store.get_comparison(done.ws.pair_id)
    assert (pair.verdict, pair.annotator, pair.text_a, pair.text_b) == (None, "ann", done.text_a, done.text_b)
    assert pair.prompt_id == done.ws.pool_prompt  # no system prompt: the pool prompt itself is the stored prompt
    assert ctx.store.comparison_meta(pair.id) == {"pool_prompt": pair.prompt_id}


def test_vote_saves_with_duration_and_the_next_pool_prompt_is_ready_without_a_click(ctx):
    pool(ctx, "What is a cat?", "Name a fruit.")
    first = ready(ctx)
    voted = flow.vote(ctx.store, first.ws, "b", annotator="ann")
    assert voted.status.startswith("Saved: B is better for pair") and voted.ws.decided == (first.ws.pair_id,)
    saved = ctx.store.get_comparison(first.ws.pair_id)
    assert saved.verdict == "b" and saved.duration_ms >= 0
    nxt = last(flow.after_vote(ctx.store, ctx.model, voted.ws, FAST, ctx.rng, annotator="ann"))
    assert nxt.ws.pair_id and nxt.ws.pool_prompt != first.ws.pool_prompt
    assert nxt.status.startswith("Saved: B is better") and flow.READY in nxt.status
    with pytest.raises(ConflictError, match="already decided"):
        flow.vote(ctx.store, first.ws, "a", annotator="ann")
    assert ctx.store.get_comparison(first.ws.pair_id).verdict == "b"


def test_next_never_draws_the_prompt_whose_pair_is_on_screen_typed_or_drawn(ctx):
    """N skips the pair on screen: with every other pool prompt voted on, the pending one (0 votes) sorts first,
    and N used to hand the same prompt straight back when it had been typed (a typed prompt joins the pool)."""
    pool(ctx, "Voted one.")
    flow.vote(ctx.store, ready(ctx, annotator="bob").ws, "a", annotator="bob")  # the pool's only prompt has a vote
    typed = last(flow.generate(ctx.store, ctx.model, flow.Workspace(), "A typed question?", FAST, ctx.rng,
                               annotator="ann"))
    assert typed.ws.pair_id and not typed.ws.pool_prompt
    nxt = last(flow.next_prompt(ctx.store, ctx.model, typed.ws, FAST, ctx.rng, annotator="ann"))
    assert nxt.ws.pair_id and nxt.prompt == "Voted one."  # not "A typed question?" again
    again = last(flow.next_prompt(ctx.store, ctx.model, nxt.ws, FAST, ctx.rng, annotator="ann"))
    assert again.prompt != "Voted one."  # the drawn one is not handed back either


def test_next_pressed_while_a_drawn_prompts_pair_is_still_written_draws_another(ctx):
    """While the pair of a drawn prompt streams there is no pair id yet; N used to hand the same pool prompt back
    (still unvoted, it sorts first)."""
    pool(ctx, "First drawn.", "The other one.")
    streaming = next(v for v in flow.next_prompt(ctx.store, ctx.model, flow.Workspace(), FAST, ctx.rng,
                                                 annotator="ann") if v.ws.streaming)
    assert streaming.ws.pool_prompt and not streaming.ws.pair_id
    drawn = streaming.prompt
    for _ in range(5):  # the draw is random among the unvoted: a few tries would have hit it
        nxt = next(v for v in flow.next_prompt(ctx.store, ctx.model, streaming.ws, FAST, ctx.rng, annotator="ann")
                   if v.ws.streaming)
        assert nxt.prompt != drawn


def test_without_auto_advance_or_prompts_the_prompt_box_waits(ctx):
    pool(ctx, "Only one.")
    voted = flow.vote(ctx.store, ready(ctx).ws, "tie", annotator="ann")
    manual = last(flow.after_vote(ctx.store, ctx.model, voted.ws, AnnotationPrefs(auto_next=False), ctx.rng,
                                  annotator="ann"))
    assert manual.waiting_for_prompt and manual.prompt == "" and not manual.ws.pair_id
    empty = last(flow.after_vote(ctx.store, ctx.model, voted.ws, FAST, ctx.rng, annotator="ann"))
    assert empty.waiting_for_prompt and "No prompts left in the pool" in empty.status


def test_a_prompt_typed_before_the_vote_stays_in_the_box_and_nothing_is_drawn_over_it(ctx):
    """Text in the prompt box that is not the voted pair's prompt is the annotator's next prompt: after the vote
    it is left in the box (an empty pool used to clear it, a pool draw replaced it), nothing is drawn or generated
    over it, and a parked pair waits for the vote after."""
    pool(ctx, "Pool prompt one.", "Pool prompt two.")
    on_screen = ready(ctx)
    voted = flow.vote(ctx.store, on_screen.ws, "a", annotator="ann")
    pairs = ctx.store.query("SELECT count(*) FROM comparisons")[0][0]
    for typed in ("My own next question", "  My own next question  "):
        kept = list(flow.after_vote(ctx.store, ctx.model, voted.ws, FAST, ctx.rng, annotator="ann", typed=typed))
        assert len(kept) == 1 and kept[0].prompt == typed.strip() and kept[0].waiting_for_prompt
        assert "Press Enter to generate the prompt you typed" in kept[0].status and not kept[0].ws.pair_id
    assert ctx.store.query("SELECT count(*) FROM comparisons")[0][0] == pairs  # nothing generated over it
    for same in ("", on_screen.prompt, f"{on_screen.prompt} "):  # the box as the pair left it: drawn over, as before
        nxt = last(flow.after_vote(ctx.store, ctx.model, voted.ws, FAST, ctx.rng, annotator="ann", typed=same))
        assert nxt.ws.pair_id and nxt.prompt.startswith("Pool prompt")


def test_votes_that_cannot_be_saved_change_nothing(ctx):
    with pytest.raises(UserError, match="no pair to vote on yet"):
        flow.vote(ctx.store, flow.Workspace(), "a", annotator="ann")
    pool(ctx, "Why is the sky blue?")
    view = ready(ctx)
    with pytest.raises(UserError, match="to continue the conversation pick A or B"):
        flow.vote(ctx.store, view.ws, "tie", annotator="ann", continue_after=True)
    with pytest.raises(UserError, match="the prompt is empty"):
        last(flow.generate(ctx.store, ctx.model, flow.Workspace(), "   ", FAST, ctx.rng, annotator="ann"))
    assert ctx.store.get_comparison(view.ws.pair_id).verdict is None
    assert ctx.store.vote_counts()["total"] == 0


def test_an_edited_winner_is_stored_beside_the_original(ctx):
    pool(ctx, "What is a cat?")
    view = ready(ctx)
    voted = flow.vote(ctx.store, view.ws, "a", annotator="ann", edited="A cat is a small pet.")
    assert "(with your edit)" in voted.status
    saved = ctx.store.get_comparison(view.ws.pair_id)
    assert (saved.text_a, saved.edited_chosen, saved.chosen_text) == (view.text_a, "A cat is a small pet.",
                                                                      "A cat is a small pet.")


def test_continuing_compares_the_next_turn_on_the_whole_conversation(ctx):
    pool(ctx, "How do birds fly?")
    first = ready(ctx)
    voted = flow.vote(ctx.store, first.ws, "b", annotator="ann", edited="With wings.", continue_after=True)
    waiting = last(flow.after_vote(ctx.store, ctx.model, voted.ws, FAST, ctx.rng, annotator="ann",
                                   typed="How do birds fly?"))  # the box as the first turn left it: emptied
    assert waiting.waiting_for_prompt and "Turn 2" in waiting.status and waiting.prompt == ""
    typed_on = last(flow.after_vote(ctx.store, ctx.model, voted.ws, FAST, ctx.rng, annotator="ann", typed="And"))
    assert typed_on.prompt == "And" and "Turn 2" in typed_on.status  # the next message begun before the vote stays
    assert waiting.conversation == [{"role": "user", "content": "How do birds fly?"},
                                    {"role": "assistant", "content": "With wings."}]
    second = last(flow.generate(ctx.store, ctx.model, waiting.ws, "And fish?", FAST, ctx.rng, annotator="ann"))
    pair = ctx.store.get_comparison(second.ws.pair_id)
    assert pair.messages == waiting.conversation + [{"role": "user", "content": "And fish?"}]
    assert ctx.store.comparison_meta(pair.id) == {"parent_pair": first.ws.pair_id, "turn": 2}
    assert ctx.store.get_prompt(pair.prompt_id).source == "conversation"
    assert ctx.store.pool_counts() == {"prompts": 1, "pending": 0, "done": 1, "heldout": 0}


def test_undo_reopens_the_last_verdict_and_the_pair_on_screen_comes_back_after_the_revote(ctx):
    pool(ctx, "p1", "p2", "p3")
    first = ready(ctx)
    voted = flow.vote(ctx.store, first.ws, "a", annotator="ann")
    second = last(flow.after_vote(ctx.store, ctx.model, voted.ws, FAST, ctx.rng, annotator="ann"))
    with pytest.raises(ConflictError, match="decided by ann, not bob"):
        flow.undo(ctx.store, second.ws, annotator="bob")
    undone = flow.undo(ctx.store, second.ws, annotator="ann")
    assert undone.ws.pair_id == first.ws.pair_id and undone.ws.parked == (second.ws.pair_id,)
    assert (undone.text_a, undone.prompt) == (first.text_a, first.prompt)
    assert ctx.store.get_comparison(first.ws.pair_id).verdict is None
    revoted = flow.vote(ctx.store, undone.ws, "tie", annotator="ann")
    back = last(flow.after_vote(ctx.store, ctx.model, revoted.ws, FAST, ctx.rng, annotator="ann"))
    assert back.ws.pair_id == second.ws.pair_id and "Back to pair" in back.status and back.text_a == second.text_a
    assert ctx.store.get_comparison(first.ws.pair_id).verdict == "tie"
    with pytest.raises(UserError, match="nothing to undo"):
        flow.undo(ctx.store, flow.Workspace(), annotator="ann")


def test_a_prompt_over_the_context_offers_truncation_which_keeps_the_end(ctx):
    long_text = "word " * 600 + "THE END"
    ws = flow.Workspace()
    view = last(flow.generate(ctx.store, ctx.model, ws, long_text, FAST, ctx.rng, annotator="ann"))
    assert view.too_long and "tokens but only" in view.status and "truncate" in view.status
    assert ctx.store.vote_counts()["pending"] == 0, "nothing is stored for a refused prompt"
    done = last(flow.generate(ctx.store, ctx.model, view.ws, long_text, FAST, ctx.rng, annotator="ann",
                              truncate=True))
    assert done.ws.pair_id and not done.too_long
    gen = ctx.store.query("SELECT params FROM generations WHERE prompt_id = "
                          "(SELECT prompt_id FROM comparisons WHERE id = ?) LIMIT 1", [done.ws.pair_id])[0][0]
    assert '"prompt_tokens": %d' % (ctx.model.context_length - FAST.max_new_tokens) in gen


def test_settings_reach_generation_system_prompt_and_per_side_temperature(ctx):
    pool(ctx, "Name a fruit.")
    prefs = AnnotationPrefs(max_new_tokens=16, temperature=0.0, temperature_b=1.3, system_prompt="Be brief.")
    view = ready(ctx, prefs=prefs)
    pair = ctx.store.get_comparison(view.ws.pair_id)
    assert pair.messages[0] == {"role": "system", "content": "Be brief."}
    temps = dict(ctx.store.query("SELECT json_extract_string(params, '$.side'), json_extract(params, '$.temperature')"
                                 " FROM generations WHERE id IN (?, ?)", [pair.gen_a, pair.gen_b]))
    assert {k: float(v) for k, v in temps.items()} == {"a": 0.0, "b": 1.3}
    flow.vote(ctx.store, view.ws, "a", annotator="ann")
    assert ctx.store.pool_counts()["done"] == 1, "the vote counts for the pool prompt, not a new one"


def test_prefs_validate_and_a_broken_remembered_dict_falls_back_to_defaults():
    with pytest.raises(UserError, match="top_p must be in"):
        AnnotationPrefs(top_p=0)
    with pytest.raises(UserError, match="temperature must be between"):
        AnnotationPrefs(temperature_b=9)
    assert AnnotationPrefs.from_dict({"temperature": "hot"}) == AnnotationPrefs()
    assert AnnotationPrefs.from_dict(None) == AnnotationPrefs()
    kept = AnnotationPrefs.from_dict({"temperature": 0.3, "unknown_old_key": 1})
    assert kept.temperature == 0.3 and AnnotationPrefs.from_dict(kept.to_dict()) == kept


def test_the_browser_secret_survives_a_restart(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        first = browser_secret(s)
    with Store(tmp_path / "a.duckdb") as s:
        assert browser_secret(s) == first and len(first) >= 24


def test_with_overlap_the_next_annotator_gets_the_same_pair_before_a_new_prompt(ctx):
    pool(ctx, "What is a cat?", "Name a fruit.")
    ctx.store.set_overlap_k(2)
    first = ready(ctx, annotator="ann")
    flow.vote(ctx.store, first.ws, "a", annotator="ann")
    shared = last(flow.next_prompt(ctx.store, ctx.model, flow.Workspace(), FAST, ctx.rng, annotator="bob"))
    copy = ctx.store.get_comparison(shared.ws.pair_id)
    original = ctx.store.get_comparison(first.ws.pair_id)
    assert copy.id != original.id and (copy.gen_a, copy.gen_b) == (original.gen_a, original.gen_b)
    assert (shared.text_a, shared.text_b, shared.prompt) == (first.text_a, first.text_b, first.prompt)
    flow.vote(ctx.store, shared.ws, "b", annotator="bob")
    assert ctx.store.pool_counts()["done"] == 1, "both verdicts are votes on the one pool prompt"
    anonymous = last(flow.next_prompt(ctx.store, ctx.model, flow.Workspace(), FAST, ctx.rng, annotator="anonymous"))
    other = ({"What is a cat?", "Name a fruit."} - {first.prompt}).pop()
    assert anonymous.prompt == other, "nobody shares pairs with an unnamed annotator"


def test_the_rate_limit_is_charged_only_when_the_advance_generates(ctx):
    """after_vote / next_prompt call `admit` (the rate limit) just before they generate, and only then: a prompt
    typed meanwhile, auto-advance off or an empty pool generate nothing and cost nothing; a refusal from it stops
    the draw before any pair is written."""
    charges = []
    admit = lambda: charges.append(1)  # noqa: E731 - the caller's rate limit, counted
    pool(ctx, "Pool prompt one.")
    voted = flow.vote(ctx.store, ready(ctx).ws, "a", annotator="ann")
    last(flow.after_vote(ctx.store, ctx.model, voted.ws, FAST, ctx.rng, annotator="ann", typed="Mine", admit=admit))
    last(flow.after_vote(ctx.store, ctx.model, voted.ws, AnnotationPrefs(auto_next=False), ctx.rng, annotator="ann",
                         admit=admit))
    assert charges == []
    pool(ctx, "Pool prompt two.")
    nxt = last(flow.after_vote(ctx.store, ctx.model, voted.ws, FAST, ctx.rng, annotator="ann", admit=admit))
    assert nxt.ws.pair_id and charges == [1]
    again = flow.vote(ctx.store, nxt.ws, "b", annotator="ann")
    empty = last(flow.next_prompt(ctx.store, ctx.model, again.ws, FAST, ctx.rng, annotator="ann", admit=admit))
    assert "No prompts left in the pool" in empty.status and charges == [1]
    pool(ctx, "Pool prompt three.")
    pairs = ctx.store.query("SELECT count(*) FROM comparisons")[0][0]

    def refuse():
        raise UserError("rate limit: wait a minute")

    with pytest.raises(UserError, match="rate limit"):
        last(flow.next_prompt(ctx.store, ctx.model, again.ws, FAST, ctx.rng, annotator="ann", admit=refuse))
    assert ctx.store.query("SELECT count(*) FROM comparisons")[0][0] == pairs
