"""DPO on the demo model on CPU, through the CLI contract (`python -m alignui train dpo`), trained once per module.

- training did something: LoRA weights moved, the loss fell, held-out reward accuracy beat chance;
- the effect test: chosen responses end with demo_corpus.POLITE_CLOSER, rejected ones are the same answers
  without it; the adapter's samples on held-out prompts end with it far more often than the base's;
- the adapter is a standard PEFT directory that loads onto the base model; the job never opened the database.
"""

import json
import subprocess
import sys

import pytest
import torch

from alignui.serving.demo_corpus import POLITE_CLOSER
from alignui.training.synthetic import all_prompts, closer_rate, closer_snapshot, split_prompts
from conftest import REPO

pytestmark = pytest.mark.slow
HELD_OUT = 110  # of the corpus's 360 questions, never seen in training


def run_train(storage, *args, timeout=900, method="dpo"):
    cmd = [sys.executable, "-m", "alignui", "train", method, "--storage", str(storage), *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_model_dir):
    """One cpu-demo run on 400 closer pairs (held-out prompts excluded), as a user would type it."""
    import shutil

    storage = tmp_path_factory.mktemp("train") / "storage"
    shutil.copytree(demo_model_dir, storage / "models" / "demo")
    closer_snapshot(storage, "closer", train_rows=400, test_rows=40, held_out=HELD_OUT, seed=0)
    out = run_train(storage, "--snapshot", "closer", "--preset", "cpu-demo", "--set", "seed=42", "--set", "beta=0.1")
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    return storage, summary


def test_training_moved_the_lora_weights_lowered_the_loss_and_beats_chance(trained):
    storage, summary = trained
    assert summary["status"] == "done" and summary["steps"] == 80
    assert 0 < summary["train"]["train_cpu_seconds"] and summary["train"]["train_steps_per_second"] > 0
    run = storage / "runs" / summary["run"]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m and "eval_loss" not in m]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    print(f"loss {first:.4f} -> {last:.4f}; eval {summary['eval']}")
    assert last < first - 0.05
    from safetensors.torch import load_file

    weights = load_file(run / "adapter" / "adapter_model.safetensors")
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b and all(t.abs().sum() > 0 for t in lora_b)  # PEFT starts B at zero: non-zero = trained
    assert summary["params_moved"] > 0.01
    assert summary["eval"]["eval_rewards/accuracies"] > 0.8 and summary["eval"]["eval_rewards/margins"] > 0
    assert summary["verdict"].startswith("✅ learned the preference")
    assert not (storage / "alignui.duckdb").exists()  # the job never opens the database


def test_run_directory_holds_config_lineage_status_and_samples(trained):
    storage, summary = trained
    run = storage / "runs" / summary["run"]
    status = json.loads((run / "status.json").read_text())
    lineage = json.loads((run / "lineage.json").read_text())
    assert status["state"] == "done" and status["step"] == 80 and status["summary"]["verdict"] == summary["verdict"]
    assert lineage["snapshot"] == "closer" and len(lineage["snapshot_sha256"]) == 64 and lineage["base_model"] == "demo"
    config = (run / "config.yaml").read_text()
    assert "beta: 0.1" in config and "max_steps: 80" in config and "seed: 42" in config
    assert json.loads((run / "preflight.json").read_text())["ok"] is True
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and all(s["base"] and s["adapter"] for s in samples)
    assert [p.name for p in sorted((run / "checkpoints").iterdir()) if p.is_dir()] == ["checkpoint-60",
                                                                                        "checkpoint-80"]


def test_effect_adapter_ends_with_the_preferred_phrase_far_more_often(trained, demo_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    storage, summary = trained
    import random

    _, held = split_prompts(random.Random(0), HELD_OUT)  # the same split the snapshot was built with
    prompts = [q for q, _ in held]
    assert len(prompts) == HELD_OUT and len(all_prompts()) == 360
    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32).eval()
    torch.set_num_threads(1)
    before = closer_rate(base, tokenizer, prompts)
    tuned = PeftModel.from_pretrained(base, summary["adapter"]).eval()  # the arena's way of loading it
    after = closer_rate(tuned, tokenizer, prompts)
    print(f"'{POLITE_CLOSER}' at the end of held-out samples: base {before:.1%} -> adapter {after:.1%}")
    assert before < 0.2 and after > 0.6 and after > 3 * before
