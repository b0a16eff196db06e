"""Store methods for the prompt pool, annotator history and the annotation counters.

Owns: the queries behind the Annotate tab: which prompt to draw next, how many
prompts are pending or done, one annotator's recent verdicts, votes by
annotator and over time, and find-or-insert of prompts by content.

Definitions (one place, so the UI, API and tests agree):
- The pool is every prompt with split 'train' except later turns of a
  conversation (source 'conversation') and variants of a pool prompt (source
  'pool_variant': the pool prompt with a system prompt added); 'heldout'
  prompts belong to the arena.
- A vote on a pool prompt is a decided, non-skip annotate comparison whose
  prompt is that prompt, or whose meta names it as `pool_prompt` (the pair was
  generated from it with a system prompt added, so the stored messages differ).
- A prompt is pending until it has one vote, done after.
- Draw order: fewest votes first (unannotated first), then fewest pairs in
  flight (generated in the last 10 minutes, not yet decided), then a salted
  hash (so two annotators rarely draw the same prompt). Prompts the annotator
  already decided (or skipped) are never drawn for them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from alignui.db.core import from_json, last_user_content, new_id, to_json
from alignui.db.records import Messages, Prompt, messages_hash

CONVERSATION_SOURCE = "conversation"
VARIANT_SOURCE = "pool_variant"
_POOL_KEY = "coalesce(json_extract_string(c.meta, '$.pool_prompt'), c.prompt_id)"
_VOTES = f"""
    SELECT {_POOL_KEY} AS pid,
           count(*) FILTER (WHERE c.verdict IS NOT NULL AND c.verdict <> 'skip') AS n_votes,
           count(*) FILTER (WHERE c.verdict IS NULL
                            AND c.created_at > CAST(current_timestamp AS TIMESTAMP) - INTERVAL 10 MINUTE) AS in_flight,
           coalesce(bool_or(c.verdict IS NOT NULL AND c.annotator = ?), false) AS seen
    FROM comparisons c WHERE c.kind = 'annotate' AND c.deleted_at IS NULL GROUP BY 1
"""
_IN_POOL = f"p.split = 'train' AND p.source NOT IN ('{CONVERSATION_SOURCE}', '{VARIANT_SOURCE}')"


@dataclass(frozen=True)
class HistoryRow:
    """One decided pair in an annotator's history."""

    pair_id: str
    decided_at: datetime
    prompt: str
    verdict: str
    edited: bool
    turn: int


class PoolMixin:
    """Mixed into Store; relies on Database.tx / query and VotesMixin._insert_prompt."""

    # -- prompts by content ------------------------------------------------------------------
    def find_prompt(self, messages: Messages) -> str | None:
        """The id of the oldest stored prompt with exactly these messages, or None."""
        rows = self.query("SELECT id FROM prompts WHERE content_hash = ? ORDER BY created_at, id LIMIT 1",
                          [messages_hash(messages)])
        return rows[0][0] if rows else None

    def ensure_prompt(self, messages: Messages, *, source: str = "user", meta: dict | None = None) -> str:
        """The id of the stored prompt with these messages, inserting it first if it is new."""
        return self.tx(lambda cur: self._prompt_of_content(cur, messages, source, meta))

    def add_prompts_bulk(self, conversations: list[Messages], *, source: str = "pool",
                         split: str = "train") -> tuple[int, int]:
        """Append new prompts in one transaction; returns (added, duplicates skipped)."""
        seen: dict[str, Messages] = {}
        for messages in conversations:
            seen.setdefault(messages_hash(messages), messages)
        frame = pd.DataFrame({"id": [new_id() for _ in seen], "messages": [to_json(m) for m in seen.values()],
                              "content_hash": list(seen), "source": source, "split": split})

        def work(cur) -> int:
            cur.register("new_prompts", frame)
            try:
                return cur.execute(
                    """INSERT INTO prompts (id, messages, content_hash, source, split)
                       SELECT id, CAST(messages AS JSON), content_hash, source, split FROM new_prompts
                       WHERE content_hash NOT IN (SELECT content_hash FROM prompts)""").fetchone()[0]
            finally:
                cur.unregister("new_prompts")

        added = self.tx(work) if len(frame) else 0
        return added, len(conversations) - added

    # -- the pool ------------------------------------------------------------------------------
    def next_pool_prompt(self, *, annotator: str | None, salt: int = 0,
                         exclude: tuple[str, ...] = ()) -> Prompt | None:
        """The prompt to annotate next for `annotator` (see the module docstring), or None when none is left."""
        rows = self.query(
            f"""WITH votes AS ({_VOTES})
                SELECT p.id, p.messages, p.source, p.split, p.created_at FROM prompts p
                LEFT JOIN votes v ON v.pid = p.id
                WHERE {_IN_POOL} AND NOT coalesce(v.seen, false) AND NOT list_contains(?, p.id)
                ORDER BY coalesce(v.n_votes, 0), coalesce(v.in_flight, 0), hash(p.id || ?) LIMIT 1""",
            [annotator, list(exclude), str(salt)])
        if not rows:
            return None
        r = rows[0]
        return Prompt(id=r[0], messages=from_json(r[1]), source=r[2], split=r[3], created_at=r[4])

    def pool_counts(self) -> dict[str, int]:
        """{'prompts', 'pending', 'done'} over the pool, plus 'heldout' (prompts kept for the arena)."""
        row = self.query(
            f"""WITH votes AS ({_VOTES})
                SELECT count(*) FILTER (WHERE {_IN_POOL}),
                       count(*) FILTER (WHERE {_IN_POOL} AND coalesce(v.n_votes, 0) = 0),
                       count(*) FILTER (WHERE {_IN_POOL} AND coalesce(v.n_votes, 0) > 0),
                       count(*) FILTER (WHERE p.split = 'heldout')
                FROM prompts p LEFT JOIN votes v ON v.pid = p.id""", [None])[0]
        return dict(zip(("prompts", "pending", "done", "heldout"), (int(n) for n in row)))

    # -- history and counters ------------------------------------------------------------------
    def comparison_meta(self, comparison_id: str) -> dict:
        rows = self.query("SELECT meta FROM comparisons WHERE id = ?", [comparison_id])
        return (from_json(rows[0][0]) or {}) if rows else {}

    def annotator_history(self, annotator: str, limit: int = 20) -> list[HistoryRow]:
        """The annotator's latest decided annotation pairs, newest first."""
        rows = self.query(
            """SELECT c.id, c.decided_at, p.messages, c.verdict, c.edited_chosen IS NOT NULL,
                      coalesce(CAST(json_extract(c.meta, '$.turn') AS INTEGER), 1)
               FROM comparisons c JOIN prompts p ON p.id = c.prompt_id
               WHERE c.kind = 'annotate' AND c.deleted_at IS NULL AND c.verdict IS NOT NULL AND c.annotator = ?
               ORDER BY c.decided_at DESC, c.id DESC LIMIT ?""", [annotator, limit])
        out = []
        for pid, decided_at, messages, verdict, edited, turn in rows:
            out.append(HistoryRow(pid, decided_at, last_user_content(messages), verdict, bool(edited), int(turn)))
        return out

    def votes_by_annotator(self, kind: str = "annotate") -> list[tuple[str, int]]:
        """(annotator, decided pairs) for everyone who decided one, most active first ('anonymous' for none)."""
        rows = self.query("SELECT coalesce(annotator, 'anonymous'), count(*) FROM comparisons "
                          "WHERE kind = ? AND deleted_at IS NULL AND verdict IS NOT NULL GROUP BY 1 "
                          "ORDER BY 2 DESC, 1", [kind])
        return [(name, int(n)) for name, n in rows]

    def decision_times(self, kind: str = "annotate") -> list[tuple[datetime, str]]:
        """(decided_at, verdict) of every decided pair of `kind`, oldest first."""
        return self.query("SELECT decided_at, verdict FROM comparisons WHERE kind = ? AND deleted_at IS NULL "
                          "AND verdict IS NOT NULL ORDER BY decided_at", [kind])
