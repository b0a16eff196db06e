"""Thumbs up/down on single responses: stored in `ratings` (migration 7), rated once, only by their annotator,
drawn from the pool (never held out), counted; the flow the Thumbs tab runs, on the demo model."""

import random
import threading

import pytest

from alignui.annotation import thumbs
from alignui.annotation.prefs import AnnotationPrefs
from alignui.db import NewGeneration
from alignui.db.ratings import NotYourItemError
from alignui.errors import ConflictError, NotFoundError, UserError

Q = [{"role": "user", "content": "Name a colour."}]


def item(store, annotator="ann", messages=Q, text="Blue."):
    return store.save_single(messages, NewGeneration("base", text, params={"temperature": 0.8}), annotator=annotator)


def test_a_rating_is_saved_once_with_its_annotator_and_timing(store):
    pending = item(store)
    assert pending.label is None and pending.text == "Blue." and pending.messages == Q
    rated = store.rate(pending.id, "up", annotator="ann", duration_ms=1234.5)
    assert (rated.label, rated.annotator, rated.duration_ms) == ("up", "ann", 1234.5) and rated.decided_at
    with pytest.raises(ConflictError, match="already rated"):
        store.rate(pending.id, "down", annotator="ann")
    assert store.get_rating(pending.id).label == "up"
    assert store.rating_counts() == {"up": 1, "down": 0, "skip": 0, "pending": 0, "total": 1}
    # pairs are untouched: ratings are their own table, so every pair count stays what it was
    assert store.vote_counts()["total"] == 0 and store.table_counts()["comparisons"] == 0


def test_only_the_annotator_it_was_generated_for_rates_it(store):
    bobs = item(store, "bob")
    with pytest.raises(NotYourItemError, match="generated for another annotator, so ann cannot rate it"):
        store.rate(bobs.id, "down", annotator="ann")
    assert store.get_rating(bobs.id).label is None
    anon = item(store, "anonymous")  # a browser not signed in yet: claimable
    assert thumbs.submit_thumb(store, anon.id, "+", annotator="ann").startswith("Saved: 👍 thumbs up")
    assert store.get_rating(anon.id).annotator == "ann"
    with pytest.raises(NotFoundError, match="no response with id"):
        store.rate("nope", "up", annotator="ann")
    with pytest.raises(UserError, match="label must be one of up, down, skip"):
        thumbs.submit_thumb(store, bobs.id, "sideways", annotator="bob")


def test_two_concurrent_ratings_of_one_item_save_exactly_one(store):
    pending = item(store)
    outcomes = []

    def rate(label):
        try:
            store.rate(pending.id, label, annotator="ann")
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")

    workers = [threading.Thread(target=rate, args=(label,)) for label in ("up", "down", "up", "down")]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
    assert store.rating_counts()["total"] == 1


def test_the_pool_draw_skips_held_out_prompts_and_what_the_annotator_rated(store):
    store.add_prompts_bulk([[{"role": "user", "content": f"pool {i}"}] for i in range(3)], source="pool")
    held = store.add_prompt([{"role": "user", "content": "held out"}], split="heldout")
    seen = []
    for _ in range(3):
        prompt = store.next_thumb_prompt(annotator="ann", salt=len(seen))
        assert prompt is not None and prompt.id != held and prompt.split == "train"
        store.rate(store.save_single(prompt.messages, NewGeneration("base", "x"), annotator="ann",
                                     prompt_id=prompt.id).id, "down", annotator="ann")
        seen.append(prompt.id)
    assert len(set(seen)) == 3 and store.next_thumb_prompt(annotator="ann") is None
    assert store.next_thumb_prompt(annotator="bob") is not None  # bob has rated none of them


def test_the_flow_generates_rates_and_draws_on_the_demo_model(ctx):
    store, rng = ctx.store, random.Random(0)
    store.add_prompts_bulk([[{"role": "user", "content": "Say hello."}]], source="pool")
    prefs = AnnotationPrefs(max_new_tokens=8, temperature=0.7)
    views = list(thumbs.next_prompt(store, ctx.model, thumbs.ThumbsState(), prefs, rng, annotator="ann"))
    final = views[-1]
    assert final.prompt == "Say hello." and final.state.item_id and "👍 or 👎" in final.status and final.text
    pending = store.get_rating(final.state.item_id)
    assert pending.text == final.text and pending.annotator == "ann"
    params = store.query("SELECT params FROM generations WHERE id = ?", [pending.generation_id])[0][0]
    assert '"temperature": 0.7' in params and '"max_new_tokens": 8' in params and '"seed"' in params
    saved = thumbs.rate(store, final.state, "down", annotator="ann")
    assert "Saved: 👎 thumbs down" in saved.status and saved.state.item_id is None
    rated = store.get_rating(pending.id)
    assert rated.label == "down" and rated.duration_ms is not None and rated.duration_ms >= 0
    with pytest.raises(UserError, match="no response to rate yet"):
        thumbs.rate(store, saved.state, "up", annotator="ann")
    empty = list(thumbs.next_prompt(store, ctx.model, saved.state, prefs, rng, annotator="ann"))[-1]
    assert "No prompts left in the pool for you" in empty.status
    assert "1 👎" in thumbs.progress_markdown(store, "ann") and "yours: **0** 👍" in thumbs.progress_markdown(store, "ann")


def test_next_never_draws_the_prompt_of_the_response_on_screen_typed_or_drawn(ctx):
    """A typed prompt joins the pool; its response left unrated (0 ratings) sorted first, and N handed it back."""
    store, rng, prefs = ctx.store, random.Random(0), AnnotationPrefs(max_new_tokens=8)
    store.add_prompts_bulk([[{"role": "user", "content": "Rated by someone."}]], source="pool")
    other = list(thumbs.next_prompt(store, ctx.model, thumbs.ThumbsState(), prefs, rng, annotator="bob"))[-1]
    thumbs.rate(store, other.state, "up", annotator="bob")  # the pool's only prompt has a rating
    typed = list(thumbs.generate(store, ctx.model, thumbs.ThumbsState(), "A typed question?", prefs, rng,
                                 annotator="ann"))[-1]
    assert typed.state.item_id and not typed.state.pool_prompt
    nxt = list(thumbs.next_prompt(store, ctx.model, typed.state, prefs, rng, annotator="ann"))[-1]
    assert nxt.state.item_id and nxt.prompt == "Rated by someone."  # not "A typed question?" again
    again = list(thumbs.next_prompt(store, ctx.model, nxt.state, prefs, rng, annotator="ann"))[-1]
    assert again.prompt != "Rated by someone."  # the drawn one is not handed back either


def test_a_prompt_typed_before_the_thumb_stays_and_nothing_is_drawn_over_it(ctx):
    """After a thumb, text in the box that is not the rated response's prompt is the next prompt: it stays and
    nothing is generated; the box as the response left it (or empty) gets the next pool prompt, as before."""
    store, rng, prefs = ctx.store, random.Random(0), AnnotationPrefs(max_new_tokens=8)
    store.add_prompts_bulk([[{"role": "user", "content": f"Pool prompt {i}."}] for i in range(3)], source="pool")
    shown = list(thumbs.next_prompt(store, ctx.model, thumbs.ThumbsState(), prefs, rng, annotator="ann"))[-1]
    rated = thumbs.rate(store, shown.state, "up", annotator="ann")
    items = store.query("SELECT count(*) FROM ratings")[0][0]  # pending ones too
    kept = list(thumbs.after_rating(store, ctx.model, rated.state, prefs, rng, annotator="ann",
                                    typed=" My own question "))
    assert len(kept) == 1 and kept[0].prompt == "My own question" and not kept[0].state.item_id
    assert "Press Enter to generate the prompt you typed" in kept[0].status and "Saved: 👍" in kept[0].status
    assert store.query("SELECT count(*) FROM ratings")[0][0] == items  # nothing generated over it
    for same in ("", shown.prompt):
        nxt = list(thumbs.after_rating(store, ctx.model, rated.state, prefs, rng, annotator="ann", typed=same))[-1]
        assert nxt.state.item_id and nxt.prompt.startswith("Pool prompt") and nxt.prompt != shown.prompt
    manual = AnnotationPrefs(max_new_tokens=8, auto_next=False)
    assert list(thumbs.after_rating(store, ctx.model, rated.state, manual, rng, annotator="ann")) == []


def test_the_annotate_progress_line_counts_thumbs_beside_pairs(store):
    from alignui.annotation import stats

    assert "thumbs" not in stats.summary_markdown(store)
    store.rate(item(store).id, "up", annotator="ann")
    store.rate(item(store, text="Red.").id, "down", annotator="ann")
    line = stats.summary_markdown(store)
    assert line.startswith("No pairs collected yet") and line.endswith("thumbs: 1 up, 1 down, 0 skipped")


def test_the_thumbs_rate_limit_is_charged_only_when_a_response_is_generated(ctx):
    store, rng, prefs = ctx.store, random.Random(0), AnnotationPrefs(max_new_tokens=8)
    charges = []
    admit = lambda: charges.append(1)  # noqa: E731 - the caller's rate limit, counted
    assert "No prompts left" in list(thumbs.next_prompt(store, ctx.model, thumbs.ThumbsState(), prefs, rng,
                                                        annotator="ann", admit=admit))[-1].status
    store.add_prompts_bulk([[{"role": "user", "content": f"Pool prompt {i}."}] for i in range(2)], source="pool")
    shown = list(thumbs.next_prompt(store, ctx.model, thumbs.ThumbsState(), prefs, rng, annotator="ann",
                                    admit=admit))[-1]
    assert shown.state.item_id and charges == [1]
    rated = thumbs.rate(store, shown.state, "up", annotator="ann")
    list(thumbs.after_rating(store, ctx.model, rated.state, prefs, rng, annotator="ann", typed="Mine", admit=admit))
    assert charges == [1]
    nxt = list(thumbs.after_rating(store, ctx.model, rated.state, prefs, rng, annotator="ann", admit=admit))[-1]
    assert nxt.state.item_id and charges == [1, 1]
