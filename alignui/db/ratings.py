"""Store methods for thumbs up/down ratings of single responses (the `ratings` table, migration 7).

Owns: saving one generated response as prompt + generation + one pending rating in one transaction,
rating it exactly once, the thumbs counters, the pool draw of the thumbs mode, the rows export turns
into TRL's unpaired format, and bulk inserts of imported unpaired rows.

Invariants (the same rules as pairs, alignui.db.votes):
- `rate` is a single conditional UPDATE: of two concurrent ratings of one item, exactly one wins; the
  other gets ConflictError and changes nothing.
- A pending rating belongs to the annotator it was generated for: a rating by anyone else is refused
  (NotYourItemError) and changes nothing; only an item without an annotator (or the `claimable` owner,
  the shared 'anonymous' of a browser not signed in yet) is open to the caller.
- The thumbs pool draw never hands out held-out prompts (they belong to the arena) and never a prompt
  the annotator already rated.
- Nothing here returns before its transaction has committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from alignui.db.core import from_json, last_user_content, new_id, to_json
from alignui.db.pool import CONVERSATION_SOURCE, VARIANT_SOURCE
from alignui.db.records import Messages, NewGeneration, Prompt
from alignui.errors import ConflictError, NotFoundError, UserError, quoted

LABELS = ("up", "down", "skip")
_POOL = f"p.split = 'train' AND p.source NOT IN ('{CONVERSATION_SOURCE}', '{VARIANT_SOURCE}')"


class NotYourItemError(UserError):
    """A rating of a pending response that was generated for another annotator."""


@dataclass(frozen=True)
class Rating:
    id: str
    prompt_id: str
    generation_id: str
    messages: Messages
    text: str
    model_ref: str
    label: str | None
    annotator: str | None
    created_at: datetime | None = None
    decided_at: datetime | None = None
    duration_ms: float | None = None


_SELECT = """
    SELECT r.id, r.prompt_id, r.generation_id, p.messages, g.text, g.model_ref, r.label, r.annotator,
           r.created_at, r.decided_at, r.duration_ms
    FROM ratings r JOIN prompts p ON p.id = r.prompt_id JOIN generations g ON g.id = r.generation_id
"""


def _rating(row: tuple) -> Rating:
    return Rating(id=row[0], prompt_id=row[1], generation_id=row[2], messages=from_json(row[3]), text=row[4],
                  model_ref=row[5], label=row[6], annotator=row[7], created_at=row[8], decided_at=row[9],
                  duration_ms=row[10])


class RatingsMixin:
    """Mixed into Store; relies on Database.tx / query and VotesMixin's insert helpers."""

    def save_single(self, messages: Messages, gen: NewGeneration, *, annotator: str | None,
                    prompt_id: str | None = None, source: str = "app", meta: dict | None = None,
                    prompt_source: str | None = None, prompt_meta: dict | None = None) -> Rating:
        """Store the generation and a pending rating, in one transaction, on the prompt VotesMixin._prompt_for
        picks; returns the rating as stored, built from what was written (as save_pair)."""
        from alignui.db.votes import validate_messages

        messages = validate_messages(messages)

        def work(cur) -> Rating:
            pid, stored = self._prompt_for(cur, messages, prompt_id, prompt_source, prompt_meta)
            (gid,) = self._insert_generations(cur, pid, (gen,))
            rid = new_id()
            created = cur.execute("INSERT INTO ratings (id, prompt_id, generation_id, annotator, source, meta)"
                                  " VALUES (?, ?, ?, ?, ?, ?) RETURNING created_at",
                                  [rid, pid, gid, annotator, source, to_json(meta)]).fetchone()[0]
            return Rating(id=rid, prompt_id=pid, generation_id=gid, messages=stored, text=gen.text,
                          model_ref=gen.model_ref, label=None, annotator=annotator, created_at=created)

        return self.tx(work)

    def get_rating(self, rating_id: str) -> Rating:
        rows = self.query(_SELECT + " WHERE r.id = ? AND r.deleted_at IS NULL", [rating_id])
        if not rows:
            raise NotFoundError(f"no response with id {quoted(rating_id)}: call /generate_single first and rate "
                                "the id it returns")
        return _rating(rows[0])

    def rate(self, rating_id: str, label: str, *, annotator: str | None, duration_ms: float | None = None,
             claimable: str | None = None) -> Rating:
        """Record thumbs `label` on a pending rating; refuse unknown ids, bad labels, second ratings and
        ratings by someone other than its annotator."""
        if label not in LABELS:
            raise UserError(f"label must be one of {', '.join(LABELS)}; got {quoted(label)}")

        def work(cur) -> bool:
            return bool(cur.execute(
                """UPDATE ratings SET label = ?, annotator = coalesce(?, annotator), duration_ms = ?,
                   decided_at = current_timestamp
                   WHERE id = ? AND label IS NULL AND deleted_at IS NULL
                   AND (?::VARCHAR IS NULL OR annotator IS NULL OR annotator = ? OR annotator = ?) RETURNING id""",
                [label, annotator, duration_ms, rating_id, annotator, annotator, claimable]).fetchall())

        if not self.tx(work):
            current = self.get_rating(rating_id)  # NotFoundError for unknown ids
            if current.label is None:
                raise NotYourItemError(f"response {rating_id} was generated for another annotator, so {annotator} "
                                       "cannot rate it: rate the responses you generate")
            raise ConflictError(f"response {rating_id} was already rated ({current.label}); nothing changed")
        return self.get_rating(rating_id)

    def rating_counts(self, annotator: str | None = None) -> dict[str, int]:
        """Ratings by label (up, down, skip, pending) and 'total' decided; one annotator's when named."""
        rows = self.query("SELECT coalesce(label, 'pending'), count(*) FROM ratings WHERE deleted_at IS NULL "
                          "AND (?::VARCHAR IS NULL OR annotator = ?) GROUP BY 1", [annotator, annotator])
        counts = {label: 0 for label in (*LABELS, "pending")}
        counts.update({label: int(n) for label, n in rows})
        counts["total"] = sum(n for label, n in counts.items() if label != "pending")
        return counts

    def next_thumb_prompt(self, *, annotator: str | None, salt: int = 0,
                          exclude: tuple[str, ...] = ()) -> Prompt | None:
        """A pool prompt to rate a response to: never held out, never one `annotator` rated already; fewest
        ratings first, then a salted hash (so two annotators rarely draw the same prompt)."""
        rows = self.query(
            f"""WITH r AS (SELECT prompt_id, count(*) FILTER (WHERE label IN ('up', 'down')) AS n,
                                  coalesce(bool_or(label IS NOT NULL AND annotator = ?), false) AS seen
                           FROM ratings WHERE deleted_at IS NULL GROUP BY 1)
                SELECT p.id, p.messages, p.source, p.split, p.created_at FROM prompts p
                LEFT JOIN r ON r.prompt_id = p.id
                WHERE {_POOL} AND NOT coalesce(r.seen, false) AND NOT list_contains(?, p.id)
                ORDER BY coalesce(r.n, 0), hash(p.id || ?) LIMIT 1""",
            [annotator, list(exclude), str(salt)])
        if not rows:
            return None
        r = rows[0]
        return Prompt(id=r[0], messages=from_json(r[1]), source=r[2], split=r[3], created_at=r[4])

    def ratings_export_table(self, sources: list[str] | None = None):
        """The decided up/down ratings (not deleted, train prompts only) as Arrow columns id, prompt (messages),
        completion, label (bool: up), source, annotator, model, decided_at; ordered by id."""
        import pyarrow as pa

        rows = self.query(
            """SELECT r.id, p.messages, g.text, r.label = 'up', r.source, r.annotator, g.model_ref,
                      CAST(r.decided_at AS VARCHAR)
               FROM ratings r JOIN prompts p ON p.id = r.prompt_id JOIN generations g ON g.id = r.generation_id
               WHERE r.deleted_at IS NULL AND r.label IN ('up', 'down') AND p.split = 'train'
               AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], r.source)) ORDER BY r.id""",
            [sources, sources])
        names = ("id", "prompt", "completion", "label", "source", "annotator", "model", "decided_at")
        columns = list(zip(*rows)) if rows else [[] for _ in names]
        data: dict[str, Any] = dict(zip(names, columns))
        data["prompt"] = [from_json(m) for m in data["prompt"]]
        message = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
        types = {"prompt": message, "label": pa.bool_()}
        return pa.table({n: pa.array(list(data[n]), types.get(n, pa.string())) for n in names})

    def add_ratings_bulk(self, rows: list[tuple[Messages, str, bool]], *, source: str,
                         annotator: str | None = None) -> tuple[int, int]:
        """Insert imported (prompt messages, completion, desirable) rows as decided ratings, in one transaction:
        a prompt found by content is reused; a row already stored from `source` (same prompt, completion and
        label) is skipped. Returns (inserted, already stored)."""
        def work(cur) -> tuple[int, int]:
            added = 0
            for messages, completion, desirable in rows:
                pid, label = self._find_or_insert_prompt(cur, messages, source), "up" if desirable else "down"
                if cur.execute("SELECT count(*) FROM ratings r JOIN generations g ON g.id = r.generation_id "
                               "WHERE r.prompt_id = ? AND r.source = ? AND r.label = ? AND g.text = ? "
                               "AND r.deleted_at IS NULL", [pid, source, label, completion]).fetchone()[0]:
                    continue
                (gid,) = self._insert_generations(cur, pid, (NewGeneration(model_ref=source, text=completion),))
                cur.execute("INSERT INTO ratings (id, prompt_id, generation_id, label, annotator, source, decided_at)"
                            " VALUES (?, ?, ?, ?, ?, ?, current_timestamp)",
                            [new_id(), pid, gid, label, annotator, source])
                added += 1
            return added, len(rows) - added

        return self.tx(work) if rows else (0, 0)

    def _find_or_insert_prompt(self, cur, messages: Messages, source: str) -> str:
        from alignui.db.records import messages_hash

        found = cur.execute("SELECT id FROM prompts WHERE content_hash = ? ORDER BY created_at LIMIT 1",
                            [messages_hash(messages)]).fetchall()
        return found[0][0] if found else self._insert_prompt(cur, messages, source, "train", None)

    def ratings_by_annotator(self, annotator: str | None = None, limit: int = 20) -> pd.DataFrame:
        """The latest decided ratings (one annotator's when named), newest first: id, decided_at, annotator,
        label, prompt (its last user turn), response."""
        rows = self.query(
            """SELECT r.id, CAST(r.decided_at AS VARCHAR), r.annotator, r.label, p.messages, g.text
               FROM ratings r JOIN prompts p ON p.id = r.prompt_id JOIN generations g ON g.id = r.generation_id
               WHERE r.deleted_at IS NULL AND r.label IS NOT NULL AND (?::VARCHAR IS NULL OR r.annotator = ?)
               ORDER BY r.decided_at DESC, r.id DESC LIMIT ?""", [annotator, annotator, limit])
        out = [(rid, decided, who, label, last_user_content(messages), text)
               for rid, decided, who, label, messages, text in rows]
        return pd.DataFrame(out, columns=["id", "decided_at", "annotator", "label", "prompt", "response"])

    def browse_ratings(self, *, owner: str | None, label: str | None = None, text: str | None = None,
                       include_deleted: bool = False, limit: int = 25, offset: int = 0) -> tuple[list[tuple], int]:
        """(rows, total) of the ratings matching the filters, newest first: id, created_at, annotator, label
        ('pending' when not rated yet), prompt (its last user turn), response, deleted_at. `owner`: only that
        annotator's (None: everyone's); `text` matches the prompt or the response, case-insensitively."""
        where = ["(?::VARCHAR IS NULL OR r.annotator = ?)", "(?::VARCHAR IS NULL OR coalesce(r.label, 'pending') = ?)",
                 "(?::VARCHAR IS NULL OR p.messages::VARCHAR ILIKE ? OR g.text ILIKE ?)"]
        if not include_deleted:
            where.append("r.deleted_at IS NULL")
        like = f"%{text}%" if text else None
        params = [owner, owner, label, label, text, like, like]
        base = ("FROM ratings r JOIN prompts p ON p.id = r.prompt_id JOIN generations g ON g.id = r.generation_id "
                "WHERE " + " AND ".join(where))
        total = int(self.query(f"SELECT count(*) {base}", params)[0][0])
        rows = self.query(f"""SELECT r.id, r.created_at, r.annotator, coalesce(r.label, 'pending'), p.messages, g.text,
                                     r.deleted_at {base} ORDER BY r.created_at DESC, r.id DESC LIMIT ? OFFSET ?""",
                          params + [limit, offset])
        return [(rid, created, who, label_, last_user_content(messages), response, deleted)
                for rid, created, who, label_, messages, response, deleted in rows], total

    def delete_rating(self, rating_id: str, *, actor: str | None) -> str | None:
        """Soft-delete a rating (kept in the file, excluded from counts, the pool draw and exports); returns its
        annotator. NotFoundError when it is unknown or already deleted."""
        rows = self.tx(lambda cur: cur.execute(
            "UPDATE ratings SET deleted_at = current_timestamp, deleted_by = ? WHERE id = ? AND deleted_at IS NULL "
            "RETURNING annotator", [actor, rating_id]).fetchall())
        if not rows:
            raise NotFoundError(f"no thumbs rating {quoted(rating_id)} to delete (unknown or already deleted)")
        return rows[0][0]

