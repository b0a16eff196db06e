"""Export writes TRL's unpaired format (prompt, completion, label) beside the pairs: each pair gives its chosen
response as a desirable example and its rejected one as an undesirable example, in the same split."""

from datasets import load_from_disk

from alignui.data.export import ExportOptions, export_snapshot
from alignui.data.snapshot import load_snapshot
from data.test_export_snapshot import ADMIN, populate


def test_each_pair_becomes_one_desirable_and_one_undesirable_row_in_the_same_split(store, layout):
    populate(store)
    ref = export_snapshot(store, layout, ExportOptions(test_size=0.25), ADMIN).ref
    pairs, unpaired = load_snapshot(ref), load_from_disk(str(ref.path / "unpaired"))
    assert "unpaired" in ref.manifest["files"] and sorted(unpaired) == ["test", "train"]
    for split in ("train", "test"):
        rows = unpaired[split]
        assert rows.column_names == ["prompt", "completion", "label", "id"] and rows.num_rows == 2 * pairs[split].num_rows
        by_id = {(r["id"], r["label"]): r for r in rows}
        for pair in pairs[split]:
            assert by_id[(pair["id"], True)]["completion"] == pair["chosen"]
            assert by_id[(pair["id"], False)]["completion"] == pair["rejected"]
            assert by_id[(pair["id"], True)]["prompt"] == pair["prompt"]


def test_plain_exports_are_unpaired_as_strings(store, layout):
    populate(store)
    ref = export_snapshot(store, layout, ExportOptions(plain=True, test_size=0), ADMIN).ref
    row = load_from_disk(str(ref.path / "unpaired"))["train"][0]
    assert isinstance(row["prompt"], str) and isinstance(row["completion"], str) and row["label"] is True
