"""The run directory layout: ids, atomic status, metrics stream (with resume truncation), log tail, checkpoints."""

import json

import pytest

from alignui.errors import NotFoundError
from alignui.paths import StorageLayout
from alignui.runs import RunDir, list_run_dirs, new_run_id


def test_run_ids_are_safe_unique_and_sort_by_time(tmp_path):
    layout = StorageLayout(tmp_path).ensure()
    ids = {new_run_id("dpo") for _ in range(50)}  # 8 random hex: a clash among 50 is ~3e-7 likely
    assert len(ids) == 50 and all(layout.run_dir(i).parent == layout.runs_dir for i in ids)
    a, b = RunDir.create(layout, "dpo-20260101-000000-aaaa"), RunDir.create(layout, "rlhf-20260102-000000-bbbb")
    assert [r.id for r in list_run_dirs(layout)] == [b.id, a.id]
    assert RunDir.open(layout, a.id) == a
    with pytest.raises(NotFoundError):
        RunDir.open(layout, "../../etc")
    with pytest.raises(NotFoundError):
        RunDir.open(layout, "dpo-missing")


def test_a_clashing_id_is_drawn_again_never_reused(tmp_path, monkeypatch):
    import alignui.runs as runs

    layout = StorageLayout(tmp_path).ensure()
    drawn = iter(["dpo-20260101-000000-aaaaaaaa", "dpo-20260101-000000-aaaaaaaa", "dpo-20260101-000000-bbbbbbbb"])
    monkeypatch.setattr(runs, "new_run_id", lambda method: next(drawn))
    first, second = RunDir.create_new(layout, "dpo"), RunDir.create_new(layout, "dpo")
    assert (first.id, second.id) == ("dpo-20260101-000000-aaaaaaaa", "dpo-20260101-000000-bbbbbbbb")


def test_status_merges_atomically_and_metrics_stream(tmp_path):
    run = RunDir.create(StorageLayout(tmp_path).ensure(), "dpo-1")
    run.update_status(state="running", step=1)
    run.update_status(step=2)
    assert run.read_status()["state"] == "running" and run.state == "running" and run.read_status()["step"] == 2
    assert not list(run.path.glob(".status.json.*"))  # no temp file left behind
    for step in range(1, 6):
        run.append_metrics({"step": step, "loss": 1 / step})
    with run.metrics_path.open("a") as fh:
        fh.write('{"step": 6, "lo')  # a line being written right now
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3, 4, 5]
    run.truncate_metrics(after_step=3)
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3]


def test_config_lineage_log_and_checkpoints(tmp_path):
    run = RunDir.create(StorageLayout(tmp_path).ensure(), "dpo-2")
    run.write_config("dpo", {"beta": 0.1, "base_model": "demo"})
    assert run.read_config() == ("dpo", {"beta": 0.1, "base_model": "demo"})
    run.write_lineage({"snapshot": "s1"})
    assert run.read_lineage() == {"snapshot": "s1"}
    run.log_path.write_text("\n".join(f"line {i}" for i in range(100)) + "\n")
    assert run.log_tail(3) == "line 97\nline 98\nline 99"
    for step in (10, 2, 30):
        d = run.checkpoints_dir / f"checkpoint-{step}"
        d.mkdir(parents=True)
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (run.checkpoints_dir / "checkpoint-40").mkdir()  # being written: no trainer_state.json yet
    assert [p.name for p in run.checkpoints()] == ["checkpoint-2", "checkpoint-10", "checkpoint-30"]
    assert run.last_checkpoint().name == "checkpoint-30" and not run.has_adapter
