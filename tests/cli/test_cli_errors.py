"""Bad command lines, as a user (or a script) types them: each is one line on stderr naming the input and
what to do, exit 2, no traceback, nothing written. Run in subprocesses, exactly as typed."""

import json
import os
import stat

import pytest

from cli.test_cli import run_cli
from conftest import REPO

FIX = REPO / "tests" / "fixtures"


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    """A data root holding three decided pairs (imported)."""
    root = tmp_path_factory.mktemp("cli-errors") / "storage"
    done = run_cli("import", str(FIX / "trl_plain.jsonl"), storage=root)
    assert done.returncode == 0, done.stderr
    return root


def one_line_error(done, *expected):
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    assert len(lines[0]) < 400, lines[0]
    for part in expected:
        assert part in lines[0], lines[0]
    return lines[0]


def written(root) -> list:
    return sorted(p.name for d in ("snapshots", "runs") if (root / d).is_dir() for p in (root / d).iterdir())


def test_bad_export_and_train_arguments(voted, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    cases = [
        (("export", "--seed", "-1"), ["seed must be a whole number from 0 up", "-1"]),
        (("export", "--format", "nope"), ["export: argument --format: invalid choice: 'nope'"]),
        (("export", "--out", "/proc/alignui-nope"), ["cannot write the snapshot to '/proc/alignui-nope'",
                                                     "nothing was written"]),
        (("export", "--out", str(FIX / "prompts.txt" / "x")), ["cannot write the snapshot", "Not a directory"]),
        (("train", "dpo", "--run-id", "a/b"), ["--run-id 'a/b' is not a usable run id"]),
        (("train", "dpo", "--run-id", ""), ["--run-id '' is not a usable run id"]),
        (("train", "dpo", "--run-id", "x" * 5000), ["(5,000 characters)"]),
    ]
    if os.geteuid() != 0:  # root writes anywhere
        cases.append((("export", "--out", str(locked / "snap")), ["cannot write the snapshot", "Permission denied"]))
    for args, expected in cases:
        one_line_error(run_cli(*args, storage=voted), *expected)
    assert written(voted) == [] and list(locked.iterdir()) == []


def test_an_unknown_source_is_named_and_not_called_no_votes(voted):
    line = one_line_error(run_cli("export", "--source", "nope", storage=voted),
                          "no comparison comes from source 'nope'", "import:trl_plain.jsonl")
    assert "no votes at all" not in line


def test_hostile_import_files_are_refused_in_one_line(tmp_path):
    root = tmp_path / "storage"
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    deep_lines = tmp_path / "deep.jsonl"
    deep_lines.write_text('{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    lone = tmp_path / "lone.jsonl"
    lone.write_text(json.dumps({"prompt": "ok", "chosen": "a", "rejected": "b"}) + "\n"
                    + '{"prompt": "hi \\ud800", "chosen": "a", "rejected": "b"}\n')
    cases = [(deep, ["deep.json, the document: JSON nested too deeply"]),
             (deep_lines, ["deep.jsonl, line 1: JSON nested too deeply"]),
             (lone, ["lone.jsonl, line 2: holds a lone surrogate", "nothing was imported"])]
    for path, expected in cases:
        one_line_error(run_cli("import", str(path), storage=root), *expected)
    one_line_error(run_cli("import", str(FIX / "trl_plain.jsonl"), "--format", "csv", storage=root),
                   "import: argument --format: invalid choice: 'csv'")
    from alignui.db import Store

    with Store(root / "alignui.duckdb") as store:
        assert store.table_counts()["comparisons"] == 0
