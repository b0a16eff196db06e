"""RLHF as one action on the app's JobRunner (real `python -m alignui train` subprocesses, a real DuckDB index).

- start_rlhf queues reward model -> RL; the RL stage trains against the reward model the first stage made,
  both runs are indexed (the reward model as 'reward', the policy as an arena-servable adapter), with lineage;
- cancel_rlhf drops the queued RL stage and stops the reward stage; an RL stage pointed at an unfinished
  reward model fails at once with a message saying what to resume.
"""

import json

import pytest

from alignui.team.identity import Identity, PermissionDenied
from alignui.runs import RunDir
from alignui.training.reward import RewardTrainConfig
from alignui.training.rlhf import RLHFTrainConfig
from alignui.training.app.rlhf_plan import RLHFPlan, cancel_rlhf, plan_of, start_rlhf
from conftest import job_runner, wait_for

pytestmark = pytest.mark.slow
ADMIN = Identity("ada", "admin")
COMMON = dict(base_model="demo", device="cpu", cpu_threads=1, max_length=128, max_prompt_length=64, lora_r=4,
              lora_alpha=8, logging_steps=1, save_steps=2)
REWARD = RewardTrainConfig.from_mapping({**COMMON, "learning_rate": 2e-3, "max_steps": 4,
                                         "per_device_train_batch_size": 8})
RL = RLHFTrainConfig.from_mapping({**COMMON, "learning_rate": 5e-3, "max_steps": 2, "num_generations": 4,
                                   "per_device_train_batch_size": 8, "max_new_tokens": 24, "eval_prompts": 2})


@pytest.fixture
def runner(storage):
    with job_runner(storage, train_rows=64, test_rows=8) as r:
        yield r


def test_one_action_trains_the_reward_model_then_rl_against_it(runner):
    plan = start_rlhf(runner, "closer", RL, ADMIN, reward_config=REWARD)
    assert plan.sft is None and [label for label, _ in plan.stages] == ["reward model", "RL"]
    assert runner.queued() == [plan.rl]  # one job at a time: RL waits for its reward model
    rl = RunDir.open(runner.layout, plan.rl)
    wait_for(lambda: rl.state in ("done", "failed", "cancelled"), "the RL stage to end")
    assert RunDir.open(runner.layout, plan.reward).state == "done"
    assert rl.state == "done", rl.read_status().get("error")
    assert plan_of(runner.layout, plan.rl) == plan
    _, settings = rl.read_config()
    assert settings["reward_model"] == plan.reward and settings["parent_run"] == plan.reward
    lineage = rl.read_lineage()
    assert lineage["reward_models"] == [plan.reward] and lineage["parent_run"] == plan.reward
    runner.sync_all()
    reward_rows = runner.store.list_runs(method="reward", status="done")
    assert [r.id for r in reward_rows] == [plan.reward] and reward_rows[0].adapter_path
    assert plan.rl in [r.id for r in runner.store.list_adapters()]  # the policy is listed for the arena
    assert plan.reward not in [r.id for r in runner.store.list_adapters()]


def test_cancel_stops_every_stage_and_rl_refuses_an_unfinished_reward_model(runner):
    slow_reward = RewardTrainConfig.from_mapping({"max_steps": 400}, base=REWARD)
    plan = start_rlhf(runner, "closer", RL, ADMIN, reward_config=slow_reward)
    reward = RunDir.open(runner.layout, plan.reward)
    wait_for(lambda: (reward.read_status().get("step") or 0) >= 1, "the reward stage to train")
    with pytest.raises(PermissionDenied):
        cancel_rlhf(runner, plan, Identity("bob", "annotator"))
    messages = cancel_rlhf(runner, plan, ADMIN)
    assert any("before it started" in m for m in messages) and any("Cancelling" in m for m in messages)
    wait_for(lambda: reward.state == "cancelled", "the reward stage to stop")
    assert RunDir.open(runner.layout, plan.rl).state == "cancelled"

    alone = RLHFTrainConfig.from_mapping({"reward_model": plan.reward}, base=RL)
    orphan = runner.start("rlhf", "closer", alone, ADMIN)
    wait_for(lambda: orphan.state in ("done", "failed"), "the orphan RL stage to end")
    error = orphan.read_status()["error"]
    assert orphan.state == "failed" and f"reward model run {plan.reward} is cancelled, not finished" in error
    assert not orphan.has_adapter


def test_plan_without_a_reward_stage_reuses_a_model_and_plan_of_reads_it(runner, storage):
    with pytest.raises(ValueError, match="needs reward_config"):
        start_rlhf(runner, "closer", RL, ADMIN)
    run = RunDir.create(runner.layout, "rlhf-manual")
    run.write_config("rlhf", RLHFTrainConfig.from_mapping({"reward_model": "rm-x", "init_adapter": "/abs/path"},
                                                          base=RL).to_dict())
    RunDir.create(runner.layout, "rm-x")
    assert plan_of(runner.layout, "rlhf-manual") == RLHFPlan(rl="rlhf-manual", reward="rm-x", sft=None)
    assert json.loads(json.dumps(RLHFPlan("a", "b").stages)) == [["reward model", "b"], ["RL", "a"]]
