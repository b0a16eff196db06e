"""One GPU, shared: while a DPO job runs (a subprocess launched by the app's JobRunner, as the Train tab
does), generation through the named API keeps answering. On CPU this shows the app stays usable; the
job and the web process's generation only share the device, never a thread or a lock."""


import pytest

from alignui.team.identity import LOCAL_OPERATOR
from alignui.training.dpo import DPOTrainConfig
from alignui.training.app.runner import JobRunner
from alignui.training.synthetic import closer_snapshot
from conftest import wait_for

LONG_JOB = dict(base_model="demo", device="cpu", cpu_threads=1, learning_rate=3e-4, max_steps=2000, save_steps=500,
                per_device_train_batch_size=4, max_length=128, max_prompt_length=64, lora_r=4, lora_alpha=8,
                logging_steps=1, sample_prompts=1, sample_max_new_tokens=8)


@pytest.mark.slow
def test_generation_keeps_answering_while_a_training_job_runs(server, client):
    layout, store = server.ctx.layout, server.ctx.store
    closer_snapshot(layout.root, "closer", train_rows=60, test_rows=6)
    runner = JobRunner(layout, store, default_base_model="demo", poll_s=0.2, kill_grace_s=60)
    try:
        run = runner.start("dpo", "closer", DPOTrainConfig.from_mapping(LONG_JOB), LOCAL_OPERATOR)
        wait_for(lambda: run.read_status().get("step", 0) >= 2, "the job to be training")
        step_before = run.read_status()["step"]
        answers = []
        for prompt in ("What color is the sky?", "Name a fruit.", "Where do penguins live?"):
            text_a, text_b, pair_id = client.predict(prompt, api_name="/generate_pair")
            answers.append((text_a, text_b, pair_id))
            assert runner.active_run() == run.id and run.state == "running"  # the job was alive meanwhile
        assert all(a and b and pid for a, b, pid in answers)
        assert client.predict(answers[0][2], "a", api_name="/submit_vote").startswith("Saved")
        step_after = wait_for(lambda: (s := run.read_status().get("step", 0)) > step_before and s, "more steps")
        print(f"\n3 pairs generated while the job went from step {step_before} to {step_after}")
        assert runner.cancel(run.id, LOCAL_OPERATOR).startswith("Cancelling")
        wait_for(lambda: run.state == "cancelled", "the cancel")
        wait_for(lambda: runner.active_run() is None and store.get_run(run.id).status == "cancelled", "the index")
    finally:
        runner.shutdown(cancel=True)
