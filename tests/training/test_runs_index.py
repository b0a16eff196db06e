"""The runs index is derived from the run directories by one watcher, and a failed index write is shown."""

from conftest import wait_for

from alignui.db import Store
from alignui.paths import StorageLayout
from alignui.runs import RunDir, new_run_id
from alignui.training.app.runner import PACKAGE_ROOT, JobRunner


class _BrokenStore:
    def upsert_run(self, run_id, **fields):
        raise OSError("disk full")


def test_a_run_made_outside_the_runner_reaches_the_index_by_itself(tmp_path):
    layout = StorageLayout(tmp_path).ensure()
    with Store(layout.db_path) as store:
        runner = JobRunner(layout, store, default_base_model="demo", index_every_s=0.2)
        try:
            run = RunDir.create(layout, new_run_id("dpo"))  # as `python -m alignui train` would, app untouched
            run.update_status(state="running", method="dpo", phase="training")
            wait_for(lambda: any(r.id == run.id for r in store.list_runs()), timeout=20, what="the CLI run indexed")
            run.update_status(state="done", phase="finished")
            wait_for(lambda: {r.id: r.status for r in store.list_runs()}.get(run.id) == "done", timeout=20,
                     what="the new state indexed")
        finally:
            runner.shutdown()


def test_an_index_failure_is_kept_for_the_train_tab_and_cleared_by_a_success(tmp_path):
    layout = StorageLayout(tmp_path).ensure()
    run = RunDir.create(layout, new_run_id("dpo"))
    run.update_status(state="done", method="dpo", phase="finished")
    runner = JobRunner(layout, _BrokenStore(), default_base_model="demo", index_every_s=0)
    assert runner.index_problem and "disk full" in runner.index_problem and run.id in runner.index_problem
    with Store(layout.db_path) as store:
        runner.store = store
        runner.sync(run)
        assert runner.index_problem is None


def test_jobs_start_in_the_checkout_that_holds_alignui():
    """The job subprocess gets PACKAGE_ROOT as cwd and PYTHONPATH: `python -m alignui` must resolve there."""
    assert (PACKAGE_ROOT / "alignui" / "__main__.py").is_file()
