"""Annotation: generate a pair for a prompt, save it pending, record the annotator's verdict.

Owns: the sequence "stream both sides -> store prompt, generations and a
pending comparison in one transaction -> hand back the pair id", and vote
submission with the user-facing status text. The UI and the named API call
these functions and nothing lower.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from alignui.db import Comparison, Store
from alignui.db.records import Messages
from alignui.generation import PairSettings, stream_pair, with_seed
from alignui.models import ModelHandle

VERDICT_LABELS = {"a": "A is better", "b": "B is better", "tie": "tie", "both_bad": "both bad", "skip": "skipped"}


@dataclass(frozen=True)
class PairProgress:
    """Texts so far; `pair` is set once both sides are done and the pair is saved."""

    text_a: str
    text_b: str
    pair: Comparison | None = None


def user_turn(prompt: str, system: str | None = None) -> Messages:
    messages = [{"role": "system", "content": system}] if system and system.strip() else []
    return messages + [{"role": "user", "content": prompt}]


def stream_annotation_pair(store: Store, model: ModelHandle, messages: Messages, settings: PairSettings,
                           rng: random.Random, *, annotator: str | None = None, prompt_id: str | None = None,
                           truncate: bool = False) -> Iterator[PairProgress]:
    """Stream a new pair for `messages`; the last item carries the saved, pending comparison."""
    settings = with_seed(settings, rng.randrange(2**31))
    for update in stream_pair(model, messages, settings, truncate=truncate):
        if update.result is None:
            yield PairProgress(update.text_a, update.text_b)
            continue
        gen_a, gen_b = update.result
        pair = store.save_pair(messages, gen_a, gen_b, kind="annotate", annotator=annotator, prompt_id=prompt_id)
        yield PairProgress(gen_a.text, gen_b.text, pair)


def submit_vote(store: Store, pair_id: str, verdict: str, *, annotator: str | None = None,
                edited_chosen: str | None = None, duration_ms: float | None = None) -> str:
    """Save the verdict (committed before returning) and say so; raises UserError subclasses on bad input."""
    pair = store.decide(pair_id, verdict, annotator=annotator, edited_chosen=edited_chosen, duration_ms=duration_ms)
    edited = " (with your edit)" if pair.edited_chosen else ""
    return f"Saved: {VERDICT_LABELS[pair.verdict]}{edited} for pair {pair.id}."
