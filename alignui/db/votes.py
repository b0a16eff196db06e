"""Store methods for prompts, generations and comparisons (annotation and arena share them).

Owns: saving a generated pair as prompt + two generations + one pending
comparison in one transaction, deciding a comparison exactly once, undoing
a decision, and reading comparisons back with their texts.

Invariants:
- `decide` is a single conditional UPDATE: of two concurrent votes on one
  pair, exactly one wins; the other gets ConflictError and changes nothing.
- A pending comparison belongs to the annotator it was generated for (or handed
  to by overlap): a vote naming anyone else is refused (NotYourPairError) and
  changes nothing. Only a comparison without an annotator is open to anyone.
- Nothing here returns before its transaction has committed.
"""

from __future__ import annotations

from typing import Any

from alignui.db.core import from_json, new_id, to_json
from alignui.db.records import (KINDS, VERDICTS, Comparison, Messages, NewGeneration, Prompt,
                                messages_hash)
from alignui.errors import ConflictError, NotFoundError, UserError, quoted, text_arg


class NotYourPairError(UserError):
    """A vote on a pending comparison that was handed to another annotator."""

_COMPARISON_SELECT = """
    SELECT c.id, c.prompt_id, c.kind, p.messages, ga.text, gb.text, ga.model_ref, gb.model_ref,
           c.verdict, c.edited_chosen, c.annotator, c.created_at, c.decided_at, c.duration_ms, c.gen_a, c.gen_b
    FROM comparisons c
    JOIN prompts p ON p.id = c.prompt_id
    JOIN generations ga ON ga.id = c.gen_a
    JOIN generations gb ON gb.id = c.gen_b
"""


def _comparison(row: tuple) -> Comparison:
    return Comparison(
        id=row[0], prompt_id=row[1], kind=row[2], messages=from_json(row[3]), text_a=row[4], text_b=row[5],
        model_a=row[6], model_b=row[7], verdict=row[8], edited_chosen=row[9], annotator=row[10],
        created_at=row[11], decided_at=row[12], duration_ms=row[13], gen_a=row[14], gen_b=row[15])


def validate_messages(messages: Messages) -> Messages:
    """The conversation as plain {role, content} dicts; UserError when it is malformed, holds no user text or
    holds text that cannot be stored (a lone surrogate)."""
    if not messages or not all(isinstance(m, dict) and m.get("role") and isinstance(m.get("content"), str)
                               for m in messages):
        raise UserError("a prompt must be a non-empty list of {role, content} messages")
    for m in messages:
        text_arg(m["content"], f"{m['role']} message" if m["role"] != "user" else "prompt")
    if not any(m["role"] == "user" and m["content"].strip() for m in messages):
        raise UserError("the prompt is empty: type a question or instruction first")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


class VotesMixin:
    """Mixed into Store; relies on Database.tx / query."""

    # -- prompts -----------------------------------------------------------------------------
    def _insert_generations(self, cur, prompt_id: str, gens) -> list[str]:
        """Insert generations of one prompt in one statement; returns their new ids in order."""
        gens = list(gens)
        ids = [new_id() for _ in gens]
        if gens:
            cur.execute("INSERT INTO generations (id, prompt_id, model_ref, params, text, n_tokens, latency_ms) VALUES "
                        + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(gens)),
                        [v for gid, gen in zip(ids, gens) for v in (gid, prompt_id, gen.model_ref, to_json(gen.params),
                                                                    gen.text, gen.n_tokens, gen.latency_ms)])
        return ids

    def _prompt_of_content(self, cur, messages: Messages, source: str, meta: dict | None) -> str:
        """The id of the oldest stored prompt with exactly these messages, inserting it first if it is new."""
        row = cur.execute("SELECT id FROM prompts WHERE content_hash = ? ORDER BY created_at, id LIMIT 1",
                          [messages_hash(messages)]).fetchone()
        return row[0] if row else self._insert_prompt(cur, messages, source, "train", meta)

    def _insert_prompt(self, cur, messages: Messages, source: str, split: str, meta: dict | None) -> str:
        pid = new_id()
        cur.execute("INSERT INTO prompts (id, messages, content_hash, source, split, meta) VALUES (?, ?, ?, ?, ?, ?)",
                    [pid, to_json(messages), messages_hash(messages), source, split, to_json(meta)])
        return pid

    def _prompt_for(self, cur, messages: Messages, prompt_id: str | None, prompt_source: str | None,
                    prompt_meta: dict | None) -> tuple[str, Messages]:
        """(id, stored messages) of the prompt a new generation is saved on: `prompt_id` when it names a stored one
        (NotFoundError when none), else the stored prompt with these messages when `prompt_source` is given
        (inserted with that source and `prompt_meta` if new), else a new prompt."""
        if prompt_id:
            row = cur.execute("SELECT messages FROM prompts WHERE id = ?", [prompt_id]).fetchone()
            if row is None:
                raise NotFoundError(f"no prompt with id {quoted(prompt_id)}: nothing was saved")
            return prompt_id, from_json(row[0])
        if prompt_source is not None:
            return self._prompt_of_content(cur, messages, prompt_source, prompt_meta), messages
        return self._insert_prompt(cur, messages, "user", "train", None), messages

    def add_prompt(self, messages: Messages, *, source: str = "user", split: str = "train",
                   meta: dict | None = None) -> str:
        messages = validate_messages(messages)
        return self.tx(lambda cur: self._insert_prompt(cur, messages, source, split, meta))

    def get_prompt(self, prompt_id: str) -> Prompt:
        rows = self.query("SELECT id, messages, source, split, created_at FROM prompts WHERE id = ?", [prompt_id])
        if not rows:
            raise NotFoundError(f"no prompt with id {quoted(prompt_id)}")
        r = rows[0]
        return Prompt(id=r[0], messages=from_json(r[1]), source=r[2], split=r[3], created_at=r[4])

    # -- pairs -------------------------------------------------------------------------------
    def save_pair(self, messages: Messages, gen_a: NewGeneration, gen_b: NewGeneration, *,
                  kind: str = "annotate", annotator: str | None = None, prompt_id: str | None = None,
                  source: str = "app", meta: dict[str, Any] | None = None,
                  prompt_source: str | None = None, prompt_meta: dict | None = None) -> Comparison:
        """Store both generations and a pending comparison, in one transaction, on the prompt `_prompt_for` picks.

        Returns the comparison as stored, built from what was written (one small statement per table, no join read
        back: under load every statement is a GIL hand-over, bench/concurrent_annotators.py)."""
        if kind not in KINDS:
            raise UserError(f"kind must be one of {KINDS}, got {kind!r}")
        messages = validate_messages(messages)

        def work(cur) -> Comparison:
            pid, stored = self._prompt_for(cur, messages, prompt_id, prompt_source, prompt_meta)
            ids = self._insert_generations(cur, pid, (gen_a, gen_b))
            cid = new_id()
            created = cur.execute(
                "INSERT INTO comparisons (id, prompt_id, gen_a, gen_b, kind, annotator, source, meta)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING created_at",
                [cid, pid, ids[0], ids[1], kind, annotator, source, to_json(meta)]).fetchone()[0]
            return Comparison(id=cid, prompt_id=pid, kind=kind, messages=stored, text_a=gen_a.text, text_b=gen_b.text,
                              model_a=gen_a.model_ref, model_b=gen_b.model_ref, verdict=None, edited_chosen=None,
                              annotator=annotator, created_at=created, decided_at=None, duration_ms=None,
                              gen_a=ids[0], gen_b=ids[1])

        return self.tx(work)

    def get_comparison(self, comparison_id: str) -> Comparison:
        rows = self.query(_COMPARISON_SELECT + " WHERE c.id = ? AND c.deleted_at IS NULL", [comparison_id])
        if not rows:
            raise NotFoundError(f"no pair with id {quoted(comparison_id)}: generate a pair first and vote on its id")
        return _comparison(rows[0])

    def decide(self, comparison_id: str, verdict: str, *, annotator: str | None = None,
               edited_chosen: str | None = None, duration_ms: float | None = None,
               allowed: tuple[str, ...] = VERDICTS, kind: str = "annotate",
               claimable: str | None = None) -> Comparison:
        """Record the verdict on a pending comparison of `kind`; refuse unknown ids, ids of the other kind
        (an arena battle is not voted through annotation, nor the reverse), bad verdicts, second votes and
        votes by someone other than its annotator (`claimable`: an owner name the voter may take over too,
        the shared 'anonymous' of a browser that was not signed in yet)."""
        if verdict not in allowed:
            raise UserError(f"verdict must be one of {', '.join(allowed)}; got {quoted(verdict)}")
        if edited_chosen is not None and verdict not in ("a", "b"):
            raise UserError("an edited response needs a winner: vote 'a' or 'b' to save an edit")
        edited = edited_chosen if edited_chosen and edited_chosen.strip() else None

        def work(cur) -> bool:
            hit = cur.execute(
                """UPDATE comparisons SET verdict = ?, annotator = coalesce(?, annotator), edited_chosen = ?,
                   duration_ms = ?, decided_at = current_timestamp
                   WHERE id = ? AND kind = ? AND verdict IS NULL AND deleted_at IS NULL
                   AND (?::VARCHAR IS NULL OR annotator IS NULL OR annotator = ? OR annotator = ?) RETURNING id""",
                [verdict, annotator, edited, duration_ms, comparison_id, kind, annotator, annotator,
                 claimable]).fetchall()
            return bool(hit)

        if not self.tx(work):
            current = self._of_kind(comparison_id, kind)
            if current.verdict is None:
                thing = "battle" if kind == "arena" else "pair"
                raise NotYourPairError(f"{thing} {comparison_id} was handed to another annotator, so {annotator} "
                                       f"cannot vote on it: vote on the {thing}s you generate or are handed")
            raise ConflictError(f"pair {comparison_id} was already decided ({current.verdict}); nothing changed")
        return self.get_comparison(comparison_id)

    def _of_kind(self, comparison_id: str, kind: str) -> Comparison:
        """The comparison, or NotFoundError when it is unknown or of the other kind."""
        current = self.get_comparison(comparison_id)  # raises NotFoundError for unknown ids
        if current.kind != kind:
            where = "/arena_vote (the Arena tab)" if current.kind == "arena" else "/submit_vote (the Annotate tab)"
            raise NotFoundError(f"{comparison_id} is an {current.kind} {'battle' if current.kind == 'arena' else 'pair'}"
                                f", not an {kind} one: vote on it through {where}")
        return current

    def undo(self, comparison_id: str, *, annotator: str | None = None, kind: str = "annotate") -> Comparison:
        """Reopen a decided comparison (only the annotator who decided it, when one is given)."""
        def work(cur) -> bool:
            hit = cur.execute(
                """UPDATE comparisons SET verdict = NULL, edited_chosen = NULL, decided_at = NULL, duration_ms = NULL
                   WHERE id = ? AND kind = ? AND verdict IS NOT NULL AND deleted_at IS NULL
                   AND (? IS NULL OR annotator = ?) RETURNING id""",
                [comparison_id, kind, annotator, annotator]).fetchall()
            return bool(hit)

        if not self.tx(work):
            current = self._of_kind(comparison_id, kind)
            if current.verdict is None:
                raise ConflictError(f"pair {comparison_id} has no verdict to undo")
            raise ConflictError(f"pair {comparison_id} was decided by {current.annotator}, not {annotator}")
        return self.get_comparison(comparison_id)

    def vote_counts(self, kind: str = "annotate") -> dict[str, int]:
        """Decided comparisons by verdict, plus 'pending' and 'total'."""
        rows = self.query("SELECT coalesce(verdict, 'pending'), count(*) FROM comparisons "
                          "WHERE kind = ? AND deleted_at IS NULL GROUP BY 1", [kind])
        counts = {v: 0 for v in (*VERDICTS, "pending")}
        counts.update({v: n for v, n in rows})
        counts["total"] = sum(n for v, n in rows if v != "pending")
        return counts
