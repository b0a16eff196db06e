"""The optional first RLHF stage: SFT on the chosen responses (`python -m alignui train sft`), then RL from it.

- the config and presets; SFT uses only (prompt, chosen) in TRL's prompt-completion form;
- on the demo model: the loss falls, the adapter moved, and the RL stage started with init_adapter=<sft run>
  trains on top of it with a frozen copy of it as the reference (said in the residency line), saving only the
  policy adapter.
"""

import json

import pytest

from alignui.training.config import build_config, preset_names
from alignui.training.methods import get_method
from alignui.training.sft import SFTTrainConfig, sft_rows
from training.test_rlhf import run_train


def test_config_presets_and_rows():
    method = get_method("sft")
    assert method.config_class() is SFTTrainConfig and method.produces_adapter
    for name in preset_names(method.presets_path):
        build_config(SFTTrainConfig, config_file=method.presets_path, preset=name)
    assert SFTTrainConfig().learning_rate == 2e-5 and SFTTrainConfig().warnings() == []
    assert any("SFT range" in w for w in SFTTrainConfig(learning_rate=0.1).warnings())
    rows = [{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "good"}],
             "rejected": [{"role": "assistant", "content": "bad"}]}]
    assert sft_rows(rows) == [{"prompt": rows[0]["prompt"], "completion": rows[0]["chosen"]}]


@pytest.mark.slow
def test_sft_then_rl_from_the_sft_adapter(reward_storage):
    storage, reward = reward_storage
    sft = run_train(storage, "sft", "--snapshot", "closer", "--preset", "cpu-demo", "--set", "max_steps=12",
                    "--set", "sample_prompts=2")
    run = storage / "runs" / sft["run"]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m and not any(k.startswith("eval_") for k in m)]
    print(f"SFT loss {losses[0]:.3f} -> {losses[-1]:.3f}, held-out {sft['eval'].get('eval_loss'):.3f}")
    assert sft["status"] == "done" and sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.03 and sft["params_moved"] > 0.01
    assert (run / "adapter" / "adapter_config.json").is_file() and "init_adapter=" + sft["run"] in sft["verdict"]

    rl = run_train(storage, "rlhf", "--snapshot", "closer", "--preset", "cpu-demo", "--set", "max_steps=2",
                   "--set", f"init_adapter={sft['run']}", "--set", f"reward_model={reward['run']}",
                   "--set", "eval_prompts=2")
    assert rl["status"] == "done" and rl["steps"] == 2
    assert "frozen copy of the starting adapter ('ref')" in rl["resident"]
    adapter = storage / "runs" / rl["run"] / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "ref").exists()
