"""A round's pairs: generated from the parent run's adapter on pool prompts and queued for annotation.

Owns: drawing the round's prompts (pool prompts no pair of this round used, never held-out ones; seeded
draw), generating each pair on the ONE loaded base model with the parent adapter hot-swapped in
(alignui.serving.adapters: both sides from the adapter with different samples, or adapter against base in
a seeded random seat order), and saving it as a pending `annotate` comparison with no annotator (queued:
the next annotator who asks for a pair in Annotate gets it, Store.claim_queued_pair).

Invariants: a pair is saved only once both sides are finished (one transaction per pair, so an interrupted
round keeps the pairs it finished); the randomness is the caller's seeded random.Random.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from alignui.db import Run, Store
from alignui.db.records import Prompt
from alignui.errors import UserError
from alignui.rounds.plan import ParentRun, RoundOptions
from alignui.serving.adapters import AdapterServer
from alignui.serving.generation import PairSettings, with_seed


def draw_prompts(store: Store, parent: ParentRun, n: int, rng: random.Random) -> list[Prompt]:
    """Up to `n` pool prompts for the round (seeded draw); a UserError when the pool has none left."""
    candidates = store.round_prompt_candidates(parent.source)
    if not candidates:
        raise UserError("no prompts for the round: the pool (split train) has none that this round has not used "
                        "yet; add prompts (Annotate > Prompt pool, or python -m alignui import FILE --format prompts)")
    return rng.sample(candidates, min(n, len(candidates)))


@dataclass(frozen=True)
class QueuedRound:
    source: str
    round: int
    pair_ids: list[str]


def queue_round(store: Store, server: AdapterServer, parent: ParentRun, run: Run, prompts: list[Prompt],
                options: RoundOptions, rng: random.Random,
                progress: Callable[[int, int], None] | None = None) -> QueuedRound:
    """Generate and save one pending pair per prompt from `run`'s adapter (see the module docstring)."""
    settings = PairSettings.same(temperature=options.temperature, max_new_tokens=options.max_new_tokens)
    meta = {"round": parent.next_round, "parent_run": parent.id, "sides": options.sides}
    ids: list[str] = []
    for i, prompt in enumerate(prompts):
        left, right = (run, run) if options.sides == "seeds" else ((run, None) if rng.random() < 0.5 else (None, run))
        result = None
        for update in server.stream_two(prompt.messages, left, right, with_seed(settings, rng.randrange(2**31))):
            result = update.result or result
        if result is None:
            continue
        pair = store.save_pair(prompt.messages, result[0], result[1], kind="annotate", annotator=None,
                               prompt_id=prompt.id, source=parent.source, meta=meta)
        ids.append(pair.id)
        if progress:
            progress(i + 1, len(prompts))
    return QueuedRound(parent.source, parent.next_round, ids)
