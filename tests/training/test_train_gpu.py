"""DPO on CUDA: the dtype choice (bf16, fp16 before Ampere), 4-bit QLoRA, precomputed reference log-probs (DPO and
KTO), the gpu-fast preset (Liger kernels + precomputed reference); ORPO, SimPO and KTO with their gpu-lora presets.

Marked `gpu`: skipped, with the reason shown, where no CUDA GPU is visible (see tests/conftest.py).
"""

import json

import pytest

from alignui.training.synthetic import closer_snapshot
from training.test_train_dpo import run_train

pytestmark = pytest.mark.gpu
SHORT = ["--preset", "gpu-lora", "--set", "base_model=demo", "--set", "max_steps=12", "--set", "save_steps=6",
         "--set", "learning_rate=3e-4", "--set", "max_length=256", "--set", "max_prompt_length=128",
         "--set", "gradient_accumulation_steps=1"]  # max_prompt_length: the preset's 512 is refused under 256


def train(storage, *extra, method="dpo", preset="gpu-lora"):
    closer_snapshot(storage, "closer", train_rows=96, test_rows=16)
    short = [preset if a == "gpu-lora" else a for a in SHORT]
    out = run_train(storage, "--snapshot", "closer", *short, *extra, method=method)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_bf16_or_fp16_lora_on_cuda(storage):
    import torch

    from alignui.training.common import resolve_setup
    from alignui.training.dpo import DPOTrainConfig

    setup = resolve_setup(DPOTrainConfig(device="cuda"))
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert setup.dtype == expected and setup.gradient_checkpointing
    summary = train(storage)
    assert summary["params_moved"] > 0 and summary["train"]["peak_gpu_memory_gb"] > 0
    assert summary["eval"]["eval_rewards/accuracies"] > 0.5


def test_qlora_4bit_trains_and_its_adapter_loads_on_the_full_precision_base(storage, demo_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    summary = train(storage, "--set", "load_in_4bit=true")
    assert summary["params_moved"] > 0
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.bfloat16).to("cuda")
    PeftModel.from_pretrained(base, summary["adapter"])  # the arena's way: onto the served (unquantized) base


@pytest.mark.parametrize("method", ["dpo", "kto"])
def test_precomputed_reference_log_probs(storage, method):
    summary = train(storage, "--set", "precompute_ref_log_probs=true", method=method)
    assert summary["params_moved"] > 0
    assert summary["eval"]["eval_rewards/accuracies" if method == "dpo" else "eval_rewards/margins"] > (
        0.5 if method == "dpo" else 0)


def test_the_gpu_fast_preset_trains_with_liger_kernels_and_a_precomputed_reference(storage):
    from pathlib import Path

    summary = train(storage, preset="gpu-fast")  # needs liger-kernel (scripts/gpu-check.sh installs its wheel)
    assert summary["params_moved"] > 0 and summary["eval"]["eval_rewards/accuracies"] > 0.5
    preflight = json.loads((Path(summary["adapter"]).parent / "preflight.json").read_text())
    assert preflight["ok"] and any(t.startswith("Liger kernels") for t in preflight["tradeoffs"])
    assert "reference pass" not in preflight["memory_parts"]


@pytest.mark.parametrize("method", ["orpo", "simpo", "kto"])
def test_other_preference_methods_train_in_half_precision_on_cuda(storage, method):
    summary = train(storage, method=method)
    assert summary["params_moved"] > 0 and summary["train"]["peak_gpu_memory_gb"] > 0
    assert summary["eval"]["eval_rewards/margins"] > 0
