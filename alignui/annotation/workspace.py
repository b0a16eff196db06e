"""The annotation workspace of one browser session: draw, generate, vote, edit, undo, continue.

Owns: the `Workspace` record (what one annotator has on screen and may undo)
and the steps of the annotation loop, each returning a `View` (everything the
Annotate tab shows), so the UI only maps a View onto its widgets.

The loop: a prompt is typed or drawn from the pool (or a pair others judged
is handed out, for agreement: alignui.annotation.overlap) -> a pair streams in -> a
verdict is saved (optionally with an edited winner) -> the next thing is ready
without a click: the next turn of the conversation (when the annotator asked to
continue), else a prompt the annotator typed meanwhile, left in the box, else a
pair set aside by an undo, else the next pool prompt, generated at once (when
auto-advance is on), else an empty prompt box.

Invariants:
- A Workspace is immutable; every step returns a new one (gr.State keeps it per session).
- Undo reopens only verdicts made in this workspace, newest first, and only
  the annotator's own; the pair that was on screen is set aside and comes back
  right after the re-vote.
- Continuing stores the next turn as a new prompt: the whole conversation so
  far (the chosen response, edit included, as the assistant turn) plus the new user turn.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from alignui.annotation.pairs import PromptTooLong, VERDICT_LABELS, stream_annotation_pair, vote_status
from alignui.annotation.prefs import AnnotationPrefs
from alignui.db import Comparison, Store
from alignui.db.pool import CONVERSATION_SOURCE, VARIANT_SOURCE
from alignui.db.records import Messages
from alignui.errors import UserError
from alignui.team.identity import ANONYMOUS
from alignui.serving.endpoints import EndpointError
from alignui.serving.generators import Generators, PairSource
from alignui.serving.loading import ModelHandle
from alignui.vocab import normalize_verdict
from alignui.annotation.overlap import next_shared_pair
from alignui.annotation.pool import TYPED_NEXT, draw, on_screen, typed_next

UNDO_DEPTH = 20
READY = "is ready: which response is better?"


@dataclass(frozen=True)
class Workspace:
    history: tuple[dict, ...] = ()  # messages before the user turn being asked (system prompt, earlier turns)
    prompt_text: str = ""  # that user turn as drawn, set up or last generated
    pool_prompt: str | None = None  # the pool prompt it was drawn from
    parent_pair: str | None = None  # the pair whose chosen response `history` ends with (turn > 1)
    turn: int = 1
    pair_id: str | None = None  # the pending pair on screen
    ready_at: float | None = None  # when that pair finished streaming (epoch s), for the vote's duration
    decided: tuple[str, ...] = ()  # verdicts given in this workspace, newest last (the undo stack)
    parked: tuple[str, ...] = ()  # pending pairs set aside by an undo, shown again after the re-vote
    saved: str = ""  # the last "Saved: ..." line, kept in view while the next pair streams
    streaming: bool = False  # a pair is being written for `prompt_text` (a vote now is refused, kindly)
    owner: str = ""  # whose turn it is in the shared decode batch when nobody is named: the browser session

    @property
    def conversation(self) -> list[dict]:
        """Earlier turns to show above the responses (the system prompt is not shown)."""
        return [dict(m) for m in self.history if m["role"] != "system"]


@dataclass(frozen=True)
class View:
    """What the Annotate tab shows after a step."""

    ws: Workspace
    status: str
    text_a: str = ""
    text_b: str = ""
    prompt: str = ""
    too_long: bool = False  # offer "truncate and generate"
    waiting_for_prompt: bool = False  # the prompt box is empty and should take the focus
    conversation: list[dict] = field(default_factory=list)


def _view(ws: Workspace, status: str, **kwargs) -> View:
    kwargs.setdefault("prompt", ws.prompt_text)
    return View(ws=ws, status=" · ".join(s for s in (ws.saved, status) if s), conversation=ws.conversation, **kwargs)


def _messages(ws: Workspace, text: str, prefs: AnnotationPrefs) -> tuple[Messages, dict]:
    """The conversation to answer and the comparison meta that links it to the pool and earlier turns."""
    history = list(ws.history)
    if prefs.system_prompt and not any(m["role"] == "system" for m in history):
        history.insert(0, {"role": "system", "content": prefs.system_prompt})
    meta: dict = {}
    if ws.pool_prompt and text == ws.prompt_text.strip() and not ws.parent_pair:
        meta["pool_prompt"] = ws.pool_prompt
    if ws.parent_pair:
        meta.update(parent_pair=ws.parent_pair, turn=ws.turn)
    return history + [{"role": "user", "content": text}], meta


def generate(store: Store, model: ModelHandle, ws: Workspace, text: str, prefs: AnnotationPrefs,
             rng: random.Random, *, annotator: str | None, truncate: bool = False,
             generators: Generators | None = None) -> Iterator[View]:
    """Stream a pair for `text` as the next user turn of the workspace's conversation (each side from the
    generator the prefs name, when `generators` is given; else the served model twice)."""
    text = (text or "").strip()
    if not text:
        raise UserError("the prompt is empty: type a question or instruction first (or press N to draw one)")
    if text != ws.prompt_text.strip() and not ws.parent_pair:  # typed over a drawn prompt: a new conversation
        ws = replace(ws, history=(), pool_prompt=None)
    messages, meta = _messages(ws, text, prefs)
    ws = replace(ws, prompt_text=text, pair_id=None, ready_at=None, streaming=True)
    source = CONVERSATION_SOURCE if ws.parent_pair else VARIANT_SOURCE if meta.get("pool_prompt") else "user"
    sides = PairSource.named(generators, prefs.model_a, prefs.model_b) if generators is not None else None
    try:
        yield _view(ws, "Generating…")
        for step in stream_annotation_pair(store, model, messages, prefs.pair_settings(), rng, annotator=annotator,
                                           truncate=truncate, source=source, meta=meta, sides=sides,
                                           owner=ws.owner):
            if step.pair is None:
                yield _view(ws, "Generating…", text_a=step.text_a, text_b=step.text_b)
                continue
            ws = replace(ws, pair_id=step.pair.id, ready_at=time.time(), streaming=False)
            yield _view(ws, f"Pair `{step.pair.id}` {READY}", text_a=step.text_a, text_b=step.text_b)
    except PromptTooLong as exc:
        yield _view(replace(ws, streaming=False), f"⚠️ {exc}.", too_long=True)
    except EndpointError as exc:  # both sides' text goes: a pair is shown whole or not at all
        yield _view(replace(ws, streaming=False), f"⚠️ {exc}.")


def next_prompt(store: Store, model: ModelHandle, ws: Workspace, prefs: AnnotationPrefs, rng: random.Random, *,
                annotator: str | None, generators: Generators | None = None,
                admit: Callable[[], None] | None = None) -> Iterator[View]:
    """The next thing to judge: a pair others judged (overlap k, gold items; named annotators only), else a
    queued pair of the next training round, else the next pool prompt (a new conversation) with its pair
    generated at once. `admit()` (the caller's rate limit) is called just before generating, and only then: a
    shared or queued pair, or an empty pool, costs nothing."""
    base = Workspace(decided=ws.decided, parked=ws.parked, saved=ws.saved)
    shared = next_shared_pair(store, annotator, rng) if annotator and annotator != ANONYMOUS else None
    if shared is None:  # a queued pair of training in rounds (alignui.rounds), handed out like a pool prompt
        shared = store.claim_queued_pair(annotator or ANONYMOUS)
    if shared is not None:
        ws = _resume(store, base, shared)
        yield _view(ws, f"Pair `{shared.id}` {READY}", text_a=shared.text_a, text_b=shared.text_b)
        return
    exclude = on_screen(ws.pool_prompt, ws.pair_id, lambda pair_id: store.get_comparison(pair_id).prompt_id)
    prompt = draw(store, annotator, rng, exclude=exclude)
    if prompt is None:
        yield _view(base, "No prompts left in the pool for you: type one (press / to focus the box), or add "
                          "prompts under Prompt pool.", waiting_for_prompt=True)
        return
    last = prompt.messages[-1]
    history = prompt.messages[:-1] if last["role"] == "user" else prompt.messages
    drawn = replace(base, history=tuple(history), prompt_text=last["content"] if last["role"] == "user" else "",
                    pool_prompt=prompt.id)
    if admit is not None:
        admit()
    yield from generate(store, model, drawn, drawn.prompt_text, prefs, rng, annotator=annotator, generators=generators)


def vote(store: Store, ws: Workspace, verdict: str, *, annotator: str | None, edited: str | None = None,
         continue_after: bool = False) -> View:
    """Save the verdict on the pair on screen; with `continue_after`, set up the next turn of its conversation."""
    if not ws.pair_id and ws.streaming:
        raise UserError("the pair is still being written: vote once both responses are complete "
                        "(the status line then says the pair is ready)")
    if not ws.pair_id:
        raise UserError("no pair to vote on yet: type a prompt and press Enter, or press N to draw one")
    verdict = normalize_verdict(verdict)
    if continue_after and verdict not in ("a", "b"):
        raise UserError(f"to continue the conversation pick A or B (the winner is continued); untick Continue "
                        f"(C) to save '{VERDICT_LABELS.get(verdict, verdict)}'")
    duration = round((time.time() - ws.ready_at) * 1000, 1) if ws.ready_at else None
    pair = store.decide(ws.pair_id, verdict, annotator=annotator, edited_chosen=edited, duration_ms=duration,
                        claimable=ANONYMOUS)
    ws = replace(ws, pair_id=None, ready_at=None, decided=(ws.decided + (pair.id,))[-UNDO_DEPTH:],
                 saved=vote_status(pair))
    if continue_after:
        ws = replace(ws, history=tuple(pair.messages) + ({"role": "assistant", "content": pair.chosen_text},),
                     prompt_text="", pool_prompt=None, parent_pair=pair.id, turn=ws.turn + 1)
    return _view(ws, "", text_a=pair.text_a, text_b=pair.text_b, prompt=pair.messages[-1]["content"])


def _resume(store: Store, ws: Workspace, pair: Comparison, **changes) -> Workspace:
    """The workspace showing `pair` (pending) again, with its conversation and links."""
    meta = store.comparison_meta(pair.id)
    return replace(ws, history=tuple(pair.messages[:-1]), prompt_text=pair.messages[-1]["content"],
                   pool_prompt=meta.get("pool_prompt"), parent_pair=meta.get("parent_pair"),
                   turn=int(meta.get("turn", 1)), pair_id=pair.id, ready_at=time.time(), **changes)


def after_vote(store: Store, model: ModelHandle, ws: Workspace, prefs: AnnotationPrefs, rng: random.Random, *,
               annotator: str | None, generators: Generators | None = None, typed: str = "",
               admit: Callable[[], None] | None = None) -> Iterator[View]:
    """Make the next thing ready without a click (see the module docstring for the order).

    `typed`: the prompt box as it is now. Text there that is not the voted pair's prompt was typed as the next
    prompt: it stays in the box and nothing is drawn or generated over it (parked pairs wait for the next vote).
    `admit`: as for next_prompt (charged only when a pair is generated)."""
    users = [m["content"] for m in ws.history if m["role"] == "user"]  # a continued conversation's: its last turn
    own = typed_next(typed, ws.prompt_text or (users[-1] if ws.parent_pair and users else ""))
    if ws.parent_pair and not ws.pair_id and not ws.prompt_text:
        yield _view(ws, f"Turn {ws.turn}: type your next message and press Enter.", waiting_for_prompt=True,
                    prompt=own)
        return
    if own:
        yield _view(replace(ws, history=(), prompt_text="", pool_prompt=None, parent_pair=None, turn=1),
                    TYPED_NEXT, waiting_for_prompt=True, prompt=own)
        return
    parked = list(ws.parked)
    while parked:
        pair = store.get_comparison(parked.pop())
        if pair.verdict is None:
            ws = _resume(store, ws, pair, parked=tuple(parked))
            yield _view(ws, f"Back to pair `{pair.id}`, which {READY}", text_a=pair.text_a, text_b=pair.text_b)
            return
    ws = replace(ws, parked=())
    if prefs.auto_next:
        yield from next_prompt(store, model, ws, prefs, rng, annotator=annotator, generators=generators, admit=admit)
        return
    yield _view(replace(ws, history=(), prompt_text="", pool_prompt=None, parent_pair=None, turn=1),
                "Type the next prompt, or press N to draw one from the pool.", waiting_for_prompt=True)


def undo(store: Store, ws: Workspace, *, annotator: str | None) -> View:
    """Reopen this workspace's newest verdict and put its pair back on screen."""
    if not ws.decided:
        raise UserError("nothing to undo: only verdicts given in this browser session can be undone here")
    pair = store.undo(ws.decided[-1], annotator=annotator)
    parked = ws.parked + ((ws.pair_id,) if ws.pair_id else ())
    ws = _resume(store, ws, pair, decided=ws.decided[:-1], parked=parked, saved="")
    return _view(ws, f"Undone: pair `{pair.id}` is open again: vote again.", text_a=pair.text_a, text_b=pair.text_b)


def welcome(store: Store) -> str:
    """The first hint on an empty workspace: how to start."""
    pending = store.pool_counts()["pending"]
    if pending:
        return (f"**{pending}** prompt{'s' if pending != 1 else ''} waiting in the pool: press **N** to start, or type "
                "your own prompt and press **Enter**.")
    return "Type a prompt and press **Enter** (the pool is empty: add prompts under *Prompt pool*)."
