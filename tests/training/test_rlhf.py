"""RLHF stage 2: online RL of a LoRA policy against the reward model (`python -m alignui train rlhf`).

Fast checks of the config, the prompt sources, the rollout log and the watch-outs; then, on the demo model on
CPU with the session's reward model (conftest.reward_storage, trained to prefer answers that end with
demo_corpus.POLITE_CLOSER):
- the effect test: RLOO raises the policy's mean reward AND how often its answers end with the phrase, on 110
  held-out questions never trained on, versus the base model (measured here, numbers printed);
- GRPO is selectable, reward models can be ensembled (summed), and an RL run cancelled with SIGTERM (what the
  app's Cancel sends) keeps a checkpoint and resumes to the end.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from alignui.serving.demo_corpus import POLITE_CLOSER
from alignui.errors import UserError
from alignui.training.config import TrainConfigError, build_config, preset_names
from alignui.training.methods import get_method
from alignui.training.rlhf import RLHFTrainConfig, collect_prompts, fit_prompt, write_rollouts
from alignui.training.rlhf_eval import compare_rewards, rl_watchouts, verdict
from alignui.training.synthetic import split_prompts
from conftest import REPO

HELD_OUT = 110  # conftest.reward_storage's snapshot keeps these questions out of training


def run_train(storage, method, *args, timeout=900):
    cmd = [sys.executable, "-m", "alignui", "train", method, "--storage", str(storage), *args]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- config, prompts, rollouts, watch-outs (fast) -----------------------------------------------------------------
def test_config_defaults_validation_and_guidance():
    config = RLHFTrainConfig()
    assert (config.algorithm, config.beta, config.num_generations, config.reward_models()) == ("rloo", 0.05, 4, [""])
    assert RLHFTrainConfig(reward_model="rm-1, rm-2").reward_models() == ["rm-1", "rm-2"]
    with pytest.raises(TrainConfigError, match=r"\(6\) must be a multiple of num_generations \(4\)"):
        RLHFTrainConfig(per_device_train_batch_size=6)
    with pytest.raises(TrainConfigError, match="algorithm must be one of rloo, grpo, ppo"):
        RLHFTrainConfig(algorithm="dqn")
    with pytest.raises(TrainConfigError, match="num_generations must be at least 2"):
        RLHFTrainConfig(num_generations=1, per_device_train_batch_size=4)
    with pytest.raises(TrainConfigError, match="no prompts to train on"):
        RLHFTrainConfig(use_snapshot_prompts=False)
    with pytest.raises(TrainConfigError, match="temperature must be positive"):
        RLHFTrainConfig(temperature=0)
    notes = RLHFTrainConfig(beta=0, temperature=0.2, learning_rate=1e-2).warnings()
    assert len(notes) == 3 and any("reward hacking" in n for n in notes)
    assert "KL" in RLHFTrainConfig.help_of("beta") and "0.01-0.1" in RLHFTrainConfig.help_of("beta")


def test_every_preset_builds_a_valid_config():
    method = get_method("rlhf")
    assert method.config_class() is RLHFTrainConfig and method.produces_adapter
    names = preset_names(method.presets_path)
    assert names[0] == "cpu-demo" and "gpu-grpo" in names
    configs = {n: build_config(RLHFTrainConfig, config_file=method.presets_path, preset=n) for n in names}
    assert configs["gpu-grpo"].algorithm == "grpo" and configs["cpu-demo"].algorithm == "rloo"


def test_prompts_come_from_the_snapshot_and_a_prompts_file(tmp_path, demo_model_dir):
    from datasets import Dataset
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    user = lambda text: [{"role": "user", "content": text}]  # noqa: E731
    data = {"train": Dataset.from_dict({"prompt": [user("a?"), user("b?"), user("a?")]})}
    (tmp_path / "pool.txt").write_text("c?\n\nb?\n")
    (tmp_path / "pool.jsonl").write_text(json.dumps({"prompt": "d?"}) + "\n" + json.dumps({"messages": user("e?")}))
    config = RLHFTrainConfig(prompts_file=str(tmp_path / "pool.txt"))
    assert collect_prompts(config, data, tok) == [user("a?"), user("b?"), user("c?")]  # distinct, one form
    jsonl = RLHFTrainConfig(prompts_file=str(tmp_path / "pool.jsonl"), use_snapshot_prompts=False)
    assert collect_prompts(jsonl, data, tok) == [user("d?"), user("e?")]
    (tmp_path / "bad.jsonl").write_text('{"prompt": "ok"}\nnot json\n')
    with pytest.raises(UserError, match="bad.jsonl line 2 is not JSON"):
        collect_prompts(RLHFTrainConfig(prompts_file=str(tmp_path / "bad.jsonl")), data, tok)
    with pytest.raises(UserError, match="does not exist"):
        collect_prompts(RLHFTrainConfig(prompts_file=str(tmp_path / "missing.txt")), data, tok)
    long = [{"role": "system", "content": "word " * 200}] + user("short?")
    assert fit_prompt(tok, long, 64) == user("short?")  # the earliest turn goes first
    assert fit_prompt(tok, user("word " * 200), 64) is None
    with pytest.raises(UserError, match="no prompts left to train on"):
        collect_prompts(RLHFTrainConfig(max_prompt_length=4, max_length=64), data, tok)


def test_rollouts_log_one_sample_per_prompt_group(tmp_path):
    group = 4
    logs = {"prompt": [[{"role": "user", "content": f"q{i // group}"}] for i in range(8)],
            "completion": [[{"role": "assistant", "content": f"c{i}"}] for i in range(8)],
            "rewards": {"reward": [float(i) for i in range(8)]}, "advantages": [0.5] * 8}
    path = tmp_path / "rollouts.jsonl"
    write_rollouts(path, 3, logs, group, 3)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["prompt"], r["completion"], r["reward"]) for r in rows] == [("q0", "c0", 0.0), ("q1", "c4", 4.0),
                                                                           ("q0", "c1", 1.0)]
    assert all(r["step"] == 3 and r["advantage"] == 0.5 for r in rows)


def test_watchouts_name_reward_hacking_and_missing_signal():
    healthy = [{"step": s, "reward": -2 + s, "kl": 0.01 * s, "completions/mean_length": 20, "reward_std": 1.0,
                "frac_reward_zero_std": 0.0, "completions/clipped_ratio": 0.0} for s in range(1, 7)]
    assert rl_watchouts(healthy) == []
    hacking = [{**r, "kl": 0.2 * r["step"], "completions/mean_length": 40 / r["step"]} for r in healthy]
    notes = rl_watchouts(hacking)
    assert any("KL to the reference is high" in n for n in notes) and any("much shorter" in n for n in notes)
    stuck = [{**r, "reward": 1.0, "frac_reward_zero_std": 0.9, "completions/clipped_ratio": 0.8} for r in healthy]
    notes = rl_watchouts(stuck)
    assert any("flat" in n for n in notes) and any("identical rewards" in n for n in notes) \
        and any("max_new_tokens" in n for n in notes)


def test_verdict_uses_a_sign_test_on_held_out_prompts():
    samples = [{"reward_base": 0.0, "reward_adapter": 1.0}] * 9 + [{"reward_base": 1.0, "reward_adapter": 0.0}]
    result = compare_rewards(samples)
    assert (result["wins"], result["losses"], result["win_rate"]) == (9, 1, 0.9) and result["p_value"] < 0.05
    assert verdict(result).startswith("✅") and verdict(compare_rewards(samples[:2])).startswith("⚠️")
    assert verdict(compare_rewards(samples[-1:])).startswith("❌") and verdict({"n": 0}).startswith("ℹ️")


# -- training on the demo model (slow) -----------------------------------------------------------------------------
def sample_texts(model, tokenizer, prompts, samples_per_prompt=2, seed=0, max_new_tokens=64) -> list[str]:
    from alignui.training.synthetic import sample_texts as sample

    return sample(model, tokenizer, prompts, samples_per_prompt=samples_per_prompt, seed=seed,
                  max_new_tokens=max_new_tokens)


def held_out_effect(storage, reward, summary, demo_model_dir) -> tuple[list[str], dict]:
    """On the held-out prompts, for the base and the trained policy: (share of answers ending with the polite
    closer, mean reward of the registered reward model); 2 samples per prompt, seed 0, 64 new tokens."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignui.serving.reward_model import RewardJudge

    _, held = split_prompts(random.Random(0), HELD_OUT)  # the split conftest's snapshot was built with
    prompts = [q for q, _ in held]
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32).eval()
    judge = RewardJudge.load(storage / "runs" / reward["run"], "cpu")
    results = {}
    for name in ("base", "policy"):
        model = base if name == "base" else PeftModel.from_pretrained(base, summary["adapter"]).eval()
        texts = sample_texts(model, tokenizer, prompts)
        rewards = judge.score_many(prompts * 2, texts)
        results[name] = (sum(t.strip().endswith(POLITE_CLOSER) for t in texts) / len(texts),
                         sum(rewards) / len(rewards))
    return prompts, results


@pytest.fixture(scope="module")
def rl_run(reward_storage):
    storage, reward = reward_storage
    summary = run_train(storage, "rlhf", "--snapshot", "closer", "--preset", "cpu-demo",
                        "--set", f"reward_model={reward['run']}", "--set", "seed=42")
    return storage, reward, summary


@pytest.mark.slow
def test_effect_rlhf_raises_mean_reward_and_the_property_on_held_out_prompts(rl_run, demo_model_dir):
    storage, reward, summary = rl_run
    prompts, results = held_out_effect(storage, reward, summary, demo_model_dir)
    (f0, r0), (f1, r1) = results["base"], results["policy"]
    print(f"RLHF effect on {len(prompts)} held-out prompts x 2 samples: '{POLITE_CLOSER}' at the end {f0:.1%} -> "
          f"{f1:.1%}; mean reward {r0:+.2f} -> {r1:+.2f}; in-run verdict: {summary['verdict']}")
    assert f0 < 0.3 and f1 > 0.6 and f1 > f0 + 0.4
    assert r1 > r0 + 1.0
    assert summary["eval"]["reward_policy"] > summary["eval"]["reward_base"]
    assert summary["verdict"].startswith("✅") and summary["params_moved"] > 0.01


@pytest.mark.slow
def test_live_metrics_rollouts_samples_and_residency(rl_run):
    storage, reward, summary = rl_run
    run = storage / "runs" / summary["run"]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if "reward" in m]
    assert len(train) == 10 and all("kl" in m and "completions/mean_length" in m for m in train)
    first, last = sum(m["reward"] for m in train[:3]) / 3, sum(m["reward"] for m in train[-3:]) / 3
    assert last > first + 1.0
    rollouts = [json.loads(line) for line in (run / "rollouts.jsonl").read_text().splitlines()]
    assert {r["step"] for r in rollouts} == {m["step"] for m in train}
    assert all({"prompt", "completion", "reward", "advantage"} <= set(r) for r in rollouts)
    assert len([r for r in rollouts if r["step"] == train[-1]["step"]]) == 4
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 16 and all("reward_base" in s and "reward_adapter" in s for s in samples)
    status = json.loads((run / "status.json").read_text())
    assert "ONE copy of demo" in status["resident"] and reward["run"] in status["resident"]
    assert summary["reward_models"] == [reward["run"]] and summary["resident"] == status["resident"]
    lineage = json.loads((run / "lineage.json").read_text())
    assert lineage["method"] == "rlhf" and lineage["snapshot"] == "closer"
    assert (run / "adapter" / "adapter_config.json").is_file() and not (run / "adapter" / "ref").exists()
    assert not (storage / "alignui.duckdb").exists()


@pytest.mark.slow
def test_grpo_with_an_ensemble_and_a_cancelled_run_resumes_to_the_end(reward_storage):
    storage, reward = reward_storage
    run_id = "rlhf-grpo-resume"
    common = ["--storage", str(storage), "--snapshot", "closer", "--preset", "cpu-demo", "--run-id", run_id]
    sets = ["--set", "algorithm=grpo", "--set", "max_steps=6", "--set", "save_steps=2", "--set", "logging_steps=1",
            "--set", f"reward_model={reward['run']},{reward['run']}", "--set", "eval_prompts=4"]  # an ensemble
    proc = subprocess.Popen([sys.executable, "-m", "alignui", "train", "rlhf", *common, *sets], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    status_path = storage / "runs" / run_id / "status.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        status = json.loads(status_path.read_text()) if status_path.is_file() else {}
        if (status.get("step") or 0) >= 2:
            os.kill(proc.pid, signal.SIGTERM)  # what the app's Cancel sends
            break
        time.sleep(0.2)
    output = proc.communicate(timeout=600)[0]
    status = json.loads(status_path.read_text())
    assert proc.returncode != 0 and status["state"] == "cancelled", output[-2000:]
    checkpoints = sorted(p.name for p in (storage / "runs" / run_id / "checkpoints").iterdir())
    assert checkpoints, output[-2000:]
    summary = run_train(storage, "rlhf", "--run-id", run_id, "--resume")
    assert summary["status"] == "done" and summary["steps"] == 6
    metrics = [json.loads(line) for line in (Path(summary["path"]) / "metrics.jsonl").read_text().splitlines()]
    steps = [m["step"] for m in metrics if "reward" in m]
    assert steps == sorted(set(steps)) and steps[-1] == 6  # no step logged twice after the resume
    assert all("kl" in m for m in metrics if "reward" in m)  # GRPO with beta > 0 logs its KL too
    for m in (m for m in metrics if "reward" in m):  # the ensemble: each reward model's mean, summed into reward
        assert m["reward"] == pytest.approx(m["rewards/reward_1/mean"] + m["rewards/reward_2/mean"], rel=1e-4)
    assert summary["reward_models"] == [reward["run"], reward["run"]]
    config = (Path(summary["path"]) / "config.yaml").read_text()
    assert "algorithm: grpo" in config
