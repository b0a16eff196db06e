"""The command-line contract for real, in subprocesses: `import` then `export` print a JSON summary as the
last line; a push with the hub unreachable (no offline flag: a real attempt) fails with one line, exit 2,
and the snapshot stays."""

import json
import os
import subprocess
import sys

from alignui.data.snapshot import load_snapshot, resolve_snapshot, verify_snapshot
from conftest import REPO

FIX = REPO / "tests" / "fixtures"


def run(*args, storage, env=None):
    cmd = [sys.executable, "-m", "alignui", *args, "--storage", str(storage)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)


def last_json(out):
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_then_export_contract(storage):
    summary = last_json(run("import", str(FIX / "hh_rlhf.jsonl"), storage=storage))
    assert {k: summary[k] for k in ("imported", "skipped", "reasons")} == {
        "imported": 2, "skipped": 1, "reasons": {"empty reply": 1}}
    last_json(run("import", str(FIX / "argilla_ultrafeedback.csv"), "--format", "ultrafeedback", storage=storage))
    summary = last_json(run("import", str(FIX / "prompts.txt"), "--split", "heldout", storage=storage))
    assert summary["kind"] == "prompts" and summary["imported"] == 2
    out = last_json(run("export", "--format", "parquet", "--test-size", "0.25", storage=storage))
    assert {"snapshot", "path", "rows", "test_rows"} <= set(out) and (out["rows"], out["test_rows"]) == (4, 1)
    assert out["over_max_length"] == 0  # the demo model's tokenizer (offline: the app would serve the demo model)
    ref = resolve_snapshot(storage)
    assert ref.id == out["snapshot"] and str(ref.path) == out["path"] and verify_snapshot(ref)
    assert (ref.path / "data.parquet").is_file() and ref.manifest["truncation"]["tokenizer"]
    plain = last_json(run("export", "--plain", "--test-size", "0", "--max-length", "0", storage=storage))
    data = load_snapshot(resolve_snapshot(storage, plain["snapshot"]))
    assert isinstance(data["train"][0]["prompt"], str) and plain["test_rows"] == 0


def test_push_with_the_hub_unreachable_keeps_the_snapshot(storage):
    last_json(run("import", str(FIX / "trl_plain.jsonl"), storage=storage))
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "ALIGNUI_OFFLINE")}
    env["HF_TOKEN"] = "hf_not_a_real_token"
    out = run("export", "--push-to-hub", "someone/prefs", "--max-length", "0", storage=storage, env=env)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("error: pushing to someone/prefs failed: ")
    ref = resolve_snapshot(storage)
    assert f"the local snapshot {ref.id} is saved at {ref.path}" in out.stderr and verify_snapshot(ref)


def test_export_with_nothing_to_export_is_one_line(tmp_path):
    out = run("export", storage=tmp_path / "empty")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("error: nothing to export") and out.stderr.count("\n") == 1
