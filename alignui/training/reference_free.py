"""Reference-free preference methods: ORPO (TRL's ORPOTrainer) and SimPO (TRL's CPOTrainer, loss_type="simpo").

Owns: their configs (`ORPOTrainConfig`, `SimPOTrainConfig`) and jobs (`run_orpo`, `run_simpo`), which share one
trainer builder: the snapshot's pairs (prompt, chosen, rejected only), prompts cut to `max_prompt_length`
keeping their END, LoRA from the shared config. Training, cancel/resume, evaluation, adapter, samples and
verdict are DPO's (alignui.training.common.run_snapshot_job and alignui.training.dpo.finish).

When to prefer them over DPO: no reference model is ever evaluated (one forward pass per response instead of
two), so they fit where DPO is memory-bound and run faster; ORPO adds an SFT term on the chosen response, so it
needs no separate SFT stage on a base model that has not seen the task's style; SimPO scores responses by their
length-normalised log-probability, so it does not reward length.

Invariants:
- Prompts keep their END: TRL's ORPO/CPO have no prompt limit, so alignui.training.trl_internals wraps their
  row tokenizer (the one private reach, checked against the pinned TRL there).
- One copy of the base model and no reference pass: the config says so (`reference_pass() is False`) and the
  pre-flight memory estimate leaves the reference's forward pass out.
- TRL keeps these trainers under trl.experimental (1.16); where a TRL release moves or drops them the method
  registry reports the method unavailable in one line (alignui.training.methods), and a job refuses with a
  one-line MethodUnavailable instead of an import traceback.
- torch/trl are imported inside functions: the web process imports this module for the configs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alignui.training.config import DEMO_LR_NOTE, AdapterStart, TrainConfig, _require, knob
from alignui.training.speedups import KernelSettings, trl_arguments as kernel_arguments

ORPO_TRAINER, ORPO_ARGS = "trl.experimental.orpo:ORPOTrainer", "trl.experimental.orpo:ORPOConfig"
CPO_TRAINER, CPO_ARGS = "trl.experimental.cpo:CPOTrainer", "trl.experimental.cpo:CPOConfig"
PAIR_COLUMNS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class ORPOTrainConfig(AdapterStart, KernelSettings, TrainConfig):
    """TrainConfig + ORPO's knob. Prefer ORPO when there is no SFT stage (it learns the chosen responses and
    the preference in one pass) or when DPO's reference pass does not fit in memory."""

    learning_rate: float = knob(8e-6, help="peak learning rate (AdamW)",
                                guide="ORPO paper ~8e-6 with LoRA; warned outside 5e-7..5e-5; " + DEMO_LR_NOTE)
    beta: float = knob(0.1, group="orpo", help="weight (lambda) of the odds-ratio preference term beside the SFT "
                       "loss on the chosen response", guide="0.1 default (paper 0.1-0.25); higher = more "
                       "preference, less imitation")

    def __post_init__(self):
        super().__post_init__()
        _require(self.beta > 0, f"beta must be positive, got {self.beta}; 0.1 is ORPO's default")

    def reference_pass(self) -> bool:
        return False

    def trl_arguments(self) -> dict[str, Any]:
        return {"beta": self.beta, **kernel_arguments(self)}


@dataclass(frozen=True)
class SimPOTrainConfig(AdapterStart, KernelSettings, TrainConfig):
    """TrainConfig + SimPO's knobs. Prefer SimPO when memory is tight (no reference pass) and when longer
    responses should not win by length (the reward is the average log-probability per token)."""

    beta: float = knob(2.0, group="simpo", help="reward scale (beta) on the length-normalised log-probability",
                       guide="2.0-2.5 (SimPO paper); far larger than DPO's beta because the reward is per token")
    simpo_gamma: float = knob(0.5, group="simpo", help="target reward margin (gamma): chosen must beat rejected "
                              "by this much before the loss lets go", guide="about half of beta; 0 = no margin")
    sft_weight: float = knob(0.0, group="simpo", help="weight of an SFT (negative log-likelihood) term on the "
                             "chosen response: 0 = pure SimPO; > 0 = CPO-SimPO, steadier, keeps chosen likely",
                             guide="0 or 0.05-1")

    def __post_init__(self):
        super().__post_init__()
        _require(self.beta > 0, f"beta must be positive, got {self.beta}; SimPO's usual range is 2.0-2.5")
        _require(self.simpo_gamma >= 0, f"simpo_gamma must be 0 or more, got {self.simpo_gamma}; try beta / 2")
        _require(self.sft_weight >= 0, f"sft_weight must be 0 or more, got {self.sft_weight}; 0 = pure SimPO")

    def warnings(self) -> list[str]:
        out = super().warnings()
        if self.beta < 0.5:
            out.append(f"beta {self.beta:g} is DPO-sized: SimPO's per-token reward needs about 2.0-2.5 to learn")
        return out

    def reference_pass(self) -> bool:
        return False

    def trl_arguments(self) -> dict[str, Any]:
        return {"loss_type": "simpo", "beta": self.beta, "simpo_gamma": self.simpo_gamma,
                "cpo_alpha": self.sft_weight, **kernel_arguments(self)}


def build_with(trainer_path: str, args_path: str, method: str):
    """`build_trainer(job, data, callbacks) -> (trainer, tokenizer)` for a reference-free TRL trainer."""

    def build_trainer(job, data, callbacks: list):
        from transformers import PrinterCallback

        from alignui.training.common import (check_dtypes, fix_trainable_dtype, load_base, start_adapter,
                                             training_arguments)
        from alignui.training.methods import load_trl
        from alignui.training.trl_internals import keep_prompt_end_row_trainer

        trainer_cls, args_cls = load_trl(trainer_path, method), load_trl(args_path, method)
        config = job.config
        model, tokenizer = load_base(config, job.base, job.setup)
        train = data["train"].select_columns(list(PAIR_COLUMNS))
        test = data["test"].select_columns(list(PAIR_COLUMNS)) if "test" in data and len(data["test"]) else None
        args = args_cls(**training_arguments(config, job.run, job.setup, has_eval=test is not None),
                        max_length=config.max_length, **config.trl_arguments())
        model, peft_config = start_adapter(model, config, job.storage)
        trainer = keep_prompt_end_row_trainer(trainer_cls, tokenizer, config.max_prompt_length)(
            model=model, args=args, train_dataset=train, eval_dataset=test, processing_class=tokenizer,
            peft_config=peft_config, callbacks=callbacks)
        trainer.remove_callback(PrinterCallback)  # RunCallback prints one readable line per log event instead
        fix_trainable_dtype(trainer.model, job.setup)
        check_dtypes(trainer.model, job.setup, args)
        return trainer, tokenizer

    return build_trainer


def run_orpo(job) -> dict[str, Any]:
    """Train an ORPO LoRA adapter for `job` (alignui.training.job.Job); returns the run's summary."""
    from alignui.training.common import run_snapshot_job
    from alignui.training.dpo import finish

    return run_snapshot_job(job, build_with(ORPO_TRAINER, ORPO_ARGS, "orpo"), finish)


def run_simpo(job) -> dict[str, Any]:
    """Train a SimPO LoRA adapter for `job` (TRL's CPOTrainer with loss_type=simpo); returns the summary."""
    from alignui.training.common import run_snapshot_job
    from alignui.training.dpo import finish

    return run_snapshot_job(job, build_with(CPO_TRAINER, CPO_ARGS, "simpo"), finish)
