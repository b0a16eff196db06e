"""Import reads TRL's unpaired format (prompt, completion, label) into thumbs ratings: `--format auto` recognises
it (plain and conversational), a re-import skips what is stored, a bad label fails naming its row with nothing
written, and the imported thumbs export as unpaired rows beside the app's."""

import json

import pytest

from alignui.data import ImportOptions, import_source
from alignui.data.export import ExportOptions, export_snapshot
from alignui.data.snapshot import load_snapshot
from alignui.data.records import SourceError
from cli.test_cli import run_cli
from data.test_export_snapshot import ADMIN

ROWS = [{"prompt": "Name a colour.", "completion": "Blue.", "label": True},
        {"prompt": [{"role": "user", "content": "Name a fruit."}],
         "completion": [{"role": "assistant", "content": "A brick."}], "label": False},
        {"prompt": "Say hi.", "completion": "Hello!", "label": "true"}]


def write(tmp_path, rows, name="kto.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_unpaired_rows_become_decided_ratings_and_export_beside_the_apps(store, layout, tmp_path):
    source = write(tmp_path, ROWS)
    summary = import_source(store, str(source), ImportOptions(), ADMIN).as_dict()
    assert (summary["format"], summary["kind"], summary["imported"], summary["skipped"]) == ("unpaired", "ratings", 3, 0)
    assert store.rating_counts() == {"up": 2, "down": 1, "skip": 0, "pending": 0, "total": 3}
    again = import_source(store, str(source), ImportOptions(), ADMIN).as_dict()
    assert again["imported"] == 0 and again["reasons"] == {"already in the database": 3}
    data = load_snapshot(export_snapshot(store, layout, ExportOptions(test_size=0, plain=True), ADMIN).ref)
    assert sorted(zip(data["train"]["prompt"], data["train"]["completion"], data["train"]["label"])) == [
        ("Name a colour.", "Blue.", True), ("Name a fruit.", "A brick.", False), ("Say hi.", "Hello!", True)]


def test_a_bad_label_fails_naming_the_row_and_writes_nothing(store, tmp_path):
    source = write(tmp_path, ROWS + [{"prompt": "x", "completion": "y", "label": "maybe"}])
    with pytest.raises(SourceError, match=r"line 4.*'label' must be true or false"):
        import_source(store, str(source), ImportOptions(), ADMIN)
    assert store.rating_counts()["total"] == 0


def test_the_cli_recognises_the_format_by_itself(tmp_path):
    storage = tmp_path / "storage"
    done = run_cli("import", str(write(tmp_path, ROWS)), "--format", "auto", storage=storage)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["format"] == "unpaired" and summary["imported"] == 3
