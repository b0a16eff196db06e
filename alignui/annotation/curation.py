"""Curating stored comparisons: browse a page, open one, fix a verdict, soft-delete, count by source/annotator;
and the thumbs ratings beside them: browse a page, soft-delete one.

Owns: the typed functions the Data tab calls (one per callback): parsing the
filter widgets into a BrowseFilter (dates as YYYY-MM-DD, with a message that
says how to fix a bad one), paging, and the two admin corrections, each
checked with `require(identity, "fix_verdict" / "delete")` on the server side.

Who sees what (every read takes the viewer's Identity):
- an admin sees every comparison; an annotator sees only their own (browse,
  open, filter choices and counts alike); an id that is not theirs reads as
  unknown, so its existence is not confirmed either;
- nobody, admins included, lists or opens an arena battle before its vote;
- a comparison's gold flag (an attention check) is shown to admins only.

Invariant: nothing here deletes a row; corrections keep an audit trail (db/data.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from alignui.db.data import NO_ANNOTATOR, PENDING, BrowseFilter
from alignui.errors import NotFoundError, UserError, quoted, text_arg
from alignui.team.identity import Identity, require

ANY = "any"
PAGE_SIZE = 25
COLUMNS = ("id", "created", "source", "annotator", "verdict", "prompt", "response A", "response B")
THUMB_COLUMNS = ("id", "created", "annotator", "thumb", "prompt", "response")
THUMB_LABELS = (ANY, "up", "down", "skip", "pending")


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
    rows: list[list[Any]]  # one list per comparison (or rating), in COLUMNS (THUMB_COLUMNS) order, texts shortened
    total: int
    page: int
    pages: int
    noun: str = "comparisons"

    @property
    def caption(self) -> str:
        return f"{self.total} {self.noun} match · page {self.page} of {self.pages}"


def _short(text: str | None, n: int = 80) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[:n - 1] + "…"


def _owner(viewer: Identity) -> str | None:
    """Whose comparisons `viewer` may read: None (everyone's) for an admin, else their own."""
    return None if viewer.is_admin else viewer.name


def browse_page(store, flt: BrowseFilter, page: int = 1, page_size: int = PAGE_SIZE, *,
                viewer: Identity) -> BrowsePage:
    """Page `page` (1-based, clamped) of the comparisons matching `flt` that `viewer` may see, newest first."""
    flt = replace(flt, owner=_owner(viewer))
    total = store.browse(flt, limit=1)[1]
    page, pages = _clamp(page, total, page_size)
    rows, _ = store.browse(flt, limit=page_size, offset=(page - 1) * page_size)
    table = [[r.id, r.created_at.strftime("%Y-%m-%d %H:%M"), r.source, r.annotator or NO_ANNOTATOR,
              (r.verdict or PENDING) + (" (deleted)" if r.deleted_at else ""), _short(r.prompt), _short(r.text_a),
              _short(r.text_b)] for r in rows]
    return BrowsePage(table, total, page, pages)


def _clamp(page, total: int, page_size: int) -> tuple[int, int]:
    """(page clamped to 1..pages, pages) for `total` rows."""
    pages = max(1, math.ceil(total / page_size))
    return min(max(1, int(page or 1)), pages), pages


def browse_thumbs(store, label: str | None = None, text: str | None = None, include_deleted: bool = False,
                  page: int = 1, page_size: int = PAGE_SIZE, *, viewer: Identity) -> BrowsePage:
    """Page `page` of the thumbs ratings `viewer` may see (an annotator: their own), newest first."""
    label = None if not label or label == ANY else label
    if label is not None and label not in THUMB_LABELS:
        raise UserError(f"thumb must be one of {', '.join(THUMB_LABELS)}, got {label!r}")
    query = dict(owner=_owner(viewer), label=label, text=(text or "").strip() or None, include_deleted=include_deleted)
    total = store.browse_ratings(**query, limit=1)[1]
    page, pages = _clamp(page, total, page_size)
    rows, _ = store.browse_ratings(**query, limit=page_size, offset=(page - 1) * page_size)
    table = [[rid, created.strftime("%Y-%m-%d %H:%M"), who or NO_ANNOTATOR, thumb + (" (deleted)" if gone else ""),
              _short(prompt), _short(response)] for rid, created, who, thumb, prompt, response, gone in rows]
    return BrowsePage(table, total, page, pages, noun="thumbs ratings")


def delete_thumb(store, rating_id: str, identity: Identity) -> str:
    """Soft-delete a thumbs rating (admins only): gone from counts and exports, kept in the file."""
    require(identity, "delete")
    rating_id = text_arg(rating_id, "rating id", allow_none=True).strip()
    if not rating_id:
        raise UserError("pick a thumbs rating: click a row of the thumbs table (or paste its id)")
    annotator = store.delete_rating(rating_id, actor=identity.name)
    return (f"Thumbs rating {rating_id} (by {annotator or NO_ANNOTATOR}) deleted by {identity.name} (kept in the "
            "database, excluded from exports).")


def filter_choices(store, viewer: Identity) -> dict[str, list[str]]:
    """The sources and annotators `viewer` may filter by (an annotator: their own)."""
    return store.filter_choices(owner=_owner(viewer))


def open_comparison(store, comparison_id: str, viewer: Identity) -> dict[str, Any]:
    """Everything about one comparison that `viewer` may open (see Store.comparison_detail); UserError for an
    empty or unknown id, one that is not theirs (worded as unknown) and a pending arena battle."""
    comparison_id = text_arg(comparison_id, "comparison id", allow_none=True).strip()
    if not comparison_id:
        raise UserError("pick a comparison: click a row of the table (or paste its id)")
    detail = store.comparison_detail(comparison_id)
    if viewer.is_admin:
        return detail
    if detail["annotator"] != viewer.name:
        raise NotFoundError(f"no comparison with id {quoted(comparison_id)} among yours: annotators open their own "
                            "comparisons only")
    detail["meta"] = {k: v for k, v in (detail["meta"] or {}).items() if k != "gold"} or None
    return detail


def fix_verdict(store, comparison_id: str, verdict: str, identity: Identity, note: str | None = None) -> str:
    """Change a verdict (admins only); returns the status line."""
    require(identity, "fix_verdict")
    before = open_comparison(store, comparison_id, identity)
    store.fix_verdict(before["id"], verdict, actor=identity.name, note=note)
    return f"Verdict of {before['id']} changed from {before['verdict'] or PENDING} to {verdict} by {identity.name}."


def delete_comparison(store, comparison_id: str, identity: Identity, note: str | None = None) -> str:
    """Soft-delete a comparison (admins only): hidden everywhere and never exported, kept in the file."""
    require(identity, "delete")
    before = open_comparison(store, comparison_id, identity)
    store.soft_delete(before["id"], actor=identity.name, note=note)
    return f"Comparison {before['id']} deleted by {identity.name} (kept in the database, excluded from exports)."


def counts(store, viewer: Identity) -> dict[str, list[list[Any]]]:
    """Per-source and per-annotator tables of what `viewer` may see: name, total, a, b, tie, both_bad, skip,
    pending, deleted."""
    keys = ("total", "a", "b", "tie", "both_bad", "skip", "pending", "deleted")
    return {column: [[r[column]] + [int(r[k]) for k in keys] for r in store.counts_by(column, _owner(viewer))]
            for column in ("source", "annotator")}
