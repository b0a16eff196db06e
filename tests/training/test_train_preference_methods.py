"""ORPO, SimPO and KTO on the demo model on CPU, through the CLI (`python -m alignui train orpo|simpo|kto`), each
trained once with its cpu-demo preset on the same closer pairs as DPO's test (tests/training/test_train_dpo.py):

- training did something: LoRA weights moved, the loss fell, the held-out verdict says the preference was learned;
- the effect test: the share of sampled answers to held-out prompts that end with demo_corpus.POLITE_CLOSER
  moves from < 20% (base) to > 60% (adapter);
- the reference-free methods ran with no reference pass (pre-flight's record); the job never opened the database.
"""

import json
import random
import shutil

import pytest
import torch

from alignui.training.synthetic import closer_rate, closer_snapshot, split_prompts
from training.test_train_dpo import HELD_OUT, run_train

pytestmark = pytest.mark.slow
REFERENCE_FREE = ("orpo", "simpo")


@pytest.fixture(scope="module", params=["orpo", "simpo", "kto"])
def trained(request, tmp_path_factory, demo_model_dir):
    """One cpu-demo run of the method on 400 closer pairs (held-out prompts excluded), as a user would type it."""
    method = request.param
    storage = tmp_path_factory.mktemp(method) / "storage"
    shutil.copytree(demo_model_dir, storage / "models" / "demo")
    closer_snapshot(storage, "closer", train_rows=400, test_rows=40, held_out=HELD_OUT, seed=0)
    out = run_train(storage, "--snapshot", "closer", "--preset", "cpu-demo", "--set", "seed=42", method=method)
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    return method, storage, json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def held_out_prompts():
    _, held = split_prompts(random.Random(0), HELD_OUT)  # the same split the snapshot was built with
    return [q for q, _ in held]


@pytest.fixture(scope="module")
def base_model(demo_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    return AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32).eval(), tokenizer


@pytest.fixture(scope="module")
def base_rate(base_model, held_out_prompts):
    return closer_rate(*base_model, held_out_prompts)


def test_training_moved_the_weights_lowered_the_loss_and_learned_the_preference(trained):
    method, storage, summary = trained
    assert summary["status"] == "done" and summary["steps"] == 80
    run = storage / "runs" / summary["run"]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m and "eval_loss" not in m]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    print(f"{method}: loss {first:.4f} -> {last:.4f} in {summary['train']['train_runtime']:.0f}s; {summary['verdict']}")
    assert last < first - 0.02
    assert summary["params_moved"] > 0.01 and summary["verdict"].startswith("✅ learned the preference")
    assert summary["eval"]["eval_rewards/margins"] > 0
    preflight = json.loads((run / "preflight.json").read_text())
    assert preflight["ok"] and ("reference pass" in preflight["memory_parts"]) == (method not in REFERENCE_FREE)
    assert json.loads((run / "status.json").read_text())["state"] == "done"
    assert not (storage / "alignui.duckdb").exists()  # the job never opens the database


def test_effect_adapter_ends_with_the_preferred_phrase_far_more_often(trained, base_model, base_rate,
                                                                       held_out_prompts):
    from peft import PeftModel

    method, _, summary = trained
    model, tokenizer = base_model
    tuned = PeftModel.from_pretrained(model, summary["adapter"]).eval()  # the arena's way of loading it
    try:
        after = closer_rate(tuned, tokenizer, held_out_prompts)
    finally:
        tuned.unload()  # the shared base goes back to the next method's test without this adapter
    print(f"{method}: the closer at the end of held-out samples: base {base_rate:.1%} -> adapter {after:.1%}")
    assert base_rate < 0.2 and after > 0.6 and after > 3 * base_rate
