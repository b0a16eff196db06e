"""Annotation primitives: generate a pair for a conversation, save it pending, record a verdict.

Owns: the sequence "check the prompt fits -> stream both sides -> store the
prompt (found by content, or new), both generations and a pending comparison
-> hand back the pair", and vote submission with the user-facing status text.
The named API calls these directly; the Annotate tab calls them through
alignui.annotation.workspace, which adds the per-browser workspace (pool draws,
undo, edits, multi-turn).

Invariants:
- A pair is stored only once both sides are finished; a failed generation stores nothing.
- The stored prompt is the whole conversation the model answered (system
  prompt and earlier turns included); the same conversation is stored once.
- A pair is voted only by the annotator it was generated for (Store.decide);
  a pair of a browser that was not signed in yet ('anonymous') may be claimed.
- Comparison meta links a pair to the pool prompt it was drawn from
  (`pool_prompt`) and, for later turns, to the pair whose chosen response it
  continues (`parent_pair`, `turn`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from alignui.db import Comparison, Store
from alignui.db.records import Messages
from alignui.db.votes import validate_messages
from alignui.errors import UserError, text_arg
from alignui.serving.generation import PairSettings, stream_pair, with_seed
from alignui.serving.generators import PairSource
from alignui.serving.loading import ModelHandle
from alignui.vocab import ANONYMOUS, SAVED_LABELS, normalize_verdict, user_turn  # noqa: F401 (re-exported)

VERDICT_LABELS = SAVED_LABELS


class PromptTooLong(UserError):
    """The conversation does not fit the model's context next to the response; truncation would keep its end."""


@dataclass(frozen=True)
class PairProgress:
    """Texts so far; `pair` is set once both sides are done and the pair is saved."""

    text_a: str
    text_b: str
    pair: Comparison | None = None


def prompt_tokens(model: ModelHandle, messages: Messages) -> int:
    """Length of the chat-formatted conversation in tokens, generation prompt included."""
    return len(model.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                   return_dict=True)["input_ids"])


def check_fits(model: ModelHandle, messages: Messages, max_new_tokens: int) -> None:
    """Raise PromptTooLong (with the numbers and the ways out) unless prompt + response fit the context."""
    n, context = prompt_tokens(model, messages), model.context_length
    budget = context - max_new_tokens
    if n > budget and budget >= 8:  # a smaller budget is refused by generation with its own message
        raise PromptTooLong(f"the prompt is {n} tokens but only {budget} fit this model's {context}-token context "
                            f"next to a {max_new_tokens}-token response; shorten it, lower max new tokens, or "
                            "truncate it (keeps the end of the conversation)")


def stream_annotation_pair(store: Store, model: ModelHandle, messages: Messages, settings: PairSettings,
                           rng: random.Random, *, annotator: str | None = None, prompt_id: str | None = None,
                           truncate: bool = False, source: str = "user",
                           meta: dict | None = None, sides: PairSource | None = None,
                           owner: str = "") -> Iterator[PairProgress]:
    """Stream a new pair for `messages`; the last item carries the saved, pending comparison.

    `prompt_id` names a stored prompt to use; otherwise the prompt is found by content or stored
    (with `source`, and the `parent_pair` of `meta` for a later turn of a conversation). `sides` picks
    the generator of each side (default: the served model twice, in one batched call). The shared decode batch
    admits requests round-robin by `annotator`, else by `owner` (an unnamed browser session), so anonymous
    annotators do not share one turn.
    """
    messages = validate_messages(messages)
    if not truncate and (sides is None or sides.any_local):
        check_fits(model, messages, max(side.max_new_tokens for side in settings.sides))
    settings = with_seed(settings, rng.randrange(2**31))
    named = annotator if annotator and annotator != ANONYMOUS else ""  # every unnamed caller is "anonymous"
    owner = named or owner  # fair admission into the shared decode batch: per annotator, else session
    updates = (sides.stream(messages, settings, truncate=truncate, owner=owner) if sides is not None
               else stream_pair(model, messages, settings, truncate=truncate, owner=owner))
    for update in updates:
        if update.result is None:
            yield PairProgress(update.text_a, update.text_b)
            continue
        gen_a, gen_b = update.result
        prompt_meta = {"parent_pair": meta["parent_pair"]} if meta and meta.get("parent_pair") else None
        pair = store.save_pair(messages, gen_a, gen_b, kind="annotate", annotator=annotator, prompt_id=prompt_id,
                               meta=meta or None, prompt_source=source, prompt_meta=prompt_meta)
        yield PairProgress(gen_a.text, gen_b.text, pair)


def vote_status(pair: Comparison) -> str:
    edited = " (with your edit)" if pair.edited_chosen else ""
    return f"Saved: {VERDICT_LABELS[pair.verdict]}{edited} for pair {pair.id}."


def submit_vote(store: Store, pair_id: str, verdict: str, *, annotator: str | None = None,
                edited_chosen: str | None = None, duration_ms: float | None = None) -> str:
    """Save the verdict (committed before returning) and say so; raises UserError subclasses on bad input."""
    pair_id, verdict = text_arg(pair_id, "pair id", allow_none=True).strip(), normalize_verdict(verdict)
    if not pair_id:
        raise UserError("no pair id given: call /generate_pair first and vote on the id it returns")
    pair = store.decide(pair_id, verdict, annotator=annotator, edited_chosen=edited_chosen, duration_ms=duration_ms,
                        claimable=ANONYMOUS)
    return vote_status(pair)
