"""Overlap: handing one pair to k annotators, with gold items mixed in, so agreement can be measured.

Owns: the decision "what should this annotator judge next, before a new pair
is generated": a copy of a pair that fewer than k people have judged (k is the
operator's setting, Store.overlap_k), or now and then a gold item (a pair with
a known answer) they have not seen. The Annotate tab calls `next_shared_pair`
before generating; None means "generate a fresh pair".

Invariants: the copy shares gen_a/gen_b with the original (same texts, same
sides), so verdicts are comparable; nobody judges the same pair twice; the
randomness comes from the caller's seeded random.Random.
"""

from __future__ import annotations

import random

from alignui.db import Comparison, Store

#: Share of requests that are answered with an unseen gold item when one exists (attention checks).
DEFAULT_GOLD_RATE = 0.1


def next_shared_pair(store: Store, annotator: str, rng: random.Random, *,
                     gold_rate: float = DEFAULT_GOLD_RATE) -> Comparison | None:
    """A pending comparison for `annotator` to judge next, or None to generate a new pair."""
    if not 0.0 <= gold_rate <= 1.0:
        raise ValueError(f"gold_rate is a share from 0 to 1, got {gold_rate!r}")
    if gold_rate and rng.random() < gold_rate:
        pair = store.claim_shared_pair(annotator, 1, gold=True)
        if pair is not None:
            return pair
    k = store.overlap_k()
    return store.claim_shared_pair(annotator, k) if k > 1 else None
