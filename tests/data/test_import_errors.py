"""Malformed inputs: each gives one clear `error:` line, exits non-zero, and leaves the database unchanged.

The command line is driven in-process through alignui.cli.main.main (the same function `python -m alignui`
runs); test_import_cli.py runs the real subprocess for the contract itself.
"""

import gzip
import hashlib
import json

import pytest

from alignui.cli import main as cli
from alignui.db import Store
from conftest import REPO

FIX = REPO / "tests" / "fixtures"
GOOD = {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"}


def jsonl(*rows) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def good_rows(n, start=0):
    return [{"prompt": f"q{i}", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(start, start + n)]


def parquet_bytes(rows) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


QUOTED_CSV = ('prompt,chosen,rejected\n'
              '"Line one\nline two","A ""quoted"", multi-line\nanswer","No"\n'
              '"Second",,"x"\n').encode()  # the empty chosen sits on physical line 5

# (case id, file name, content: bytes | None for a directory | callable(tmp_path) -> path, extra args, expected)
CASES = [
    ("wrong columns", "data.jsonl", jsonl({"question": "q", "good": "g", "bad": "b"}), [],
     "--map prompt=question,chosen=good,rejected=bad"),
    ("empty file", "empty.jsonl", b"", [], "is empty"),
    ("only blank lines", "blank.jsonl", b"\n  \n\n", [], "is empty"),
    ("bad JSON on line 10", "data.jsonl", jsonl(*good_rows(9), '{"prompt": "q", "chosen": }'), [],
     "line 10: not valid JSON"),
    ("truncated JSON file", "data.json", b'[{"prompt": "a",', [], "not valid JSON"),
    ("JSON scalar", "data.json", b"42", [], "not a list of rows"),
    ("JSON line not an object", "data.jsonl", jsonl(GOOD, "[1, 2]"), [], "line 2: expected a JSON object"),
    ("wrong type", "data.jsonl", jsonl({**GOOD, "chosen": 5}), [], "line 1: 'chosen' must be text, got a number"),
    ("null", "data.jsonl", jsonl(GOOD, {**GOOD, "chosen": None}), [], "line 2: 'chosen' is empty (null)"),
    ("empty string", "data.jsonl", jsonl({**GOOD, "prompt": ""}), [], "'prompt' is an empty string"),
    ("whitespace only", "data.jsonl", jsonl({**GOOD, "rejected": "   "}), [], "'rejected' is an empty string"),
    ("huge field", "data.jsonl", jsonl({**GOOD, "chosen": "x" * 100_001}), [], "more than the limit of 100,000"),
    ("non-UTF-8", "data.jsonl", jsonl(GOOD, GOOD) + b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n', [],
     "line 3: not valid UTF-8"),
    ("binary file", "data.jsonl", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, [], "looks like a binary file"),
    ("NUL bytes in CSV", "data.csv", b"prompt,chosen,rejected\na,b\x00,c\n", [], "looks like a binary file"),
    ("ragged CSV", "data.csv", b"prompt,chosen,rejected\na,b,c\nd,e,f,g\n", [], "line 3: 4 fields, more than"),
    ("CSV with quotes and newlines", "data.csv", QUOTED_CSV, [], "line 5: 'chosen' is an empty string"),
    ("CSV header only", "data.csv", b"prompt,chosen,rejected\n", [], "holds no rows"),
    ("directory that is not a dataset", "notes", None, [], "is a directory but not a dataset"),
    ("corrupt parquet", "data.parquet", b"PAR1" + b"\x01garbage" * 20, [], "not a readable Parquet file"),
    ("parquet with wrong types", "data.parquet", parquet_bytes([{"prompt": "q", "chosen": 1, "rejected": 2}]), [],
     "row 1: 'chosen' must be text"),
    ("unsupported extension", "data.xlsx", b"PK\x03\x04....", [], "unsupported file type .xlsx"),
    ("message without content", "data.jsonl", jsonl({**GOOD, "chosen": [{"role": "assistant"}]}), [],
     "message 1 of 'chosen' is not a {role, content} object"),
    ("unknown role", "data.jsonl", jsonl({**GOOD, "prompt": [{"role": "robot", "content": "x"}]}), [],
     "has role 'robot'"),
    ("two replies in chosen", "data.jsonl",
     jsonl({**GOOD, "chosen": [{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]}), [],
     "must come down to one assistant reply"),
    ("--map names a missing column", "data.jsonl", jsonl(GOOD), ["--map", "prompt=nope"],
     "--map names the column 'nope'"),
    ("--map syntax", "data.jsonl", jsonl(GOOD), ["--map", "prompt"], "--map expects new=old pairs"),
    ("forced format without its columns", "data.jsonl", jsonl(GOOD), ["--format", "oasst"],
     "cannot read it as OpenAssistant oasst1"),
    ("forced hh-rlhf on plain text", "data.jsonl", jsonl({"chosen": "yes", "rejected": "no"}),
     ["--format", "hh-rlhf"], "is not an hh-rlhf transcript"),
    ("oasst row with a bad role", "data.jsonl",
     jsonl({"message_id": "m1", "parent_id": None, "role": "robot", "text": "hi"}), [], "'role' must be 'prompter'"),
    ("corrupt .gz", "data.jsonl.gz", b"not gzip at all", [], "not a readable .gz file"),
    ("pairs into the held-out pool", "data.jsonl", jsonl(GOOD), ["--split", "heldout"],
     "held-out prompts are for the arena"),
    ("--split on a single file", "data.jsonl", jsonl(GOOD), ["--split", "test"], "single file without splits"),
]


def fingerprint(storage):
    """Every row of every data table, hashed: equal fingerprints mean an unchanged database."""
    with Store(storage / "alignui.duckdb") as s:
        out = {}
        for table in ("prompts", "generations", "comparisons", "import_pairs", "imports", "snapshots"):
            rows = s.query(f"SELECT * FROM {table} ORDER BY ALL")
            out[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
        return out


@pytest.fixture
def seeded(tmp_path, capsys):
    storage = tmp_path / "storage"
    assert cli.main(["import", str(FIX / "trl_conversational.jsonl"), "--storage", str(storage)]) == 0
    assert cli.main(["import", str(FIX / "prompts.txt"), "--storage", str(storage)]) == 0
    capsys.readouterr()
    return storage


def expect_refusal(storage, capsys, argv, expected):
    before = fingerprint(storage)
    code = cli.main(argv + ["--storage", str(storage)])
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert expected in err, err
    assert fingerprint(storage) == before


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_input_is_refused_and_changes_nothing(case, seeded, tmp_path, capsys):
    _, name, content, args, expected = case
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    if content is None:
        path.mkdir()
        (path / "notes.md").write_text("not data")
    else:
        path.write_bytes(content)
    expect_refusal(seeded, capsys, ["import", str(path), *args], expected)


@pytest.mark.parametrize("argv, expected", [
    (["import", "/no/such/file.jsonl"], "no such file or directory"),
    (["import", "someone/some-dataset"], "offline mode is on"),
    (["import", str(FIX / "trl_saved_dataset"), "--split", "validation"], "has no split 'validation'"),
], ids=["missing file", "hub id while offline", "unknown split of a saved dataset"])
def test_unusable_sources_are_refused(argv, expected, seeded, capsys):
    expect_refusal(seeded, capsys, argv, expected)


def test_bad_row_9000_imports_nothing_and_names_the_line(seeded, tmp_path, capsys):
    rows = good_rows(10_000, start=100)
    rows[8999] = {**rows[8999], "rejected": None}
    path = tmp_path / "big.jsonl"
    path.write_bytes(jsonl(*rows))
    expect_refusal(seeded, capsys, ["import", str(path)], "big.jsonl, line 9000: 'rejected' is empty (null)")
    rows[8999] = {**rows[8999], "rejected": "fixed"}
    gz = tmp_path / "big.jsonl.gz"
    gz.write_bytes(gzip.compress(jsonl(*rows)))
    assert cli.main(["import", str(gz), "--storage", str(seeded)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["imported"] == 10_000 and summary["skipped"] == 0


def test_a_question_column_alone_is_taken_for_a_prompt_list(seeded, tmp_path, capsys):
    path = tmp_path / "qs.jsonl"
    path.write_bytes(jsonl({"question": "Why?"}, {"question": "How?"}))
    expect_refusal(seeded, capsys, ["import", str(path)], "--map prompt=question")
    assert cli.main(["import", str(path), "--format", "prompts", "--storage", str(seeded)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["imported"] == 2


def test_a_folder_of_mixed_files_is_refused_not_read_as_data(tmp_path):
    """A plain system folder (a temp or home dir) typed as the source: refused, instead of reading unrelated
    .txt files as prompts."""
    from alignui.data import ImportOptions, import_source
    from alignui.data.records import SourceError
    from alignui.db import Store
    from alignui.team.identity import LOCAL_OPERATOR

    folder = tmp_path / "tmp-like"
    folder.mkdir()
    (folder / "notes.txt").write_text("buy milk\ncall mum\n")
    (folder / "config.json").write_text('[{"debug": true}]')
    (folder / "pairs.jsonl").write_text('{"prompt": "Q", "chosen": "A", "rejected": "B"}\n')
    with Store(tmp_path / "db.duckdb") as store:
        with pytest.raises(SourceError, match=r"tmp-like holds data files of several formats \(1 \.json, 1 \.jsonl, "
                                              r"1 \.txt\)"):
            import_source(store, str(folder), ImportOptions(), LOCAL_OPERATOR)
        assert store.table_counts()["prompts"] == 0
