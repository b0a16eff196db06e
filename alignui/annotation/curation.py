"""Curating stored comparisons: browse a page, open one, fix a verdict, soft-delete, count by source/annotator.

Owns: the typed functions the Data tab calls (one per callback): parsing the
filter widgets into a BrowseFilter (dates as YYYY-MM-DD, with a message that
says how to fix a bad one), paging, and the two admin corrections, each
checked with `require(identity, "fix_verdict" / "delete")` on the server side.

Invariant: nothing here deletes a row; corrections keep an audit trail (db/data.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from alignui.db.data import NO_ANNOTATOR, PENDING, BrowseFilter
from alignui.errors import UserError
from alignui.team.identity import Identity, require

ANY = "any"
PAGE_SIZE = 25
COLUMNS = ("id", "created", "source", "annotator", "verdict", "prompt", "response A", "response B")


def _date(text: str | None, label: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{label} must be a date like 2026-01-31, got {text!r}") from None


def make_filter(verdict: str | None = None, annotator: str | None = None, source: str | None = None,
                date_from: str | None = None, date_to: str | None = None, text: str | None = None,
                include_deleted: bool = False) -> BrowseFilter:
    """A BrowseFilter from the filter widgets ('any' or empty means no filter)."""
    pick = (lambda v: None if not v or v == ANY else v)
    return BrowseFilter(verdict=pick(verdict), annotator=pick(annotator), source=pick(source),
                        date_from=_date(date_from, "'from' date"), date_to=_date(date_to, "'to' date"),
                        text=(text or "").strip() or None, include_deleted=include_deleted)


@dataclass(frozen=True)
class BrowsePage:
    rows: list[list[Any]]  # one list per comparison, in COLUMNS order, texts shortened
    total: int
    page: int
    pages: int

    @property
    def caption(self) -> str:
        return f"{self.total} comparisons match · page {self.page} of {self.pages}"


def _short(text: str | None, n: int = 80) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[:n - 1] + "…"


def browse_page(store, flt: BrowseFilter, page: int = 1, page_size: int = PAGE_SIZE) -> BrowsePage:
    """Page `page` (1-based, clamped) of the comparisons matching `flt`, newest first."""
    total = store.browse(flt, limit=1)[1]
    pages = max(1, math.ceil(total / page_size))
    page = min(max(1, int(page or 1)), pages)
    rows, _ = store.browse(flt, limit=page_size, offset=(page - 1) * page_size)
    table = [[r.id, r.created_at.strftime("%Y-%m-%d %H:%M"), r.source, r.annotator or NO_ANNOTATOR,
              (r.verdict or PENDING) + (" (deleted)" if r.deleted_at else ""), _short(r.prompt), _short(r.text_a),
              _short(r.text_b)] for r in rows]
    return BrowsePage(table, total, page, pages)


def open_comparison(store, comparison_id: str) -> dict[str, Any]:
    """Everything about one comparison (see Store.comparison_detail); UserError for an empty or unknown id."""
    if not (comparison_id or "").strip():
        raise UserError("pick a comparison: click a row of the table (or paste its id)")
    return store.comparison_detail(comparison_id.strip())


def fix_verdict(store, comparison_id: str, verdict: str, identity: Identity, note: str | None = None) -> str:
    """Change a verdict (admins only); returns the status line."""
    require(identity, "fix_verdict")
    before = open_comparison(store, comparison_id)
    store.fix_verdict(before["id"], verdict, actor=identity.name, note=note)
    return f"Verdict of {before['id']} changed from {before['verdict'] or PENDING} to {verdict} by {identity.name}."


def delete_comparison(store, comparison_id: str, identity: Identity, note: str | None = None) -> str:
    """Soft-delete a comparison (admins only): hidden everywhere and never exported, kept in the file."""
    require(identity, "delete")
    before = open_comparison(store, comparison_id)
    store.soft_delete(before["id"], actor=identity.name, note=note)
    return f"Comparison {before['id']} deleted by {identity.name} (kept in the database, excluded from exports)."


def counts(store) -> dict[str, list[list[Any]]]:
    """Per-source and per-annotator tables: name, total, a, b, tie, both_bad, skip, pending, deleted."""
    keys = ("total", "a", "b", "tie", "both_bad", "skip", "pending", "deleted")
    return {column: [[r[column]] + [int(r[k]) for k in keys] for r in store.counts_by(column)]
            for column in ("source", "annotator")}
