"""Export: a snapshot round-trips (load_from_disk gives the database's rows), its hash is deterministic,
ties/both-bad/skips are counted not exported, arena votes only on request, files are immutable."""

import json

import pyarrow.parquet as pq
import pytest
from datasets import load_from_disk

from alignui.data import ImportOptions, import_source
from alignui.db import NewGeneration
from alignui.errors import UserError
from alignui.data.export import ExportOptions, export_snapshot, plain_prompt, split_indices
from alignui.team.identity import Identity, PermissionDenied
from alignui.data.snapshot import dataset_sha256, list_snapshots, load_snapshot, resolve_snapshot, verify_snapshot
from conftest import REPO

ADMIN = Identity("boss", "admin", "login")
FIX = REPO / "tests" / "fixtures"


def vote(store, verdict, *, prompt="What is the capital of Peru?", kind="annotate", edit=None, who="ann"):
    c = store.save_pair([{"role": "user", "content": prompt}], NewGeneration("base", f"A for {prompt}"),
                        NewGeneration("run-1", f"B for {prompt}"), kind=kind, annotator=who)
    return store.decide(c.id, verdict, annotator=who, edited_chosen=edit, kind=kind)


def populate(store):
    """3 annotated a/b pairs (one edited), a tie, both-bad, skip, a pending pair, a deleted one, an arena vote,
    plus the 4 pairs of the TRL conversational fixture."""
    pairs = [vote(store, "a", prompt="p1"), vote(store, "b", prompt="p2"),
             vote(store, "b", prompt="p3", edit="B, improved by the annotator")]
    vote(store, "tie", prompt="p4"), vote(store, "both_bad", prompt="p5"), vote(store, "skip", prompt="p6")
    store.save_pair([{"role": "user", "content": "pending"}], NewGeneration("base", "x"), NewGeneration("base", "y"))
    store.soft_delete(vote(store, "a", prompt="p7").id, actor="boss")
    vote(store, "a", prompt="arena prompt", kind="arena", who=None)
    import_source(store, str(FIX / "trl_conversational.jsonl"), ImportOptions(), ADMIN)
    return pairs


def db_rows(store, kinds=("annotate",)):
    """What the database says the exported rows must be: (prompt, chosen, rejected) per comparison id."""
    out = {}
    for r in store.export_rows(kinds):
        if r.verdict not in ("a", "b"):
            continue
        chosen = r.edited_chosen or (r.text_a if r.verdict == "a" else r.text_b)
        rejected = r.text_b if r.verdict == "a" else r.text_a
        out[r.id] = (json.loads(r.messages), chosen, rejected)
    return out


def loaded_rows(ref):
    data = load_from_disk(str(ref.path / "dataset"))
    return {row["id"]: (row["prompt"], row["chosen"][0]["content"], row["rejected"][0]["content"])
            for split in data for row in data[split]}, data


def test_snapshot_round_trips_and_its_hash_is_deterministic(store, layout):
    populate(store)
    first = export_snapshot(store, layout, ExportOptions(test_size=0.25), ADMIN)
    got, data = loaded_rows(first.ref)
    assert got == db_rows(store) and len(got) == 7
    assert sorted(data) == ["test", "train"] and data["test"].num_rows == 2 and data["train"].num_rows == 5
    m = json.loads((first.ref.path / "manifest.json").read_text())
    assert m["sha256"] == dataset_sha256(data) == first.manifest["sha256"] and verify_snapshot(first.ref)
    assert (m["rows"], m["train_rows"], m["test_rows"], m["schema_version"]) == (7, 5, 2, 1)
    assert m["excluded"] == {"tie": 1, "both_bad": 1, "skip": 1, "pending": 1, "deleted": 1, "by_policy": 0,
                             "arena": 1}
    assert m["verdicts"] == {"a": 5, "b": 2, "tie": 1, "both_bad": 1, "skip": 1, "pending": 1}
    assert m["sources"] == {"import:trl_conversational.jsonl": 4, "app": 3} and m["format"] == "conversational"
    again = export_snapshot(store, layout, ExportOptions(test_size=0.25), ADMIN)
    assert again.ref.id != first.ref.id and again.manifest["sha256"] == m["sha256"]
    assert {r.id for r in list_snapshots(layout.root)} == {first.ref.id, again.ref.id}
    assert {r["id"] for r in store.list_snapshot_records()} == {first.ref.id, again.ref.id}
    store.fix_verdict(next(iter(db_rows(store))), "tie", actor="boss")
    assert export_snapshot(store, layout, ExportOptions(test_size=0.25), ADMIN).manifest["sha256"] != m["sha256"]


def test_edited_winner_and_models_are_exported(store, layout):
    a, b, edited = populate(store)
    ref = export_snapshot(store, layout, ExportOptions(), ADMIN).ref
    rows = {r["id"]: r for split in load_snapshot(ref).values() for r in split}
    assert rows[edited.id]["chosen"] == [{"role": "assistant", "content": "B, improved by the annotator"}]
    assert rows[edited.id]["edited"] is True and rows[a.id]["edited"] is False
    assert (rows[b.id]["chosen_model"], rows[b.id]["rejected_model"]) == ("run-1", "base")
    assert rows[a.id]["annotator"] == "ann" and rows[a.id]["kind"] == "annotate"


def test_include_arena_plain_and_extra_files(store, layout):
    populate(store)
    result = export_snapshot(store, layout, ExportOptions(include_arena=True, plain=True, format="parquet",
                                                          test_size=0), ADMIN)
    data = load_snapshot(result.ref)
    assert data["train"].num_rows == 8 and data["test"].num_rows == 0 and verify_snapshot(result.ref)
    row = next(r for r in data["train"] if r["kind"] == "arena")
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("arena prompt", "A for arena prompt",
                                                              "B for arena prompt")
    table = pq.read_table(result.ref.path / "data.parquet")
    assert table.num_rows == 8 and set(table.column("split").to_pylist()) == {"train"}
    assert "arena" not in result.manifest["excluded"]
    jsonl = export_snapshot(store, layout, ExportOptions(format="jsonl"), ADMIN).ref.path / "data.jsonl"
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert len(lines) == 7 and {x["split"] for x in lines} == {"train", "test"}


def test_plain_prompt_of_several_turns_is_a_transcript():
    assert plain_prompt([{"role": "user", "content": "Hi"}]) == "Hi"
    assert plain_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                         {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]) == (
        "\n\nSystem: Be brief.\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Bye\n\nAssistant:")


def test_split_is_seeded_and_handles_tiny_sets():
    assert split_indices(10, 0.2, 1) == split_indices(10, 0.2, 1) != split_indices(10, 0.2, 2)
    train, test = split_indices(10, 0.2, 1)
    assert len(test) == 2 and sorted(train + test) == list(range(10))
    assert split_indices(1, 0.5, 0) == ([0], []) and split_indices(3, 0.0, 0) == ([0, 1, 2], [])


def test_readme_card_and_read_only_files(store, layout):
    populate(store)
    ref = export_snapshot(store, layout, ExportOptions(), ADMIN).ref
    card = (ref.path / "README.md").read_text()
    assert f"`{ref.id}`" in card and "| **total** | **7** |" in card and "tie" in card and "█" in card
    assert "1 tie, 1 both_bad, 1 skip, 1 pending, 1 deleted, 1 arena" in card
    assert all(not (p.stat().st_mode & 0o222) for p in ref.path.rglob("*") if p.is_file())
    assert not list(layout.snapshots_dir.glob(".*tmp*"))


def test_out_directory_and_refusals(store, layout, tmp_path):
    with pytest.raises(UserError, match="nothing to export: no comparison has an a/b verdict yet"):
        export_snapshot(store, layout, ExportOptions(), ADMIN)
    populate(store)
    out = tmp_path / "my-snapshot"
    ref = export_snapshot(store, layout, ExportOptions(out=out), ADMIN).ref
    assert ref.path == out and resolve_snapshot(layout.root, str(out)).sha256 == ref.sha256
    with pytest.raises(UserError, match="snapshots are immutable"):
        export_snapshot(store, layout, ExportOptions(out=out), ADMIN)
    with pytest.raises(PermissionDenied, match="may not export"):
        export_snapshot(store, layout, ExportOptions(), Identity("ann", "annotator"))
    with pytest.raises(UserError, match="test size"):
        ExportOptions(test_size=1.5)


def test_majority_policy_keeps_one_row_per_shared_pair(store, layout):
    c = vote(store, "a", prompt="shared")
    for who, verdict in (("bob", "a"), ("cy", "b")):
        store.query("INSERT INTO comparisons (id, prompt_id, gen_a, gen_b, kind, verdict, annotator, decided_at) "
                    "SELECT ?, prompt_id, gen_a, gen_b, kind, ?, ?, current_timestamp FROM comparisons WHERE id = ?",
                    [f"copy-{who}", verdict, who, c.id])
    assert export_snapshot(store, layout, ExportOptions(test_size=0), ADMIN).manifest["rows"] == 3
    kept = export_snapshot(store, layout, ExportOptions(test_size=0, policy="majority"), ADMIN).manifest
    assert kept["rows"] == 1 and kept["excluded"]["by_policy"] == 2
