"""The optional first stage of RLHF: supervised fine-tuning on the chosen responses (TRL's SFTTrainer).

Owns: `SFTTrainConfig` and the job `run_sft`: the snapshot's (prompt, chosen) pairs as a prompt-completion
dataset, a LoRA adapter trained with the loss on the completion only, held-out loss on the test split, and
base-vs-adapter samples. Off by default: RLHF starts from the base model unless the RL stage is given
`init_adapter=<this run>`, in which case the policy starts from this adapter and a frozen copy of it is the
reference (TRL's behaviour for a pre-trained adapter).

Invariants:
- One copy of the base model; the adapter (run/adapter/) is a standard PEFT causal-LM adapter, so the arena
  can serve it and the RL stage can continue it.
- torch/trl are imported inside functions (the web process imports this module for the config).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from alignui.training.config import DEMO_LR_NOTE, TrainConfig, knob


@dataclass(frozen=True)
class SFTTrainConfig(TrainConfig):
    """TrainConfig with SFT defaults (responses are learned token by token, so a higher LR than DPO)."""

    learning_rate: float = knob(2e-5, help="peak learning rate (AdamW)",
                                guide="LoRA SFT ~2e-5 (TRL's default); warned outside 1e-6..5e-4; " + DEMO_LR_NOTE)

    def warnings(self) -> list[str]:
        out = [w for w in super().warnings() if not w.startswith("learning rate")]
        if not 1e-6 <= self.learning_rate <= 5e-4:
            out.append(f"learning rate {self.learning_rate:g} is outside the usual LoRA SFT range 1e-6..5e-4 "
                       "(fine for the tiny demo model)")
        return out


def sft_rows(split) -> list[dict[str, Any]]:
    """(prompt, chosen) -> TRL's prompt-completion form; the rejected responses are not used."""
    return [{"prompt": row["prompt"], "completion": row["chosen"]} for row in split]


def build_trainer(job, data, callbacks: list):
    """(trainer, tokenizer, has_test) for an SFT job: the base loaded once, LoRA from the shared config."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from alignui.training.common import check_dtypes, load_base, lora_config, training_arguments

    config: SFTTrainConfig = job.config
    model, tokenizer = load_base(config, job.base, job.setup)
    test = Dataset.from_list(sft_rows(data["test"])) if "test" in data and len(data["test"]) else None
    args = SFTConfig(**training_arguments(config, job.run, job.setup, has_eval=test is not None),
                     max_length=config.max_length, completion_only_loss=True, packing=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(sft_rows(data["train"])),
                         eval_dataset=test, processing_class=tokenizer, peft_config=lora_config(config),
                         callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # RunCallback prints one readable line per log event instead
    check_dtypes(trainer.model, job.setup, args)
    return trainer, tokenizer


def run_sft(job) -> dict[str, Any]:
    """Fine-tune a LoRA adapter on the chosen responses of `job`'s snapshot; returns the run's summary."""
    from alignui.training.common import run_snapshot_job

    return run_snapshot_job(job, build_trainer, finish)


def finish(job, trainer, tokenizer, data, *, train_metrics: dict, moved: float) -> dict[str, Any]:
    """Held-out loss, the adapter and a few samples; returns the summary."""
    from alignui.training.evaluation import sample_pairs

    run, config = job.run, job.config
    eval_metrics: dict[str, Any] = {}
    if trainer.eval_dataset is not None:
        run.update_status(phase="evaluating")
        eval_metrics = trainer.evaluate()
        job.log(f"held-out loss on the chosen responses: {eval_metrics.get('eval_loss', float('nan')):.4f}")
    run.update_status(phase="saving adapter")
    trainer.save_model(str(run.adapter_dir))
    samples: list[dict[str, Any]] = []
    if config.sample_prompts:
        source = data["test"] if "test" in data and len(data["test"]) else data["train"]
        prompts = [source[i]["prompt"] for i in range(min(config.sample_prompts, len(source)))]
        samples = sample_pairs(trainer.model, tokenizer, prompts, max_new_tokens=config.sample_max_new_tokens,
                               seed=config.seed)
        run.samples_path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
    keep = ("train_loss", "train_runtime", "train_steps_per_second", "train_samples_per_second")
    return {"adapter": str(run.adapter_dir), "steps": trainer.state.global_step, "params_moved": moved,
            "train": {k: train_metrics[k] for k in keep if k in train_metrics}, "eval": eval_metrics,
            "verdict": f"SFT adapter ready: use it as the RL stage's init_adapter={run.id}", "watchouts": []}
