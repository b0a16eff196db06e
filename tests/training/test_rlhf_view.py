"""The Train tab's RLHF panel as plain data (alignui.training.app.rlhf_view), from run directories written by hand.

Stages of a pipeline found from any of its runs, the panel following the running stage, the reward model's
accuracy and margin histogram, RL curves, the latest rollouts, live RL watch-outs, the reward-model picker.
"""

import json

from alignui.paths import StorageLayout
from alignui.runs import RunDir
from alignui.training.app.rlhf_view import histogram_rows, reward_model_choices, rl_run_for, rlhf_view


def make_run(layout, run_id, method, state, settings=None, **status):
    run = RunDir.create(layout.ensure(), run_id)
    run.write_config(method, settings or {})
    run.update_status(state=state, method=method, **status)
    return run


def pipeline(tmp_path, rl_state="running"):
    layout = StorageLayout(tmp_path)
    reward = make_run(layout, "reward-1", "reward", "done", phase="finished", step=26, max_steps=26,
                      summary={"verdict": "✅ learned the preference"})
    (reward.adapter_dir).mkdir()
    (reward.adapter_dir / "adapter_config.json").write_text("{}")
    (reward.path / "reward_eval.json").write_text(json.dumps(
        {"n": 4, "accuracy": 0.75, "mean_margin": 1.5, "histogram": {"counts": [1, 0, 3], "edges": [-1, 0, 1, 2]}}))
    rl = make_run(layout, "rlhf-1", "rlhf", rl_state, {"reward_model": "reward-1", "init_adapter": ""},
                  phase="training", step=4, max_steps=20, resident="2 model copies in memory: ...")
    for step, reward_value in ((2, -1.0), (4, 0.5)):
        rl.append_metrics({"step": step, "loss": 0.0, "reward": reward_value, "kl": 0.01 * step,
                           "completions/mean_length": 20.0, "reward_std": 1.0})
    with (rl.path / "rollouts.jsonl").open("w") as fh:
        for step in (2, 4):
            fh.write(json.dumps({"step": step, "prompt": "q?", "completion": f"a{step}", "reward": step / 2,
                                 "advantage": 0.1}) + "\n")
    return layout, reward, rl


def test_the_panel_follows_a_pipeline_from_any_of_its_runs(tmp_path):
    layout, reward, rl = pipeline(tmp_path)
    assert rl_run_for(layout, "reward-1").id == "rlhf-1" and rl_run_for(layout, "rlhf-1").id == "rlhf-1"
    view = rlhf_view(layout, "reward-1")
    assert [(s["label"], s["run"], s["state"]) for s in view.stages] == [("reward model", "reward-1", "done"),
                                                                       ("RL", "rlhf-1", "running")]
    assert "step 4/20" in view.stage_markdown and view.resident.startswith("2 model copies")
    assert view.follow("reward-1") == "rlhf-1" and view.follow("rlhf-1") == "rlhf-1"
    assert "accuracy **75%** on 4 pairs" in view.reward_summary
    assert view.histogram == [{"margin": -0.5, "pairs": 1}, {"margin": 0.5, "pairs": 0}, {"margin": 1.5, "pairs": 3}]
    assert [r["value"] for r in view.curves["reward"]] == [-1.0, 0.5] and len(view.curves["kl"]) == 2
    assert view.rollouts == [[4, "q?", "a4", 2.0]]  # the last logged step only
    assert view.verdict == "✅ learned the preference" and view.watchouts == []


def test_done_runs_show_their_final_watchouts_and_verdict(tmp_path):
    layout, _, rl = pipeline(tmp_path, rl_state="done")
    rl.update_status(summary={"verdict": "✅ the policy earns more reward", "watchouts": ["KL is high"]})
    view = rlhf_view(layout, "rlhf-1")
    assert view.watchouts == ["KL is high"] and view.verdict.endswith("✅ the policy earns more reward")
    assert view.follow("reward-1") == "reward-1"  # nothing left to follow


def test_unrelated_runs_and_choices(tmp_path):
    layout, _, _ = pipeline(tmp_path)
    make_run(layout, "dpo-1", "dpo", "done")
    assert rlhf_view(layout, "dpo-1") is None and rlhf_view(layout, "missing") is None
    lone = make_run(layout, "reward-2", "reward", "running")
    assert [s["run"] for s in rlhf_view(layout, lone.id).stages] == ["reward-2"]
    choices = reward_model_choices(layout)
    assert choices[0][1] == "new" and ("reward-1, held-out accuracy 75%", "reward-1") in choices
    assert "reward-2" not in [value for _, value in choices]  # unfinished models are not offered
    assert histogram_rows({}) == []
