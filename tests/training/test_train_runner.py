"""The app-side JobRunner with real `python -m alignui train dpo` subprocesses and a real DuckDB index.

A second run started meanwhile waits in the queue (and can be cancelled there). One run goes through
everything a user can do to it: it is killed outright (as the OOM killer would), marked failed with its last
log lines, resumed from its last checkpoint, cancelled (checkpoint, then stop), resumed again and finished;
the index follows every step and the adapter is listed for the arena.
"""

import json
import os
import signal

import pytest

from alignui.db import Store
from alignui.errors import ConflictError, UserError
from alignui.team.identity import Identity, PermissionDenied
from alignui.paths import StorageLayout
from alignui.training.dpo import DPOTrainConfig
from alignui.runs import RunDir
from alignui.training.app.runner import JobRunner, index_row
from conftest import job_runner, wait_for

pytestmark = pytest.mark.slow
ADMIN = Identity("ada", "admin")
FAST = dict(base_model="demo", device="cpu", cpu_threads=1, learning_rate=3e-4, max_steps=40, save_steps=4,
            save_total_limit=3, per_device_train_batch_size=4, max_length=128, max_prompt_length=64, lora_r=4,
            lora_alpha=8, logging_steps=1, sample_prompts=1, sample_max_new_tokens=16)


@pytest.fixture
def runner(storage):
    with job_runner(storage, train_rows=120, test_rows=12) as r:
        yield r


def steps(run: RunDir) -> list[int]:
    return [m["step"] for m in run.read_metrics() if "loss" in m]


def test_crash_resume_cancel_resume_finish(runner, storage):
    config = DPOTrainConfig.from_mapping(FAST)
    run = runner.start("dpo", "closer", config, ADMIN)
    second = runner.start("dpo", "closer", config, ADMIN)  # one job at a time: this one waits
    assert runner.queued() == [second.id] and second.state == "queued"
    assert runner.cancel(second.id, ADMIN) == f"Cancelled {second.id} before it started."
    assert second.state == "cancelled" and runner.queued() == []
    wait_for(lambda: run.last_checkpoint(), "a first checkpoint")
    os.kill(run.read_status()["pid"], signal.SIGKILL)  # what the kernel's OOM killer does
    wait_for(lambda: runner.active_run() is None, "the runner to notice the crash")
    status = run.read_status()
    assert status["state"] == "failed" and "killed by SIGKILL" in status["error"]
    assert "last log lines" in status["error"] and "step " in status["error"]
    assert runner.store.get_run(run.id).status == "failed"
    crashed_at = run.last_checkpoint().name

    runner.resume(run.id, ADMIN)
    wait_for(lambda: run.read_status().get("step", 0) > int(crashed_at.split("-")[1]) + 1, "training to go on")
    assert runner.cancel(run.id, ADMIN).startswith("Cancelling")
    wait_for(lambda: run.state == "cancelled", "the cancel")
    cancelled_at = run.last_checkpoint().name
    assert int(cancelled_at.split("-")[1]) > int(crashed_at.split("-")[1])
    wait_for(lambda: runner.store.get_run(run.id).status == "cancelled", "the index to show the cancel")

    runner.resume(run.id, ADMIN)
    wait_for(lambda: run.state == "done", "the run to finish", timeout=900)
    wait_for(lambda: runner.store.get_run(run.id).status == "done", "the index to catch up")
    log = run.log_path.read_text()
    assert f"resuming from {crashed_at}" in log and f"resuming from {cancelled_at}" in log
    logged = steps(run)
    assert logged == sorted(set(logged)) and logged[-1] == 40  # no step twice after the resumes
    indexed = runner.store.get_run(run.id)
    assert indexed.adapter_path == str(run.adapter_dir) and indexed.snapshot_id == "closer"
    assert indexed.metrics["eval"]["eval_rewards/accuracies"] >= 0 and indexed.metrics["verdict"]
    assert [a.id for a in runner.store.list_adapters()] == [run.id]


def test_refusals_change_nothing(runner, storage):
    with pytest.raises(UserError, match="4-bit loading needs a CUDA GPU"):
        runner.start("dpo", "closer", DPOTrainConfig.from_mapping({**FAST, "load_in_4bit": True}), ADMIN)
    with pytest.raises(UserError, match="whole response"):
        runner.start("dpo", "closer", DPOTrainConfig.from_mapping({**FAST, "max_length": 10,
                                                                    "max_prompt_length": None}), ADMIN)
    with pytest.raises(PermissionDenied):
        runner.start("dpo", "closer", DPOTrainConfig.from_mapping(FAST), Identity("bob", "annotator"))
    with pytest.raises(UserError, match="no snapshot"):
        runner.start("dpo", "../closer", DPOTrainConfig.from_mapping(FAST), ADMIN)
    with pytest.raises(ConflictError, match="not running"):
        runner.cancel("dpo-nope", ADMIN)
    assert not any((storage / "runs").iterdir()) and runner.store.list_runs() == []


def test_reconcile_fails_orphans_and_indexes_cli_runs(storage):
    layout = StorageLayout(storage).ensure()
    orphan = RunDir.create(layout, "dpo-20260101-000000-dead")
    orphan.write_config("dpo", {"beta": 0.1})
    orphan.update_status(state="running", pid=2 ** 22 + 12345, created_at="2026-01-01T00:00:00+00:00")
    orphan.log_path.write_text("step 3/40 loss 0.69\n")
    done = RunDir.create(layout, "dpo-20260102-000000-cli0")
    done.write_config("dpo", {"beta": 0.2})
    done.write_lineage({"snapshot": "s1", "snapshot_sha256": "ab", "base_model": "demo"})
    done.adapter_dir.mkdir()
    (done.adapter_dir / "adapter_config.json").write_text(json.dumps({"r": 4}))
    done.update_status(state="done", summary={"verdict": "✅", "eval": {"eval_rewards/accuracies": 0.9}})
    with Store(layout.db_path) as store:
        JobRunner(layout, store)
        assert orphan.state == "failed" and "app was not running" in orphan.read_status()["error"]
        assert store.get_run(orphan.id).status == "failed"
        assert [a.id for a in store.list_adapters()] == [done.id]
        assert store.get_run(done.id).metrics["eval"] == {"eval_rewards/accuracies": 0.9}
    assert index_row(done)["base_model"] == "demo"
