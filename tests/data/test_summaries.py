"""Import and export summaries as readable lines with the numbers (the Data tab showed raw JSON)."""

from alignui.data.summaries import export_lines, import_lines


def test_an_import_summary_reads_as_sentences_with_every_number():
    lines = import_lines({"imported": 12, "skipped": 2, "reasons": {"missing_chosen": 1, "duplicate": 1},
                          "format": "trl", "kind": "pairs", "source": "import:x.jsonl", "rows": 14,
                          "import_id": "abc"})
    assert lines[0] == "Imported 12 pairs from import:x.jsonl (format trl, 14 rows read)."
    assert lines[1] == "Skipped 2 rows: 1 missing chosen; 1 duplicate."
    assert import_lines({"imported": 1, "skipped": 0, "kind": "prompts", "rows": 1})[:2] == [
        "Imported 1 prompt from ? (format ?, 1 rows read).", "Nothing was skipped."]


def test_an_export_summary_names_the_split_and_what_was_left_out():
    lines = export_lines({"snapshot": "s1", "path": "/p", "rows": 10, "test_rows": 1, "train_rows": 9,
                          "sha256": "abcdef1234567890", "over_max_length": 2,
                          "excluded": {"tie": 1, "both_bad": 0, "skip": 2, "by_policy": 0},
                          "push_error": "no token"})
    assert lines[:3] == ["Snapshot s1: 10 pairs (9 train, 1 test).", "Written to /p (sha256 abcdef123456…).",
                         "Left out: 1 ties; 2 skipped."]
    assert "2 pairs longer than max_length" in lines[3] and lines[-1] == "Not pushed: no token"
