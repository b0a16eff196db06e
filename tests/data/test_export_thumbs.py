"""Export with thumbs up/down: unpaired/ holds the pairs split in two plus the thumbs (up -> desirable, down ->
undesirable; skipped, pending, deleted and held-out ones left out); the pair format ignores thumbs; a snapshot of
thumbs alone is unpaired in dataset/ too, trainable by KTO only; the hash covers the thumbs and re-verifies."""

from datasets import load_from_disk

from alignui.data.export import ExportOptions, export_snapshot
from alignui.data.snapshot import load_snapshot, load_unpaired, verify_snapshot
from alignui.db import NewGeneration
from alignui.training.config import TrainConfig
from alignui.training.kto import KTOTrainConfig, with_thumbs
from data.test_export_snapshot import ADMIN, vote


def thumb(store, label, prompt="Name a colour.", text=None, split="train", who="ann"):
    messages = [{"role": "user", "content": prompt}]
    pid = store.add_prompt(messages, split=split)
    item = store.save_single(messages, NewGeneration("base", text or f"{label} answer to {prompt}"), annotator=who,
                             prompt_id=pid)
    return store.rate(item.id, label, annotator=who) if label else item


def thumbs(store):
    """2 up, 1 down (kept); a skip, a pending one, a deleted one and one on a held-out prompt (left out)."""
    kept = [thumb(store, "up", "t1"), thumb(store, "up", "t2"), thumb(store, "down", "t3")]
    thumb(store, "skip", "t4"), thumb(store, None, "t5"), thumb(store, "up", "t6", split="heldout")
    gone = thumb(store, "down", "t7")
    store.tx(lambda cur: cur.execute("UPDATE ratings SET deleted_at = current_timestamp WHERE id = ?", [gone.id]))
    return kept


def test_thumbs_join_the_unpaired_rows_and_the_pairs_stay_as_they_were(store, layout):
    pairs = [vote(store, "a", prompt="p1"), vote(store, "b", prompt="p2")]
    before = export_snapshot(store, layout, ExportOptions(test_size=0), ADMIN).ref
    kept = thumbs(store)
    ref = export_snapshot(store, layout, ExportOptions(test_size=0), ADMIN).ref
    assert load_snapshot(ref)["train"]["id"] == load_snapshot(before)["train"]["id"] == sorted(p.id for p in pairs)
    rows = load_unpaired(ref)["train"]
    assert rows.num_rows == 2 * len(pairs) + len(kept)
    by_id = {r["id"]: r for r in rows if r["id"] in {k.id for k in kept}}
    assert {i: r["label"] for i, r in by_id.items()} == {kept[0].id: True, kept[1].id: True, kept[2].id: False}
    assert by_id[kept[2].id]["completion"] == [{"role": "assistant", "content": "down answer to t3"}]
    assert by_id[kept[2].id]["prompt"] == [{"role": "user", "content": "t3"}]
    assert ref.manifest["ratings"] == 3 and ref.manifest["labels"] == {"desirable": 4, "undesirable": 3}
    assert ref.manifest["sha256"] != before.manifest["sha256"] and verify_snapshot(ref) and verify_snapshot(before)
    again = export_snapshot(store, layout, ExportOptions(test_size=0), ADMIN).ref
    assert again.manifest["sha256"] == ref.manifest["sha256"]  # same rows -> same hash
    assert with_thumbs(ref, load_snapshot(ref))["train"].num_rows == rows.num_rows  # what KTO trains on


def test_a_snapshot_of_thumbs_alone_is_unpaired_and_only_kto_trains_on_it(store, layout):
    thumbs(store)
    ref = export_snapshot(store, layout, ExportOptions(test_size=0.34, plain=True), ADMIN).ref
    data = load_snapshot(ref)
    assert data["train"].column_names == ["prompt", "completion", "label", "id"]
    assert data["train"].num_rows + data["test"].num_rows == 3 and data["test"].num_rows == 1
    assert isinstance(data["train"][0]["prompt"], str) and isinstance(data["train"][0]["completion"], str)
    assert load_from_disk(str(ref.path / "unpaired"))["train"].num_rows == data["train"].num_rows
    assert verify_snapshot(ref) and ref.manifest["rows"] == 3
    labels = data["train"]["label"]
    assert (KTOTrainConfig().data_refusals(data) == []) == (0 < sum(labels) < len(labels))
    assert "only KTO trains on those" in TrainConfig().data_refusals(data)[0]


def test_thumbs_of_one_class_only_are_refused_by_kto_with_the_reason(store, layout):
    thumb(store, "up", "only good"), thumb(store, "up", "still good")
    data = load_snapshot(export_snapshot(store, layout, ExportOptions(test_size=0), ADMIN).ref)
    assert "only desirable examples (2) and no undesirable ones" in KTOTrainConfig().data_refusals(data)[0]
