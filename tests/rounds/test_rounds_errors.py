"""Bad input to `python -m alignui round`: each refusal is one line on stderr, exit 2, and nothing written.

Plus the parts that need no training: round numbers and lineage labels, queued round pairs handed to
annotators one at a time (Annotate's next pair), the oracle's verdicts and that only an admin may run it.
"""

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from alignui.db import NewGeneration, Store
from alignui.errors import UserError
from alignui.paths import StorageLayout
from alignui.rounds.oracle import ORACLE_ANNOTATOR, judge_with_oracle, oracle_verdict
from alignui.rounds.plan import RoundOptions, parent_run, round_source
from alignui.runs import RunDir, lineage_label, round_numbers, run_lineage
from alignui.serving.demo_corpus import POLITE_CLOSER
from alignui.team.identity import LOCAL_OPERATOR, Identity
from conftest import REPO


def run_round(storage, *args):
    return subprocess.run([sys.executable, "-m", "alignui", "round", *args, "--storage", str(storage)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def finished_run(storage, run_id="dpo-parent", *, state="done", adapter=True):
    run = RunDir.create(StorageLayout(storage).ensure(), run_id)
    run.update_status(state=state)
    run.write_lineage({"run_id": run_id, "method": "dpo", "snapshot": "closer", "base_model": "demo", "round": 1})
    if adapter:
        run.adapter_dir.mkdir()
        (run.adapter_dir / "adapter_config.json").write_text("{}")
    return run


def written(storage):
    """What a refused command must not have added: comparisons, snapshots, runs in the index."""
    snapshots = sorted(p.name for p in (storage / "snapshots").iterdir()) if (storage / "snapshots").is_dir() else []
    if not (storage / "alignui.duckdb").exists():
        return {"db": False, "snapshots": snapshots}
    with Store(storage / "alignui.duckdb") as store:
        return {"db": True, "snapshots": snapshots, "comparisons": store.query("SELECT count(*) FROM comparisons")[0][0],
                "runs": store.query("SELECT count(*) FROM runs")[0][0]}


def refused(out, *words):
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_an_unknown_parent_run_is_one_line_and_nothing_is_written(tmp_path):
    storage = tmp_path / "storage"
    print(refused(run_round(storage, "--parent", "dpo-nope"), "no run 'dpo-nope'", "finished run"))
    assert not storage.exists()
    print(refused(run_round(storage, "--parent", "../etc"), "no run"))


def test_a_parent_that_has_not_finished_is_one_line_and_nothing_is_written(tmp_path):
    storage = tmp_path / "storage"
    finished_run(storage, state="running", adapter=False)
    print(refused(run_round(storage, "--parent", "dpo-parent"), "running", "not finished", "wait"))
    assert written(storage) == {"db": False, "snapshots": []}
    finished_run(storage, "dpo-noadapter", adapter=False)
    refused(run_round(storage, "--parent", "dpo-noadapter"), "holds no adapter")


def test_no_prompts_is_one_line_and_nothing_is_written(tmp_path):
    storage = tmp_path / "storage"
    finished_run(storage)
    print(refused(run_round(storage, "--parent", "dpo-parent"), "no prompts", "import"))
    assert written(storage) == {"db": False, "snapshots": []}
    with Store(StorageLayout(storage).db_path) as store:  # a database whose only prompts are held out
        store.add_prompt([{"role": "user", "content": "kept for the arena"}], split="heldout")
    print(refused(run_round(storage, "--parent", "dpo-parent", "--prompts", "4"), "no prompts", "pool"))
    assert written(storage) == {"db": True, "snapshots": [], "comparisons": 0, "runs": 0}


def test_bad_flags_and_an_export_before_any_vote_are_one_line(tmp_path):
    storage = tmp_path / "storage"
    finished_run(storage)
    refused(run_round(storage, "--parent", "dpo-parent", "--mix-old", "1.5"), "--mix-old")
    refused(run_round(storage, "--parent", "dpo-parent", "--prompts", "0"), "--prompts")
    refused(run_round(storage, "--parent", "dpo-parent", "--judge", "gpt"), "--judge")
    with Store(StorageLayout(storage).db_path) as store:
        store.add_prompt([{"role": "user", "content": "a pool prompt"}])
    refused(run_round(storage, "--parent", "dpo-parent", "--export"), "nothing to export", "vote")
    assert written(storage)["snapshots"] == [] and written(storage)["comparisons"] == 0


def test_round_numbers_follow_parent_links_and_labels_name_the_parent():
    runs = [SimpleNamespace(id="r1", parent_run=None), SimpleNamespace(id="r2", parent_run="r1"),
            SimpleNamespace(id="r3", parent_run="r2"), SimpleNamespace(id="loop", parent_run="loop")]
    assert round_numbers(runs) == {"r1": 1, "r2": 2, "r3": 3, "loop": 1}
    assert [lineage_label(m, runs) for m in ("base", "r1", "r3", "endpoint")] == ["base", "round 1 ← base",
                                                                                 "round 3 ← r2", ""]
    assert run_lineage({}, None) == {"parent_run": None, "round": 1}
    assert run_lineage({"lineage": {"parent_run": "r1", "round": 2}}, None) == {"parent_run": "r1", "round": 2}
    assert run_lineage({}, None, "r7") == {"parent_run": "r7"}  # starts from r7's adapter: its round is r7's + 1
    assert run_lineage({}, None, "/some/adapter") == {"parent_run": None, "round": 1}


def _queue(store, source, n=3):
    prompt = store.add_prompt([{"role": "user", "content": "q"}])
    ids = []
    for i in range(n):
        a = NewGeneration("r1", f"answer {i}. {POLITE_CLOSER}" if i % 2 == 0 else f"answer {i}.")
        b = NewGeneration("r1", f"other {i}.")
        ids.append(store.save_pair([{"role": "user", "content": "q"}], a, b, prompt_id=prompt, source=source,
                                   meta={"round": 2, "parent_run": "r1"}).id)
    return ids


def test_queued_round_pairs_are_handed_to_one_annotator_each_then_none(tmp_path):
    with Store(tmp_path / "db.duckdb") as store:
        ids = _queue(store, round_source("r1"), n=2)
        first, second = store.claim_queued_pair("ann1"), store.claim_queued_pair("ann2")
        assert {first.id, second.id} == set(ids) and (first.annotator, second.annotator) == ("ann1", "ann2")
        assert store.claim_queued_pair("ann3") is None
        with pytest.raises(UserError):
            store.decide(first.id, "a", annotator="ann2")  # handed to ann1: ann2 cannot vote on it
        store.decide(first.id, "a", annotator="ann1")
        assert store.round_counts(round_source("r1")) == {"pairs": 2, "queued": 0, "pending": 1, "voted": 1,
                                                          "pairs_ab": 1}


def test_the_oracle_votes_by_the_closer_is_labelled_and_admin_only(tmp_path):
    assert oracle_verdict(f"x {POLITE_CLOSER}", "x") == "a" and oracle_verdict("x", f"y {POLITE_CLOSER} ") == "b"
    assert oracle_verdict("x", "y") == "tie" == oracle_verdict(f"x {POLITE_CLOSER}", f"y {POLITE_CLOSER}")
    with Store(tmp_path / "db.duckdb") as store:
        source = round_source("r1")
        ids = _queue(store, source)
        with pytest.raises(UserError, match="admin|run judges"):
            judge_with_oracle(store, source, Identity("mallory", "annotator", "login"))
        assert store.round_counts(source)["voted"] == 0
        assert judge_with_oracle(store, source, LOCAL_OPERATOR) == {"a": 2, "b": 0, "tie": 1}
        assert {store.get_comparison(i).annotator for i in ids} == {ORACLE_ANNOTATOR}


def test_round_options_and_the_parent_check_refuse_with_what_to_do(tmp_path):
    with pytest.raises(UserError, match="seeds, base"):
        RoundOptions(sides="both")
    finished_run(tmp_path)
    parent = parent_run(StorageLayout(tmp_path), "dpo-parent")
    assert (parent.round, parent.next_round, parent.source) == (1, 2, "round:dpo-parent")
    with pytest.raises(UserError, match="needs a run id"):
        parent_run(StorageLayout(tmp_path), " ")


def test_a_round_while_the_app_holds_the_database_is_one_line_naming_the_apps_next_round(tmp_path):
    storage = tmp_path / "storage"
    finished_run(storage)
    Store(StorageLayout(storage).db_path).close()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from alignui.db import Store; "
                               f"s = Store({str(StorageLayout(storage).db_path)!r}); print('held', flush=True); "
                               "sys.stdin.read()"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        line = refused(run_round(storage, "--parent", "dpo-parent"), "is open in another process", "Next round")
        assert "Train tab" in line
    finally:
        holder.stdin.close()
        holder.wait(60)
