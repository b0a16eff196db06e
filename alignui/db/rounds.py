"""Store methods for training in rounds: the prompts a round may use, its queued pairs and their counts.

Owns: the queries behind alignui.rounds. A round's pairs are ordinary pending `annotate` comparisons whose
`source` is `round:<parent run id>` (alignui.rounds.plan.round_source) and whose meta carries
{"round": n, "parent_run": id}; they are generated without an annotator (queued) and handed to the next
annotator who asks for something to judge (`claim_queued_pair`), so annotators vote on them in Annotate.

Invariants:
- Round prompts come from the pool (split 'train', alignui.db.pool's definition); held-out prompts (the
  arena's) are never used, and prompts already used by a round of the same parent are left out.
- Claiming is one transaction (UPDATE ... WHERE annotator IS NULL): two annotators never get the same pair.
"""

from __future__ import annotations

from alignui.db.core import from_json
from alignui.db.pool import _IN_POOL
from alignui.db.records import Comparison, Prompt

ROUND_PREFIX = "round:"


class RoundsMixin:
    """Mixed into Store; relies on Database.tx / query and VotesMixin.get_comparison."""

    def round_prompt_candidates(self, source: str) -> list[Prompt]:
        """Pool prompts (never held-out ones) that no comparison of `source` used yet, in a fixed order."""
        rows = self.query(
            f"""SELECT p.id, p.messages, p.source, p.split, p.created_at FROM prompts p
                WHERE {_IN_POOL} AND p.id NOT IN (SELECT prompt_id FROM comparisons WHERE source = ?)
                ORDER BY p.id""", [source])
        return [Prompt(id=r[0], messages=from_json(r[1]), source=r[2], split=r[3], created_at=r[4]) for r in rows]

    def round_counts(self, source: str) -> dict[str, int]:
        """{'pairs', 'queued' (nobody holds it), 'pending' (not voted), 'voted', 'pairs_ab' (a/b verdicts)}."""
        row = self.query(
            """SELECT count(*), count(*) FILTER (WHERE annotator IS NULL AND verdict IS NULL),
                      count(*) FILTER (WHERE verdict IS NULL), count(*) FILTER (WHERE verdict IS NOT NULL),
                      count(*) FILTER (WHERE verdict IN ('a', 'b'))
               FROM comparisons WHERE source = ? AND kind = 'annotate' AND deleted_at IS NULL""", [source])[0]
        return dict(zip(("pairs", "queued", "pending", "voted", "pairs_ab"), (int(n) for n in row)))

    def round_pair_ids(self, source: str, *, pending_only: bool = True) -> list[str]:
        rows = self.query("SELECT id FROM comparisons WHERE source = ? AND kind = 'annotate' AND deleted_at IS NULL"
                          + (" AND verdict IS NULL" if pending_only else "") + " ORDER BY created_at, id", [source])
        return [r[0] for r in rows]

    def claim_queued_pair(self, annotator: str) -> Comparison | None:
        """The oldest queued round pair, now handed to `annotator`; None when no round pair waits."""
        def work(cur) -> str | None:
            hit = cur.execute(
                """UPDATE comparisons SET annotator = ? WHERE id = (
                       SELECT id FROM comparisons WHERE kind = 'annotate' AND annotator IS NULL AND verdict IS NULL
                       AND deleted_at IS NULL AND starts_with(source, ?) ORDER BY created_at, id LIMIT 1)
                   AND annotator IS NULL RETURNING id""", [annotator, ROUND_PREFIX]).fetchall()
            return hit[0][0] if hit else None

        cid = self.tx(work)
        return self.get_comparison(cid) if cid else None
