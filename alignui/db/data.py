"""Store methods for curating and exporting data: browse, filter, fix, soft-delete, count, snapshot index.

Owns: the Data tab's queries (a page of comparisons matching a BrowseFilter,
per-source and per-annotator counts), the two admin corrections (fix a
verdict, soft-delete a comparison, each with an audit row saying who and
when), the rows an export reads, and the `snapshots` index table.

Invariants:
- Nothing is ever hard-deleted: a deleted comparison keeps its row with
  deleted_at/deleted_by set, and every read here (and in votes.py) skips it.
- A fix or a delete and its audit row are one transaction.
- Changing the winner drops an edited chosen text (it was an edit of the old
  winner); the audit row keeps the old text.
- The arena is blind: an arena battle without a verdict is never listed, opened,
  fixed or counted by name here, whoever asks (admins included).
- `owner` scopes a read to one annotator's comparisons (the Data tab of an annotator).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from alignui.db.core import from_json, last_user_content, new_id, to_json
from alignui.db.records import KINDS, VERDICTS
from alignui.errors import NotFoundError, UserError, quoted

PENDING = "pending"
#: SQL over c = comparisons: not a pending arena battle (blind until its vote).
NOT_PENDING_BATTLE = "NOT (c.kind = 'arena' AND c.verdict IS NULL)"
NO_ANNOTATOR = "(none)"
BROWSE_SORTS = ("newest", "oldest")


@dataclass(frozen=True)
class BrowseFilter:
    """Which comparisons the Data tab lists; every field is optional (None = no filter)."""

    verdict: str | None = None  # one of VERDICTS, or 'pending'
    annotator: str | None = None  # a name, or '(none)' for comparisons without one
    source: str | None = None
    kind: str | None = None
    date_from: date | None = None  # created on or after (inclusive)
    date_to: date | None = None  # created on or before (inclusive)
    text: str | None = None  # case-insensitive substring of the prompt or either response
    include_deleted: bool = False
    owner: str | None = None  # only this annotator's comparisons (None: everyone's; set for non-admins)

    def __post_init__(self):
        if self.verdict and self.verdict not in (*VERDICTS, PENDING):
            raise UserError(f"verdict filter must be one of {', '.join((*VERDICTS, PENDING))}; "
                            f"got {quoted(self.verdict)}")
        if self.kind and self.kind not in KINDS:
            raise UserError(f"kind filter must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise UserError(f"the date range is empty ({self.date_from} is after {self.date_to}); swap the dates")

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions (over c = comparisons, p = prompts, ga/gb = generations) and their parameters."""
        conds, params = [NOT_PENDING_BATTLE] + ([] if self.include_deleted else ["c.deleted_at IS NULL"]), []
        if self.owner is not None:
            conds.append("c.annotator = ?")
            params.append(self.owner)
        if self.verdict == PENDING:
            conds.append("c.verdict IS NULL")
        elif self.verdict:
            conds.append("c.verdict = ?")
            params.append(self.verdict)
        if self.annotator == NO_ANNOTATOR:
            conds.append("c.annotator IS NULL")
        elif self.annotator:
            conds.append("c.annotator = ?")
            params.append(self.annotator)
        for column, value in (("c.source", self.source), ("c.kind", self.kind)):
            if value:
                conds.append(f"{column} = ?")
                params.append(value)
        if self.date_from:
            conds.append("CAST(c.created_at AS DATE) >= ?")
            params.append(self.date_from)
        if self.date_to:
            conds.append("CAST(c.created_at AS DATE) <= ?")
            params.append(self.date_to)
        if self.text and self.text.strip():
            needle = self.text.strip().lower()
            conds.append("(contains(lower(CAST(p.messages AS VARCHAR)), ?) OR contains(lower(ga.text), ?) "
                         "OR contains(lower(gb.text), ?))")
            params += [needle, needle, needle]
        return (" AND ".join(conds) or "TRUE"), params


class PendingBattleError(UserError):
    """A pending arena battle was asked for by id: it stays closed until its vote."""


class ExportRow(NamedTuple):
    """A decided comparison as an export reads it (messages and meta still JSON text)."""

    id: str
    kind: str
    source: str
    annotator: str | None
    verdict: str
    edited_chosen: str | None
    decided_at: datetime | None
    meta: str | None
    messages: str
    text_a: str
    text_b: str
    model_a: str
    model_b: str
    gen_a: str
    gen_b: str


@dataclass(frozen=True)
class ComparisonRow:
    """One line of the browse table (texts are full; the UI shortens them)."""

    id: str
    created_at: datetime
    kind: str
    source: str
    annotator: str | None
    verdict: str | None
    prompt: str
    text_a: str
    text_b: str
    model_a: str
    model_b: str
    deleted_at: datetime | None
    deleted_by: str | None


_FROM = """FROM comparisons c JOIN prompts p ON p.id = c.prompt_id
           JOIN generations ga ON ga.id = c.gen_a JOIN generations gb ON gb.id = c.gen_b"""


class DataMixin:
    """Mixed into Store; relies on Database.tx / query."""

    # -- browsing ----------------------------------------------------------------------------
    def browse(self, flt: BrowseFilter = BrowseFilter(), *, limit: int = 50, offset: int = 0,
               sort: str = "newest") -> tuple[list[ComparisonRow], int]:
        """One page of comparisons matching `flt` and the total number that match."""
        if sort not in BROWSE_SORTS:
            raise UserError(f"sort must be one of {BROWSE_SORTS}; got {sort!r}")
        where, params = flt.where()
        total = self.query(f"SELECT count(*) {_FROM} WHERE {where}", params)[0][0]
        order = "DESC" if sort == "newest" else "ASC"
        rows = self.query(
            f"""SELECT c.id, c.created_at, c.kind, c.source, c.annotator, c.verdict, p.messages, ga.text, gb.text,
                       ga.model_ref, gb.model_ref, c.deleted_at, c.deleted_by {_FROM} WHERE {where}
                ORDER BY c.created_at {order}, c.id {order} LIMIT ? OFFSET ?""",
            params + [max(1, int(limit)), max(0, int(offset))])
        out = [ComparisonRow(r[0], r[1], r[2], r[3], r[4], r[5], last_user_content(r[6]), *r[7:]) for r in rows]
        return out, total

    def filter_choices(self, owner: str | None = None) -> dict[str, list[str]]:
        """Distinct sources and annotators (for the filter dropdowns); of `owner`'s comparisons when given."""
        where, params = ("WHERE annotator = ?", [owner]) if owner is not None else ("", [])
        sources = [r[0] for r in self.query(f"SELECT DISTINCT source FROM comparisons {where} ORDER BY 1", params)]
        annotators = [r[0] or NO_ANNOTATOR for r in self.query(
            f"SELECT DISTINCT annotator FROM comparisons {where} ORDER BY annotator NULLS FIRST", params)]
        return {"source": sources, "annotator": annotators}

    def comparison_detail(self, comparison_id: str) -> dict[str, Any]:
        """Everything stored about one comparison (deleted ones included), plus its audit trail; a pending
        arena battle is refused (opening it would name its models before the vote)."""
        rows = self.query(
            f"""SELECT c.id, c.kind, c.source, c.annotator, c.verdict, c.edited_chosen, c.created_at, c.decided_at,
                       c.duration_ms, c.deleted_at, c.deleted_by, c.meta, p.messages, ga.text, gb.text,
                       ga.model_ref, gb.model_ref {_FROM} WHERE c.id = ?""", [comparison_id])
        if not rows:
            raise NotFoundError(f"no comparison with id {quoted(comparison_id)}: pick one from the table")
        keys = ("id", "kind", "source", "annotator", "verdict", "edited_chosen", "created_at", "decided_at",
                "duration_ms", "deleted_at", "deleted_by", "meta", "messages", "text_a", "text_b", "model_a", "model_b")
        detail = dict(zip(keys, rows[0]))
        if detail["kind"] == "arena" and detail["verdict"] is None:
            raise PendingBattleError(f"{comparison_id} is an arena battle still waiting for its vote: it cannot be "
                                     "opened, fixed or deleted before then (the arena is blind)")
        detail["meta"], detail["messages"] = from_json(detail["meta"]), from_json(detail["messages"])
        audit = self.query("SELECT action, old_verdict, new_verdict, actor, note, created_at FROM comparison_audit "
                           "WHERE comparison_id = ? ORDER BY created_at, id", [comparison_id])
        detail["audit"] = [dict(zip(("action", "old_verdict", "new_verdict", "actor", "note", "created_at"), a))
                           for a in audit]
        return detail

    def counts_by(self, column: str, owner: str | None = None) -> list[dict[str, Any]]:
        """Per-source or per-annotator counts: total, each verdict, pending, deleted (of `owner`'s comparisons
        when given). Pending arena battles are left out (their source would say which models meet)."""
        if column not in ("source", "annotator", "kind"):
            raise ValueError(f"cannot count by {column!r}")
        verdicts = ", ".join(f"count(*) FILTER (WHERE verdict = '{v}' AND deleted_at IS NULL) AS {v}"
                             for v in VERDICTS)
        rows = self.query_df(
            f"""SELECT coalesce({column}, '{NO_ANNOTATOR}') AS {column},
                       count(*) FILTER (WHERE deleted_at IS NULL) AS total, {verdicts},
                       count(*) FILTER (WHERE verdict IS NULL AND deleted_at IS NULL) AS pending,
                       count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted
                FROM comparisons c WHERE {NOT_PENDING_BATTLE} AND (? IS NULL OR annotator = ?)
                GROUP BY 1 ORDER BY total DESC, 1""", [owner, owner])
        return rows.to_dict("records")

    # -- corrections -------------------------------------------------------------------------
    def fix_verdict(self, comparison_id: str, verdict: str, *, actor: str | None, note: str | None = None) -> None:
        """Set a comparison's verdict (admin correction), with an audit row; refuse deleted or unknown ids."""
        if verdict not in VERDICTS:
            raise UserError(f"verdict must be one of {', '.join(VERDICTS)}; got {quoted(verdict)}")

        def work(cur) -> bool:
            old = cur.execute("SELECT verdict, edited_chosen, kind FROM comparisons "
                              "WHERE id = ? AND deleted_at IS NULL", [comparison_id]).fetchall()
            if not old:
                return False
            old_verdict, old_edit, kind = old[0]
            if kind == "arena" and old_verdict is None:  # a fix here would be a vote cast knowing nothing blind
                raise PendingBattleError(f"{comparison_id} is an arena battle still waiting for its vote: vote on "
                                         "it in the Arena tab")
            keep_edit = old_edit if verdict == old_verdict else None
            cur.execute("UPDATE comparisons SET verdict = ?, edited_chosen = ?, "
                        "decided_at = coalesce(decided_at, current_timestamp) WHERE id = ?",
                        [verdict, keep_edit, comparison_id])
            self._audit(cur, comparison_id, "fix_verdict", old_verdict, verdict, old_edit, actor, note)
            return True

        if not self.tx(work):
            raise NotFoundError(f"no comparison {quoted(comparison_id)} to fix (unknown or deleted)")

    def soft_delete(self, comparison_id: str, *, actor: str | None, note: str | None = None) -> None:
        """Mark a comparison deleted (kept in the file, hidden everywhere), with an audit row."""
        def work(cur) -> bool:
            hit = cur.execute("UPDATE comparisons SET deleted_at = current_timestamp, deleted_by = ? "
                              "WHERE id = ? AND deleted_at IS NULL RETURNING verdict", [actor, comparison_id]).fetchall()
            if hit:
                self._audit(cur, comparison_id, "delete", hit[0][0], None, None, actor, note)
            return bool(hit)

        if not self.tx(work):
            raise NotFoundError(f"no comparison {quoted(comparison_id)} to delete (unknown or already deleted)")

    @staticmethod
    def _audit(cur, comparison_id, action, old_verdict, new_verdict, old_edit, actor, note) -> None:
        cur.execute("INSERT INTO comparison_audit (id, comparison_id, action, old_verdict, new_verdict, "
                    "old_edited_chosen, actor, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [new_id(), comparison_id, action, old_verdict, new_verdict, old_edit, actor, note])

    # -- export ------------------------------------------------------------------------------
    def export_rows(self, kinds: tuple[str, ...] = ("annotate",), sources: tuple[str, ...] | None = None
                    ) -> list[ExportRow]:
        """Decided, not deleted comparisons of `kinds` (every verdict: a policy may need the ties), ordered by id."""
        params: list[Any] = [list(kinds)]
        source_cond = ""
        if sources:
            source_cond = " AND list_contains(?, c.source)"
            params.append(list(sources))
        rows = self.query(
            f"""SELECT c.id, c.kind, c.source, c.annotator, c.verdict, c.edited_chosen, c.decided_at, c.meta,
                       p.messages, ga.text, gb.text, ga.model_ref, gb.model_ref, c.gen_a, c.gen_b {_FROM}
                WHERE c.deleted_at IS NULL AND c.verdict IS NOT NULL AND list_contains(?, c.kind){source_cond}
                ORDER BY c.id""", params)
        return [ExportRow(*r) for r in rows]

    def export_table(self, kinds: tuple[str, ...] = ("annotate",), sources: tuple[str, ...] | None = None):
        """export_rows as one Arrow table, shaped in SQL (no Python object per row): prompt as a list of
        {role, content} structs, chosen/rejected texts (the edit wins), models, edited, decided_at as text."""
        params: list[Any] = [list(kinds)] + ([list(sources)] if sources else [])
        source_cond = " AND list_contains(?, c.source)" if sources else ""
        won_a = "c.verdict = 'a'"
        return self.cursor().sql(
            f"""SELECT c.id, c.kind, c.source, c.annotator, c.verdict, c.gen_a, c.gen_b,
                       from_json(p.messages, '[{{"role": "VARCHAR", "content": "VARCHAR"}}]') AS prompt,
                       coalesce(c.edited_chosen, CASE WHEN {won_a} THEN ga.text ELSE gb.text END) AS chosen,
                       CASE WHEN {won_a} THEN gb.text ELSE ga.text END AS rejected,
                       CASE WHEN {won_a} THEN ga.model_ref ELSE gb.model_ref END AS chosen_model,
                       CASE WHEN {won_a} THEN gb.model_ref ELSE ga.model_ref END AS rejected_model,
                       c.edited_chosen IS NOT NULL AS edited, CAST(c.decided_at AS VARCHAR) AS decided_at,
                       CAST(c.meta AS VARCHAR) AS meta {_FROM}
                WHERE c.deleted_at IS NULL AND c.verdict IS NOT NULL AND list_contains(?, c.kind){source_cond}
                ORDER BY c.id""", params=params).to_arrow_table()

    def verdict_histogram(self, kinds: tuple[str, ...] = ("annotate",),
                          sources: tuple[str, ...] | None = None) -> dict[str, int]:
        """Counts of every verdict (and pending, and deleted) over the comparisons an export considers."""
        params: list[Any] = [list(kinds)] + ([list(sources)] if sources else [])
        cond = "list_contains(?, kind)" + (" AND list_contains(?, source)" if sources else "")
        rows = self.query(f"""SELECT CASE WHEN deleted_at IS NOT NULL THEN 'deleted' ELSE coalesce(verdict, 'pending')
                              END, count(*) FROM comparisons WHERE {cond} GROUP BY 1""", params)
        counts = {v: 0 for v in (*VERDICTS, PENDING, "deleted")}
        counts.update(dict(rows))
        return counts

    def count_kind(self, kind: str) -> int:
        return self.query("SELECT count(*) FROM comparisons WHERE kind = ? AND deleted_at IS NULL "
                          "AND verdict IN ('a', 'b')", [kind])[0][0]

    # -- snapshots index ---------------------------------------------------------------------
    def record_snapshot(self, manifest: dict[str, Any], path: str) -> None:
        """Index an exported snapshot (the directory and its manifest stay the source of truth)."""
        self.tx(lambda cur: cur.execute(
            "INSERT INTO snapshots (id, path, rows, test_rows, sha256, filters, manifest) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [manifest["id"], path, manifest["rows"], manifest["test_rows"], manifest["sha256"],
             to_json(manifest.get("filters")), to_json(manifest)]))

    def list_snapshot_records(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.query("SELECT id, path, rows, test_rows, sha256, created_at FROM snapshots "
                          "ORDER BY created_at DESC, id LIMIT ?", [limit])
        return [dict(zip(("id", "path", "rows", "test_rows", "sha256", "created_at"), r)) for r in rows]
