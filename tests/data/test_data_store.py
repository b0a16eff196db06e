"""The Store's data mixins on a real DuckDB file: bulk import, browse/filter, fix, soft delete, counts."""

import datetime as dt
import json

import pytest

from alignui.db import BrowseFilter, ImportBatch, NewGeneration, Store
from alignui.db.records import messages_hash
from alignui.errors import NotFoundError, UserError


def pair_columns(n, prefix="q"):
    cols = {k: [] for k in ("messages", "content_hash", "chosen", "rejected", "pair_hash", "meta")}
    for i in range(n):
        messages = [{"role": "user", "content": f"{prefix} {i}?"}]
        for key, value in (("messages", json.dumps(messages)), ("content_hash", messages_hash(messages)),
                           ("chosen", f"good {i}"), ("rejected", f"bad {i}"), ("pair_hash", f"{prefix}-h{i}"),
                           ("meta", json.dumps({"score": i}))):
            cols[key].append(value)
    return cols


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        yield s


def annotated(store, verdict, annotator="ann", text="Why is the sea salty?"):
    c = store.save_pair([{"role": "user", "content": text}], NewGeneration("base", "Rivers."),
                        NewGeneration("base", "Because."), annotator=annotator)
    store.decide(c.id, verdict, annotator=annotator)
    return c


def test_import_batch_writes_pairs_once_and_skips_known_hashes(store):
    batch = ImportBatch(source="import:x.jsonl", format="trl", kind="pairs", columns=pair_columns(3), actor="me")
    first = store.import_batch(batch, {"duplicate within the source": 1})
    assert (first.imported, first.already_stored) == (3, 0)
    again = store.import_batch(batch)
    assert (again.imported, again.already_stored) == (0, 3)
    assert store.table_counts() == {"prompts": 3, "generations": 6, "comparisons": 3, "import_pairs": 3, "imports": 2}
    rows, total = store.browse(BrowseFilter(source="import:x.jsonl"), sort="oldest")
    assert total == 3 and {r.verdict for r in rows} == {"a"} and {r.model_a for r in rows} == {"import:trl"}
    assert store.get_comparison(rows[0].id).chosen_text.startswith("good")
    log = store.list_imports()
    assert log[0]["imported"] == 0 and json.loads(log[0]["reasons"]) == {"already in the database": 3}
    assert log[1]["skipped"] == 1


def test_import_batch_of_prompts_dedupes_by_content(store):
    cols = pair_columns(2)
    columns = {"messages": cols["messages"], "content_hash": cols["content_hash"], "meta": [None, None]}
    batch = ImportBatch(source="import:p.txt", format="prompts", kind="prompts", columns=columns, split="heldout")
    assert store.import_batch(batch).imported == 2
    assert store.import_batch(batch).already_stored == 2
    assert store.query("SELECT DISTINCT split FROM prompts") == [("heldout",)]


def test_browse_filters(store):
    store.import_batch(ImportBatch(source="import:x", format="trl", kind="pairs", columns=pair_columns(2)))
    annotated(store, "b", "alice")
    annotated(store, "tie", "bob", text="Where do penguins live?")
    store.save_pair([{"role": "user", "content": "pending one"}], NewGeneration("base", "x"), NewGeneration("base", "y"))
    assert store.browse()[1] == 5
    assert store.browse(BrowseFilter(verdict="pending"))[1] == 1
    assert store.browse(BrowseFilter(annotator="(none)"))[1] == 3
    assert [r.annotator for r in store.browse(BrowseFilter(annotator="bob"))[0]] == ["bob"]
    assert store.browse(BrowseFilter(text="PENGUINS"))[1] == 1
    assert store.browse(BrowseFilter(text="good 1"))[1] == 1
    today = dt.date.today()
    assert store.browse(BrowseFilter(date_from=today, date_to=today))[1] == 5
    assert store.browse(BrowseFilter(date_from=today + dt.timedelta(days=1)))[1] == 0
    page, total = store.browse(limit=2, offset=4)
    assert total == 5 and len(page) == 1
    assert store.filter_choices() == {"source": ["app", "import:x"], "annotator": ["(none)", "alice", "bob"]}
    with pytest.raises(UserError, match="verdict filter"):
        BrowseFilter(verdict="maybe")
    with pytest.raises(UserError, match="date range is empty"):
        BrowseFilter(date_from=today, date_to=today - dt.timedelta(days=1))


def test_fix_verdict_and_soft_delete_keep_an_audit_trail(store):
    c = store.save_pair([{"role": "user", "content": "q"}], NewGeneration("base", "A"), NewGeneration("base", "B"))
    store.decide(c.id, "a", edited_chosen="A, edited")
    store.fix_verdict(c.id, "b", actor="admin", note="misclick")
    got = store.get_comparison(c.id)
    assert got.verdict == "b" and got.edited_chosen is None and got.chosen_text == "B"
    store.soft_delete(c.id, actor="admin")
    with pytest.raises(NotFoundError):
        store.get_comparison(c.id)
    detail = store.comparison_detail(c.id)
    assert detail["deleted_by"] == "admin" and detail["deleted_at"] is not None
    assert [(a["action"], a["old_verdict"], a["new_verdict"], a["actor"]) for a in detail["audit"]] == [
        ("fix_verdict", "a", "b", "admin"), ("delete", "b", None, "admin")]
    assert store.query("SELECT old_edited_chosen FROM comparison_audit WHERE action = 'fix_verdict'") == [
        ("A, edited",)]
    with pytest.raises(NotFoundError, match="already deleted"):
        store.soft_delete(c.id, actor="admin")
    with pytest.raises(NotFoundError):
        store.fix_verdict(c.id, "a", actor="admin")
    assert store.browse()[1] == 0 and store.browse(BrowseFilter(include_deleted=True))[1] == 1


def test_counts_and_export_rows(store):
    store.import_batch(ImportBatch(source="import:x", format="trl", kind="pairs", columns=pair_columns(2)))
    annotated(store, "b", "alice")
    annotated(store, "skip", "alice")
    gone = annotated(store, "a", "bob")
    store.soft_delete(gone.id, actor="admin")
    by_source = {r["source"]: r for r in store.counts_by("source")}
    assert by_source["import:x"]["a"] == 2 and by_source["app"]["total"] == 2 and by_source["app"]["deleted"] == 1
    by_annotator = {r["annotator"]: r for r in store.counts_by("annotator")}
    assert by_annotator["alice"]["b"] == 1 and by_annotator["alice"]["skip"] == 1 and by_annotator["(none)"]["a"] == 2
    rows = store.export_rows()
    assert [r.verdict for r in rows].count("skip") == 1 and len(rows) == 4
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert store.verdict_histogram() == {"a": 2, "b": 1, "tie": 0, "both_bad": 0, "skip": 1, "pending": 0,
                                         "deleted": 1}
    assert len(store.export_rows(sources=("app",))) == 2
