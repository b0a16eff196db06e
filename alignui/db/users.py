"""Store methods for people and their agreement: roles, overlap k, gold items, shared pairs, removals, backup.

Owns: the `users` table (roles granted in the Admin tab; ALIGNUI_ADMINS stays
in the config and is merged in by the UI), the `overlap_k` setting, the
`gold_items` table (pairs with a known answer), handing an annotator a copy of
a pair that others have seen (one comparison row per annotator sharing
gen_a/gen_b, so agreement can be measured), soft-deleting an annotator's
votes, and a parquet copy of every table for backups.

Invariants:
- A shared copy is a new pending comparison row; the generations are never duplicated.
- One annotator never gets two rows for the same pair (checked inside the inserting transaction).
- Removing votes is a soft delete (deleted_at/deleted_by): nothing is lost, nothing is exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alignui.db.core import from_json, new_id, to_json
from alignui.db.records import Comparison
from alignui.db.votes import _COMPARISON_SELECT, _comparison
from alignui.errors import ConflictError, UserError, quoted
from alignui.vocab import ARENA_VERDICTS

GOLD_VERDICTS = ARENA_VERDICTS
MAX_OVERLAP = 20


@dataclass(frozen=True)
class UserSummary:
    name: str
    role: str
    votes: int
    last_vote: datetime | None


@dataclass(frozen=True)
class GoldItem:
    gen_a: str
    gen_b: str
    prompt_id: str
    verdict: str
    note: str | None
    created_by: str | None

    @property
    def item(self) -> str:
        return f"{self.gen_a}|{self.gen_b}"


class UsersMixin:
    """Mixed into Store; relies on Database.tx / query."""

    # -- roles -----------------------------------------------------------------------------------
    def set_role(self, name: str, role: str, *, by: str | None = None) -> None:
        if role not in ("annotator", "admin"):
            raise UserError(f"role must be 'annotator' or 'admin', got {role!r}")
        if not name or not name.strip():
            raise UserError("type the user name whose role should change")
        self.tx(lambda cur: cur.execute(
            "INSERT INTO users (name, role, updated_by, updated_at) VALUES (?, ?, ?, current_timestamp) "
            "ON CONFLICT (name) DO UPDATE SET role = excluded.role, updated_by = excluded.updated_by, "
            "updated_at = excluded.updated_at", [name.strip(), role, by]))

    def admin_names(self) -> frozenset[str]:
        """Names given the admin role in the Admin tab."""
        return frozenset(r[0] for r in self.query("SELECT name FROM users WHERE role = 'admin'"))

    def users_overview(self) -> list[UserSummary]:
        """Everyone with a role or a vote: role, decided votes, last vote."""
        rows = self.query("""
            WITH v AS (SELECT annotator AS name, count(verdict) AS votes, max(decided_at) AS last_vote
                       FROM comparisons WHERE deleted_at IS NULL AND annotator IS NOT NULL GROUP BY annotator)
            SELECT coalesce(u.name, v.name), coalesce(u.role, 'annotator'), coalesce(v.votes, 0), v.last_vote
            FROM users u FULL OUTER JOIN v ON u.name = v.name ORDER BY 1""")
        return [UserSummary(*r) for r in rows]

    # -- overlap k -------------------------------------------------------------------------------
    def overlap_k(self) -> int:
        """How many annotators should judge each annotation pair (1: no overlap)."""
        rows = self.query("SELECT value FROM settings WHERE key = 'overlap_k'")
        return int(from_json(rows[0][0])) if rows else 1

    def set_overlap_k(self, k: int, *, by: str | None = None) -> int:
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise UserError(f"overlap must be a whole number from 1 to {MAX_OVERLAP}, got {k!r}") from None
        if not 1 <= k <= MAX_OVERLAP:
            raise UserError(f"overlap must be from 1 (each pair judged once) to {MAX_OVERLAP}, got {k}")
        def work(cur):
            cur.execute("DELETE FROM settings WHERE key = 'overlap_k'")
            cur.execute("INSERT INTO settings (key, value, updated_by) VALUES ('overlap_k', ?, ?)", [to_json(k), by])

        self.tx(work)
        return k

    # -- gold items ------------------------------------------------------------------------------
    def add_gold(self, comparison_id: str, verdict: str, *, by: str | None = None,
                 note: str | None = None) -> GoldItem:
        """Make the pair behind `comparison_id` a gold item whose right answer is `verdict`."""
        if verdict not in GOLD_VERDICTS:
            raise UserError(f"a gold answer must be one of {', '.join(GOLD_VERDICTS)}, got {quoted(verdict)}")
        pair = self.get_comparison((comparison_id or "").strip())  # NotFoundError with a clear message
        if pair.kind != "annotate":
            raise UserError("only annotation pairs can be gold items (arena battles are blind model comparisons)")
        self.tx(lambda cur: cur.execute(
            "INSERT INTO gold_items (gen_a, gen_b, prompt_id, verdict, note, created_by) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (gen_a, gen_b) DO UPDATE SET verdict = excluded.verdict, note = excluded.note, "
            "created_by = excluded.created_by", [pair.gen_a, pair.gen_b, pair.prompt_id, verdict, note, by]))
        return next(g for g in self.gold_items() if (g.gen_a, g.gen_b) == (pair.gen_a, pair.gen_b))

    def remove_gold(self, comparison_id: str) -> None:
        pair = self.get_comparison(comparison_id)
        self.tx(lambda cur: cur.execute("DELETE FROM gold_items WHERE gen_a = ? AND gen_b = ?",
                                        [pair.gen_a, pair.gen_b]))

    def gold_items(self) -> list[GoldItem]:
        rows = self.query("SELECT gen_a, gen_b, prompt_id, verdict, note, created_by FROM gold_items "
                          "ORDER BY created_at, gen_a")
        return [GoldItem(*r) for r in rows]

    # -- what agreement is computed on -----------------------------------------------------------
    def decided_annotations(self) -> list[Comparison]:
        """Every decided, not deleted annotation comparison (skips included), oldest decision first."""
        rows = self.query(_COMPARISON_SELECT + " WHERE c.kind = 'annotate' AND c.deleted_at IS NULL "
                          "AND c.verdict IS NOT NULL ORDER BY c.decided_at, c.id")
        return [_comparison(r) for r in rows]

    # -- shared pairs (overlap) ------------------------------------------------------------------
    def claim_shared_pair(self, annotator: str, k: int, *, gold: bool = False) -> Comparison | None:
        """A pending copy, for `annotator`, of a pair fewer than `k` people have seen (or, with `gold`, of a
        gold item they have not seen); None when there is none. Pairs closest to k go first."""
        if not annotator:
            raise UserError("type your name (or sign in) first: shared pairs are handed to one named annotator")
        query = """
            WITH items AS (
                SELECT gen_a, gen_b, any_value(prompt_id) AS prompt_id, count(*) AS n, min(created_at) AS first,
                       coalesce(bool_or(annotator = ?), false) AS seen
                FROM comparisons WHERE kind = 'annotate' AND deleted_at IS NULL GROUP BY gen_a, gen_b)
            SELECT i.gen_a, i.gen_b, i.prompt_id FROM items i LEFT JOIN gold_items g USING (gen_a, gen_b)
            WHERE NOT i.seen AND """ + ("g.gen_a IS NOT NULL" if gold else "g.gen_a IS NULL AND i.n < ?") + """
            ORDER BY i.n DESC, i.first, i.gen_a LIMIT 1"""

        def work(cur) -> str | None:
            found = cur.execute(query, [annotator] if gold else [annotator, k]).fetchall()
            if not found:
                return None
            gen_a, gen_b, prompt_id = found[0]
            cid = new_id()
            cur.execute("INSERT INTO comparisons (id, prompt_id, gen_a, gen_b, kind, annotator, source, meta) "
                        "VALUES (?, ?, ?, ?, 'annotate', ?, 'overlap', ?)",
                        [cid, prompt_id, gen_a, gen_b, annotator, to_json({"shared": True, "gold": gold})])
            mine = cur.execute("SELECT count(*) FROM comparisons WHERE gen_a = ? AND gen_b = ? AND annotator = ? "
                               "AND deleted_at IS NULL", [gen_a, gen_b, annotator]).fetchone()[0]
            if mine != 1:  # a double click raced us: roll the copy back
                raise ConflictError(f"{annotator} already has pair {gen_a}|{gen_b}")
            return cid

        try:
            cid = self.tx(work)
        except ConflictError:
            return None
        return self.get_comparison(cid) if cid else None

    # -- removal ---------------------------------------------------------------------------------
    def delete_votes_by(self, annotator: str, *, by: str | None = None) -> int:
        """Soft-delete every comparison `annotator` made (a spammer, a test account); returns how many."""
        if not annotator or not annotator.strip():
            raise UserError("type the annotator whose votes should be removed")
        rows = self.tx(lambda cur: cur.execute(
            "UPDATE comparisons SET deleted_at = current_timestamp, deleted_by = ? "
            "WHERE annotator = ? AND deleted_at IS NULL RETURNING id", [by, annotator.strip()]).fetchall())
        return len(rows)

    # -- backup ----------------------------------------------------------------------------------
    def export_tables(self, out_dir: Path) -> Path:
        """Write every table as parquet (DuckDB's EXPORT DATABASE, one consistent read) into a new `out_dir`."""
        out_dir = Path(out_dir)
        if out_dir.exists() and any(out_dir.iterdir()):
            raise UserError(f"{out_dir} is not empty; back up into a new directory")
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        literal = str(out_dir.resolve()).replace("'", "''")  # EXPORT DATABASE takes no bound parameters
        self.cursor().execute(f"EXPORT DATABASE '{literal}' (FORMAT parquet)")
        return out_dir
