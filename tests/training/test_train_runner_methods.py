"""ORPO and KTO through the app's JobRunner, as the Train tab starts them: a run is cancelled (checkpoint, then
stop), resumed from that checkpoint and finished with no step trained twice, and its adapter is listed for the
arena. (SimPO shares ORPO's trainer builder; DPO's own crash/cancel/resume test is test_train_runner.py.)"""

import pytest

from alignui.training.methods import get_method
from conftest import job_runner, wait_for
from training.test_train_runner import ADMIN, FAST, steps

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", ["orpo", "kto"])
def test_cancel_resume_finish_and_the_arena_lists_the_adapter(storage, method):
    with job_runner(storage, train_rows=120, test_rows=12) as runner:
        config = get_method(method).config_class().from_mapping(FAST)
        run = runner.start(method, "closer", config, ADMIN)
        wait_for(lambda: run.last_checkpoint(), "a first checkpoint")
        assert runner.cancel(run.id, ADMIN).startswith("Cancelling")
        wait_for(lambda: run.state == "cancelled", "the cancel")
        cancelled_at = run.last_checkpoint().name
        runner.resume(run.id, ADMIN)
        wait_for(lambda: run.state == "done", "the run to finish", timeout=900)
        wait_for(lambda: runner.store.get_run(run.id).status == "done", "the index to catch up")
        assert f"resuming from {cancelled_at}" in run.log_path.read_text()
        logged = steps(run)
        assert logged == sorted(set(logged)) and logged[-1] == 40  # no step twice after the resume
        assert runner.store.get_run(run.id).method == method
        assert [a.id for a in runner.store.list_adapters()] == [run.id]
