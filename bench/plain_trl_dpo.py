"""The baseline of bench/dpo_overhead.py: a plain TRL DPO script with no alignui in the loop.

Same model, data and settings as `python -m alignui train dpo` gets from the benchmark (LoRA via peft_config,
reference = base with adapters disabled, the dtype alignui would pick for the device). Prints one JSON line:
train_steps_per_second, tokens_per_second, peak GPU memory, train_runtime, the loss at each step.

    python bench/plain_trl_dpo.py --model DIR --snapshot DIR --settings JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--snapshot", required=True, help="a snapshot directory (dataset/ with train split)")
    parser.add_argument("--settings", required=True, help="JSON of the benchmark's settings")
    parser.add_argument("--out", required=True, help="output_dir for checkpoints")
    args = parser.parse_args()
    s = json.loads(args.settings)

    import torch
    from datasets import load_from_disk
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import DPOConfig, DPOTrainer

    if s["device"] == "cpu" and s.get("cpu_threads"):
        torch.set_num_threads(s["cpu_threads"])
    cuda = s["device"] == "cuda"
    dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else torch.float32
    kwargs = {"dtype": dtype}
    if s.get("load_in_4bit"):
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": 0}
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(args.model, **kwargs)
    if not s.get("load_in_4bit"):
        model.to(s["device"])
    if s.get("load_in_4bit"):
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=s["gradient_checkpointing"])
    model.config.use_cache = False
    train = load_from_disk(os.path.join(args.snapshot, "dataset"))["train"]
    config = DPOConfig(
        output_dir=args.out, per_device_train_batch_size=s["batch_size"], gradient_accumulation_steps=1,
        learning_rate=s["learning_rate"], max_steps=s["max_steps"], warmup_steps=0.1, lr_scheduler_type="cosine",
        logging_steps=1, save_strategy="steps", save_steps=s["max_steps"], report_to="none", disable_tqdm=True,
        bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16, use_cpu=not cuda,
        gradient_checkpointing=s["gradient_checkpointing"], beta=s["beta"], max_length=s["max_length"],
        precompute_ref_log_probs=s.get("precompute_ref_log_probs", False), seed=42, dataloader_num_workers=0,
        use_liger_kernel=s.get("use_liger_kernel", False))
    peft = LoraConfig(r=s["lora_r"], lora_alpha=2 * s["lora_r"], lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=config, train_dataset=train, processing_class=tokenizer,
                         peft_config=peft)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    import time

    cpu_started = time.process_time()
    metrics = trainer.train().metrics
    cpu_seconds = time.process_time() - cpu_started
    tokens = max((r.get("num_tokens", 0) for r in trainer.state.log_history), default=0)
    print(json.dumps({"train_steps_per_second": metrics["train_steps_per_second"],
                      "cpu_steps_per_second": trainer.state.global_step / cpu_seconds if cpu_seconds else None,
                      "train_runtime": metrics["train_runtime"],
                      "tokens_per_second": tokens / metrics["train_runtime"] if metrics["train_runtime"] else None,
                      "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None,
                      "losses": [r["loss"] for r in trainer.state.log_history if "loss" in r and "step" in r
                                 and "train_runtime" not in r]}))


if __name__ == "__main__":
    main()
