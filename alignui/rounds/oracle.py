"""The oracle judge for tests and demos: the demo corpus's checkable property decides a round's pairs.

Owns: `judge_with_oracle`, which votes every pending pair of a round by alignui.training.synthetic's
property (a response ending with demo_corpus.POLITE_CLOSER beats one without it; both or neither: a tie,
which no snapshot turns into a pair). It is NOT a human vote and is labelled as such: the annotator is
ORACLE_ANNOTATOR, and only the command line (the data root's operator) or an admin may call it. The real
path is annotators voting in Annotate.

Invariants: each verdict is one committed Store.decide; a pair someone already voted on is left alone.
"""

from __future__ import annotations

from alignui.db import Store
from alignui.errors import ConflictError
from alignui.serving.demo_corpus import POLITE_CLOSER
from alignui.team.identity import Identity, require

ORACLE_ANNOTATOR = "oracle:closer (synthetic, not a human)"


def oracle_verdict(text_a: str, text_b: str) -> str:
    """'a' / 'b' when exactly one side ends with the polite closer, else 'tie'."""
    a, b = text_a.strip().endswith(POLITE_CLOSER), text_b.strip().endswith(POLITE_CLOSER)
    return "a" if a and not b else "b" if b and not a else "tie"


def judge_with_oracle(store: Store, source: str, identity: Identity) -> dict[str, int]:
    """Vote every pending pair of `source` by the oracle; returns the verdict counts."""
    require(identity, "run_judges")  # an automatic vote writer: admins (and the CLI operator) only
    counts = {"a": 0, "b": 0, "tie": 0}
    for pair_id in store.round_pair_ids(source):
        pair = store.get_comparison(pair_id)
        verdict = oracle_verdict(pair.text_a, pair.text_b)
        try:
            store.decide(pair_id, verdict, annotator=ORACLE_ANNOTATOR, claimable=pair.annotator)
        except ConflictError:
            continue
        counts[verdict] += 1
    return counts
