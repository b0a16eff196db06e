import json

import pytest
from datasets import Dataset, DatasetDict

from alignui.errors import NotFoundError, UserError
from alignui.data.snapshot import list_snapshots, load_snapshot, resolve_snapshot


def write_snapshot(root, sid, created_at, rows=2):
    path = root / "snapshots" / sid
    ds = Dataset.from_dict({"prompt": ["p"] * rows, "chosen": ["c"] * rows, "rejected": ["r"] * rows})
    DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(path / "dataset"))
    (path / "manifest.json").write_text(json.dumps({"id": sid, "created_at": created_at, "sha256": "h" + sid}))
    return path


def test_resolve_by_id_by_path_and_newest(tmp_path):
    write_snapshot(tmp_path, "old", "2026-01-01T00:00:00")
    new = write_snapshot(tmp_path, "new", "2026-02-01T00:00:00", rows=3)
    assert [r.id for r in list_snapshots(tmp_path)] == ["new", "old"]
    assert resolve_snapshot(tmp_path).id == "new"
    assert resolve_snapshot(tmp_path, "old").sha256 == "hold"
    by_path = resolve_snapshot(tmp_path, str(new))
    assert by_path.id == "new" and load_snapshot(by_path)["train"].num_rows == 3


def test_clear_errors_for_missing_unsafe_and_malformed(tmp_path):
    with pytest.raises(NotFoundError, match="export one first"):
        resolve_snapshot(tmp_path)
    write_snapshot(tmp_path, "s1", "2026-01-01")
    with pytest.raises(NotFoundError, match="no snapshot 'zzz'.*newest: s1"):
        resolve_snapshot(tmp_path, "zzz")
    with pytest.raises(NotFoundError, match="not a valid name"):
        resolve_snapshot(tmp_path, "../../etc", allow_paths=False)
    bad = tmp_path / "snapshots" / "bad"
    Dataset.from_dict({"question": ["q"]}).save_to_disk(str(bad / "dataset"))
    (bad / "manifest.json").write_text("{}")
    with pytest.raises(UserError, match="lacks the columns"):
        load_snapshot(resolve_snapshot(tmp_path, "bad"))
