"""The thumbs up/down mode: one response to a prompt, rated desirable (up) or undesirable (down).

Owns: streaming one response for a conversation and saving it with a pending rating (prompt +
generation + rating, once the response is complete), saving the thumb, the label vocabulary ('up',
'down', 'skip' and their key aliases), and the per-browser `ThumbsState` steps the Thumbs tab maps onto
its widgets (generate, draw the next pool prompt, rate). Cheaper than a pair: one response, one key.

Invariants:
- A rating is stored only once its response is finished; a failed generation stores nothing.
- Only the annotator a response was generated for rates it (Store.rate); a response generated for a
  browser that was not signed in yet ('anonymous') may be claimed.
- The stored generation's params hold the sampling settings and seed; the rating holds the annotator,
  the time it was rated and how long the annotator looked at the finished response (duration_ms).
- Pool draws never hand out held-out prompts (Store.next_thumb_prompt).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from alignui.annotation.pairs import check_fits
from alignui.annotation.pool import TYPED_NEXT, on_screen, typed_next
from alignui.annotation.prefs import AnnotationPrefs
from alignui.db import Store
from alignui.db.pool import VARIANT_SOURCE
from alignui.db.ratings import LABELS, Rating
from alignui.db.records import Messages
from alignui.db.votes import validate_messages
from alignui.errors import UserError, quoted, text_arg
from alignui.serving.generation import stream_rows
from alignui.serving.loading import ModelHandle
from alignui.vocab import ANONYMOUS, user_turn

LABEL_ALIASES = {"up": "up", "+": "up", "👍": "up", "down": "down", "-": "down", "👎": "down", "skip": "skip"}
SAVED = {"up": "👍 thumbs up", "down": "👎 thumbs down", "skip": "skipped"}
READY = "is ready: 👍 or 👎?"


def normalize_label(value: object) -> str:
    """'Up ', '+', '👍' -> 'up'; anything else is a UserError naming what is accepted."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in LABEL_ALIASES:
        raise UserError(f"label must be one of {', '.join(LABELS)}; got {quoted(value)}")
    return LABEL_ALIASES[text]


@dataclass(frozen=True)
class SingleProgress:
    """The text so far; `rating` is set once the response is done and saved (pending)."""

    text: str
    rating: Rating | None = None


def stream_single(store: Store, model: ModelHandle, messages: Messages, prefs: AnnotationPrefs, rng: random.Random,
                  *, annotator: str | None, source: str = "user", meta: dict | None = None,
                  prompt_id: str | None = None) -> Iterator[SingleProgress]:
    """Stream one response from the served model; the last item carries the saved, pending rating."""
    messages = validate_messages(messages)
    side = prefs.pair_settings().a
    check_fits(model, messages, side.max_new_tokens)
    for texts, _, gens in stream_rows(model, messages, [side], rng.randrange(2**31), labels="s"):
        if gens is None:
            yield SingleProgress(texts[0])
            continue
        yield SingleProgress(texts[0], store.save_single(messages, gens[0], annotator=annotator, prompt_id=prompt_id,
                                                         meta=meta or None, prompt_source=source))


def submit_thumb(store: Store, item_id: str, label: str, *, annotator: str | None,
                 duration_ms: float | None = None) -> str:
    """Save the thumb (committed before returning) and say so; UserError subclasses on bad input."""
    item_id, label = text_arg(item_id, "item id", allow_none=True).strip(), normalize_label(label)
    if not item_id:
        raise UserError("no item id given: call /generate_single first and rate the id it returns")
    rating = store.rate(item_id, label, annotator=annotator, duration_ms=duration_ms, claimable=ANONYMOUS)
    return f"Saved: {SAVED[rating.label]} for response {rating.id}."


@dataclass(frozen=True)
class ThumbsState:
    """What one browser session's Thumbs tab has on screen."""

    prompt_text: str = ""
    pool_prompt: str | None = None  # the pool prompt it was drawn from
    item_id: str | None = None  # the pending rating on screen
    ready_at: float | None = None  # when its response finished streaming (epoch s), for the duration
    saved: str = ""  # the last "Saved: ..." line


@dataclass(frozen=True)
class ThumbsView:
    state: ThumbsState
    status: str
    text: str = ""
    prompt: str = ""


def _view(state: ThumbsState, status: str, text: str = "") -> ThumbsView:
    return ThumbsView(state, " · ".join(s for s in (state.saved, status) if s), text, state.prompt_text)


def generate(store: Store, model: ModelHandle, state: ThumbsState, text: str, prefs: AnnotationPrefs,
             rng: random.Random, *, annotator: str | None) -> Iterator[ThumbsView]:
    """Stream a response to `text` (the system prompt of the prefs first, when set) and hold it for a thumb."""
    text = (text or "").strip()
    if not text:
        raise UserError("the prompt is empty: type a question or instruction first (or press N to draw one)")
    drawn = state.pool_prompt if text == state.prompt_text.strip() else None
    state = replace(state, prompt_text=text, pool_prompt=drawn, item_id=None, ready_at=None)
    messages = user_turn(text, prefs.system_prompt)
    source = VARIANT_SOURCE if drawn and prefs.system_prompt else "user"  # a variant stays out of the pool
    yield _view(state, "Generating…")
    for step in stream_single(store, model, messages, prefs, rng, annotator=annotator, source=source,
                              meta={"pool_prompt": drawn} if drawn else None):
        if step.rating is None:
            yield _view(state, "Generating…", step.text)
            continue
        state = replace(state, item_id=step.rating.id, ready_at=time.time())
        yield _view(state, f"Response `{step.rating.id}` {READY}", step.text)


def next_prompt(store: Store, model: ModelHandle, state: ThumbsState, prefs: AnnotationPrefs, rng: random.Random,
                *, annotator: str | None, admit: Callable[[], None] | None = None) -> Iterator[ThumbsView]:
    """Draw the next pool prompt this annotator has not rated (never a held-out one) and generate at once;
    `admit()` (the caller's rate limit) is called just before generating, so an empty pool costs nothing."""
    prompt = store.next_thumb_prompt(annotator=annotator, salt=rng.randrange(2**31),
                                     exclude=on_screen(state.pool_prompt, state.item_id,
                                                       lambda item_id: store.get_rating(item_id).prompt_id))
    if prompt is None:
        yield _view(replace(state, item_id=None), "No prompts left in the pool for you: type one, or add prompts "
                                                  "under Prompt pool (Annotate tab).")
        return
    drawn = replace(state, prompt_text=prompt.last_user_text, pool_prompt=prompt.id)
    if admit is not None:
        admit()
    yield from generate(store, model, drawn, drawn.prompt_text, prefs, rng, annotator=annotator)


def rate(store: Store, state: ThumbsState, label: str, *, annotator: str | None) -> ThumbsView:
    """Save the thumb on the response on screen."""
    if not state.item_id:
        raise UserError("no response to rate yet: type a prompt and press Enter, or press N to draw one")
    duration = round((time.time() - state.ready_at) * 1000, 1) if state.ready_at else None
    saved = submit_thumb(store, state.item_id, label, annotator=annotator, duration_ms=duration)
    state = replace(state, item_id=None, ready_at=None, saved=saved)
    return _view(state, "Press N for the next prompt, or type one.")


def after_rating(store: Store, model: ModelHandle, state: ThumbsState, prefs: AnnotationPrefs, rng: random.Random,
                 *, annotator: str | None, typed: str = "", admit: Callable[[], None] | None = None
                 ) -> Iterator[ThumbsView]:
    """After a saved thumb: the next pool prompt, generated at once (when auto-advance is on); nothing without it.
    `typed`: the prompt box as it is now. Text there that is not the rated response's prompt was typed as the next
    prompt: it stays in the box and nothing is drawn or generated over it. `admit`: as for next_prompt."""
    own = typed_next(typed, state.prompt_text)
    if own:
        yield replace(_view(replace(state, prompt_text="", pool_prompt=None), TYPED_NEXT), prompt=own)
    elif prefs.auto_next:
        yield from next_prompt(store, model, state, prefs, rng, annotator=annotator, admit=admit)


def progress_markdown(store: Store, annotator: str | None) -> str:
    """One line of thumbs counts: this annotator's, and everyone's."""
    mine, everyone = store.rating_counts(annotator) if annotator else None, store.rating_counts()
    line = (f"**Thumbs:** {everyone['up']} 👍 · {everyone['down']} 👎 · {everyone['skip']} skipped in all")
    if mine is not None:
        line += f" · yours: **{mine['up']}** 👍 · **{mine['down']}** 👎 · {mine['skip']} skipped"
    return line
