"""DPO on TRL's DPOTrainer: the config (`DPOTrainConfig`) and the job (`run_dpo`).

Owns: the DPO-specific knobs (beta, loss type, label smoothing, precomputed reference log-probs), the
TrainingArguments -> trl.DPOConfig mapping, prompt truncation that keeps the END of long prompts (TRL 1.16
dropped max_prompt_length), and the end of a run: held-out evaluation, the adapter, samples, verdict.

Invariants:
- One copy of the base model: the LoRA adapter is created by TRL from our peft_config, and the reference is
  that same model with adapters disabled (no ref_model is ever passed or loaded).
- The saved adapter is a standard PEFT directory (run/adapter/) that `PeftModel.from_pretrained` or
  `model.load_adapter` loads onto the one served base model.
- torch/trl are imported inside functions: importing this module (the web process does, for the config)
  stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alignui.training.config import AdapterStart, TrainConfig, _require, knob
from alignui.training.speedups import KernelSettings

LOSS_TYPES = ("sigmoid", "ipo", "hinge", "robust")


@dataclass(frozen=True)
class DPOTrainConfig(AdapterStart, KernelSettings, TrainConfig):
    """TrainConfig + DPO's own knobs (defaults follow the seed's advice); Liger: alignui.training.speedups."""

    beta: float = knob(0.1, group="dpo", help="how far the policy may move from the reference (KL strength)",
                       guide="0.1 default; 0.05-0.1 bold, 0.5+ conservative")
    loss_type: str = knob("sigmoid", group="dpo", choices=LOSS_TYPES,
                          help="sigmoid = DPO; ipo = IPO (squared, less overfitting); hinge = SLiC; robust = "
                               "noise-robust DPO (use with label_smoothing)")
    label_smoothing: float = knob(0.0, group="dpo", help="robust loss: assumed share of flipped labels",
                                  guide="0.1 with robust; 0 otherwise")
    precompute_ref_log_probs: bool = knob(False, group="dpo", help="compute reference log-probs once before "
                                          "training: saves the reference forward (and its memory) in every step, "
                                          "costs one pass over the data first; pays off from about one epoch")

    def __post_init__(self):
        super().__post_init__()
        _require(self.beta > 0, f"beta must be positive, got {self.beta}; 0.1 is the usual default")
        _require(self.loss_type in LOSS_TYPES, f"loss_type must be one of {', '.join(LOSS_TYPES)}, "
                                               f"got {self.loss_type!r}")
        _require(0 <= self.label_smoothing < 0.5, f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        _require(self.label_smoothing == 0 or self.loss_type == "robust",
                 f"label_smoothing={self.label_smoothing} only applies to loss_type=robust; set loss_type=robust "
                 "or label_smoothing=0")

    def reference_pass(self) -> bool:
        return not self.precompute_ref_log_probs  # precomputed: one pass over the data before training instead

    def warnings(self) -> list[str]:
        out = super().warnings()
        if self.beta < 0.05:
            out.append(f"beta {self.beta:g} is very bold: the policy may drift far from the base and degrade")
        elif self.beta >= 0.5:
            out.append(f"beta {self.beta:g} is conservative: expect small changes")
        return out


def trainer_class():
    """trl.DPOTrainer plus `max_prompt_length` (prompts keep their last tokens); the reach is in trl_internals."""
    from alignui.training.trl_internals import keep_prompt_end_dpo_trainer

    return keep_prompt_end_dpo_trainer()


def dpo_arguments(config: DPOTrainConfig, base_kwargs: dict[str, Any]):
    from trl import DPOConfig

    from alignui.training import speedups

    return DPOConfig(**base_kwargs, beta=config.beta, loss_type=[config.loss_type],
                     label_smoothing=config.label_smoothing, precompute_ref_log_probs=config.precompute_ref_log_probs,
                     max_length=config.max_length, truncation_mode="keep_start", **speedups.trl_arguments(config))


def build_trainer(job, data, callbacks: list):
    """(trainer, model) for a job: the base loaded once, LoRA from our config, our callbacks attached."""
    from transformers import PrinterCallback

    from alignui.training.common import (check_dtypes, fix_trainable_dtype, load_base, start_adapter,
                                         training_arguments)

    config: DPOTrainConfig = job.config
    model, tokenizer = load_base(config, job.base, job.setup)
    test = data["test"] if "test" in data and len(data["test"]) else None
    args = dpo_arguments(config, training_arguments(config, job.run, job.setup, has_eval=test is not None))
    model, peft_config = start_adapter(model, config, job.storage)
    trainer = trainer_class()(model=model, args=args, train_dataset=data["train"], eval_dataset=test,
                              processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks,
                              max_prompt_length=config.max_prompt_length)
    trainer.remove_callback(PrinterCallback)  # RunCallback prints a readable line per log event instead
    fix_trainable_dtype(trainer.model, job.setup)
    check_dtypes(trainer.model, job.setup, args)
    return trainer, tokenizer


def run_dpo(job) -> dict[str, Any]:
    """Train a DPO LoRA adapter for `job` (alignui.training.job.Job) and return the run's summary."""
    from alignui.training.common import run_snapshot_job

    return run_snapshot_job(job, build_trainer, finish)


def finish(job, trainer, tokenizer, data, *, train_metrics: dict, moved: float, judge=None) -> dict[str, Any]:
    """Held-out evaluation, the adapter, samples, watch-outs and the verdict; returns the summary. Shared by the
    preference methods (DPO, ORPO, SimPO, KTO); `judge(eval_metrics, n, train_accuracy=)` -> the verdict line
    (default: evaluation.verdict, the held-out pairwise reward accuracy)."""
    import json

    from alignui.training.evaluation import sample_pairs, verdict, watchouts

    judge = judge or verdict
    run, config = job.run, job.config
    test = trainer.eval_dataset
    eval_metrics: dict[str, Any] = {}
    if test is not None:
        job.run.update_status(phase="evaluating")
        eval_metrics = trainer.evaluate()
        job.log(f"held-out evaluation: {json.dumps({k: round(v, 4) for k, v in eval_metrics.items()})}")
    job.run.update_status(phase="saving adapter")
    trainer.save_model(str(run.adapter_dir))
    samples: list[dict[str, Any]] = []
    if config.sample_prompts:
        job.run.update_status(phase="sampling")
        source = data["test"] if "test" in data and len(data["test"]) else data["train"]
        prompts = [source[i]["prompt"] for i in range(min(config.sample_prompts, len(source)))]
        samples = sample_pairs(trainer.model, tokenizer, prompts, max_new_tokens=config.sample_max_new_tokens,
                               seed=config.seed)
        run.samples_path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
    metrics = run.read_metrics()
    train_acc = [r["rewards/accuracies"] for r in metrics if "rewards/accuracies" in r]
    notes = watchouts(metrics, samples=samples, preflight=json.loads(run.preflight_path.read_text())
                      if run.preflight_path.is_file() else None)
    line = judge(eval_metrics, len(test) if test is not None else 0,
                   train_accuracy=train_acc[-1] if train_acc else None)
    for text in [line, *notes]:
        job.log(text)
    keep = ("train_loss", "train_runtime", "train_steps_per_second", "train_samples_per_second", "train_cpu_seconds",
            "peak_gpu_memory_gb")
    return {"adapter": str(run.adapter_dir), "steps": trainer.state.global_step, "params_moved": moved,
            "train": {k: train_metrics[k] for k in keep if k in train_metrics}, "eval": eval_metrics,
            "verdict": line, "watchouts": notes}
