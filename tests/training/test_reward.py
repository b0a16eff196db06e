"""RLHF stage 1: the reward model (`python -m alignui train reward`) on the demo model on CPU.

- the config: defaults, validation with messages that say what to do, the presets file;
- training did something: LoRA + score head moved, loss fell, held-out accuracy is high on pairs whose
  chosen response carries a programmatic property (ends with demo_corpus.POLITE_CLOSER);
- the run is a registered reward model: margins histogram, adapter with the score head, scoring metadata,
  lineage, indexed as method 'reward' (not a policy the arena serves).
"""

import json
from pathlib import Path

import pytest

from alignui.training.config import TrainConfigError, build_config, preset_names
from alignui.training.methods import get_method
from alignui.training.reward import RewardTrainConfig, margin_report


def test_config_defaults_validation_and_warnings():
    config = RewardTrainConfig()
    assert config.learning_rate == 1e-4 and config.center_rewards_coefficient is None and config.warnings() == []
    with pytest.raises(TrainConfigError, match="histogram_bins must be at least 2"):
        RewardTrainConfig(histogram_bins=1)
    with pytest.raises(TrainConfigError, match="center_rewards_coefficient must be 0 or more"):
        RewardTrainConfig(center_rewards_coefficient=-0.1)
    assert any("outside the usual range for a LoRA reward model" in w
               for w in RewardTrainConfig(learning_rate=0.5).warnings())
    typed = RewardTrainConfig.from_mapping({"center_rewards_coefficient": "0.01", "histogram_bins": "10"})
    assert typed.center_rewards_coefficient == 0.01 and typed.histogram_bins == 10


def test_every_preset_builds_a_valid_config():
    method = get_method("reward")
    assert method.config_class() is RewardTrainConfig and method.produces_adapter is False
    names = preset_names(method.presets_path)
    assert names[0] == "cpu-demo" and {"gpu-lora", "gpu-qlora"} <= set(names)
    for name in names:
        assert isinstance(build_config(RewardTrainConfig, config_file=method.presets_path, preset=name),
                          RewardTrainConfig)


def test_margin_report_counts_every_pair():
    report = margin_report([1.0, 2.0, -0.5, 3.0], bins=4)
    assert report["n"] == 4 and report["accuracy"] == 0.75 and report["mean_margin"] == pytest.approx(1.375)
    assert sum(report["histogram"]["counts"]) == 4 and len(report["histogram"]["edges"]) == 5
    assert margin_report([], bins=4) == {"n": 0}


@pytest.mark.slow
def test_reward_model_learns_the_property_and_is_registered(reward_storage):
    storage, summary = reward_storage
    run = storage / "runs" / summary["run"]
    assert summary["status"] == "done" and summary["reward_model"] == str(run)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m and not any(k.startswith("eval_") for k in m)]
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    report = json.loads((run / "reward_eval.json").read_text())
    print(f"reward model: loss {first:.3f} -> {last:.3f}; held-out accuracy {report['accuracy']:.1%} on "
          f"{report['n']} pairs, mean margin {report['mean_margin']:+.2f}; params moved {summary['params_moved']:.3f}")
    assert last < first - 0.3 and summary["params_moved"] > 0.01
    assert report["n"] == 40 and report["accuracy"] >= 0.9 and report["mean_margin"] > 0
    assert sum(report["histogram"]["counts"]) == 40 and len(report["margins"]) == 40
    assert summary["eval"]["accuracy"] == report["accuracy"] and "margins" not in summary["eval"]
    assert summary["verdict"].startswith("✅ learned the preference")
    assert any("eval_accuracy" in m for m in metrics)  # the Train tab's curves see the held-out accuracy


@pytest.mark.slow
def test_adapter_holds_the_score_head_and_says_how_to_score(reward_storage, demo_model_dir):
    from safetensors.torch import load_file

    storage, summary = reward_storage
    run = storage / "runs" / summary["run"]
    weights = load_file(run / "adapter" / "adapter_model.safetensors")
    assert any("score" in name for name in weights)  # modules_to_save: the head travels with the adapter
    assert any("lora_B" in name and t.abs().sum() > 0 for name, t in weights.items())
    meta = json.loads((run / "adapter" / "alignui_reward.json").read_text())
    assert meta["kind"] == "reward" and meta["conversational"] is True and meta["snapshot"] == "closer"
    assert meta["base_model"] == "demo" and Path(meta["base_model_path"]) == demo_model_dir.resolve()
    lineage = json.loads((run / "lineage.json").read_text())
    assert lineage["method"] == "reward" and lineage["snapshot"] == "closer" and len(lineage["snapshot_sha256"]) == 64
    assert not (storage / "alignui.duckdb").exists()  # the job never opened the database


@pytest.mark.slow
def test_the_runner_indexes_it_as_a_reward_model_not_a_policy(reward_storage, tmp_path):
    from alignui.db import Store
    from alignui.runs import RunDir
    from alignui.training.app.runner import index_row

    storage, summary = reward_storage
    row = index_row(RunDir(storage / "runs" / summary["run"]))
    assert row["method"] == "reward" and row["status"] == "done" and row["adapter_path"].endswith("adapter")
    store = Store(tmp_path / "index.duckdb")
    try:
        store.upsert_run(summary["run"], **row)
        assert [r.id for r in store.list_runs(method="reward", status="done")] == [summary["run"]]
        assert summary["run"] not in [r.id for r in store.list_adapters()]  # the arena serves policies only
    finally:
        store.close()
