"""The reward-model stage of RLHF on TRL's RewardTrainer: the config (`RewardTrainConfig`) and the job (`run_reward`).

Owns: training a reward model from a preference snapshot (the same snapshot DPO uses): the base model loaded as
a one-label sequence classifier, LoRA on its linear layers with the new score head trained in full and saved
with the adapter (PEFT `modules_to_save=["score"]`); at the end, per-pair reward margins on the held-out test
split (accuracy = share of pairs where chosen outscores rejected, and a histogram of the margins), written to
reward_eval.json, and the adapter in run/adapter/ with `alignui_reward.json` saying how to score with it.

Invariants:
- The finished run is a registered reward model: `alignui.serving.reward_model.RewardJudge.load(run_dir)` loads it and the
  RL stage (alignui.training.rlhf) finds it by run id. It is not a policy: the method's registry row says
  `produces_adapter=False`, so the arena never serves it.
- Held-out margins are computed with alignui.serving.reward_model.reward_inputs, the same tokenization the judge and the RL
  reward use, so the accuracy reported here is the accuracy those will see.
- torch/trl are imported inside functions (the web process imports this module for the config).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from alignui.training.config import DEMO_LR_NOTE, TrainConfig, _require, knob

#: Learning rates that suit a LoRA reward model with a freshly initialised score head.
REWARD_LR_RANGE = (1e-6, 1e-3)


@dataclass(frozen=True)
class RewardTrainConfig(TrainConfig):
    """TrainConfig + the reward model's own knobs."""

    learning_rate: float = knob(1e-4, help="peak learning rate (AdamW)",
                                guide="LoRA reward model ~1e-4 (the score head starts from scratch); "
                                      "warned outside 1e-6..1e-3; " + DEMO_LR_NOTE)
    center_rewards_coefficient: float | None = knob(
        None, group="reward", help="push rewards towards mean zero (TRL's auxiliary loss); empty = off",
        guide="0.01 keeps rewards centred, which makes KL-penalised RL better behaved")
    histogram_bins: int = knob(20, group="reward", help="bins of the held-out reward-margin histogram")

    def __post_init__(self):
        super().__post_init__()
        _require(self.histogram_bins >= 2, f"histogram_bins must be at least 2, got {self.histogram_bins}")
        if self.center_rewards_coefficient is not None:
            _require(self.center_rewards_coefficient >= 0, "center_rewards_coefficient must be 0 or more (0.01 is "
                                                           f"typical), got {self.center_rewards_coefficient}")

    def warnings(self) -> list[str]:
        out = [w for w in super().warnings() if not w.startswith("learning rate")]
        low, high = REWARD_LR_RANGE
        if not low <= self.learning_rate <= high:
            out.append(f"learning rate {self.learning_rate:g} is outside the usual range for a LoRA reward model "
                       f"({low:g}..{high:g})")
        return out


def reward_lora_config(config: TrainConfig):
    """LoRA for a sequence classifier: the adapter plus the whole score head, saved together."""
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules(), bias="none", task_type="SEQ_CLS",
                      modules_to_save=["score"])


def load_reward_base(config: TrainConfig, base: str, setup):
    """(model, tokenizer): `base` as a one-label sequence classifier on `setup`'s device and dtype."""
    from transformers import AutoModelForSequenceClassification
    from trl.trainer.reward_trainer import suppress_seqcls_warning

    from alignui.errors import UserError
    from alignui.serving.loading import quantization_config
    from alignui.training.common import load_tokenizer

    tokenizer = load_tokenizer(base)
    kwargs: dict[str, Any] = {"num_labels": 1, "dtype": setup.dtype}
    if setup.quantized:
        kwargs.update(quantization_config=quantization_config(setup.device, setup.dtype), device_map={"": 0})
    try:
        with suppress_seqcls_warning():  # the score head is new by design; the causal LM head is unused
            model = AutoModelForSequenceClassification.from_pretrained(base, **kwargs)
    except (OSError, ValueError) as exc:
        raise UserError(f"could not load {base} as a reward model ({type(exc).__name__}: {str(exc)[:200]}); "
                        "pass --set base_model=<local path> or 'demo'") from exc
    if not setup.quantized:
        model.to(setup.device)
    else:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=setup.gradient_checkpointing)
    model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False
    return model, tokenizer


def build_trainer(job, data, callbacks: list):
    """(trainer, tokenizer) for a reward job: base loaded once, LoRA + score head, our callbacks attached."""
    from transformers import PrinterCallback
    from trl import RewardConfig, RewardTrainer

    from alignui.training.common import check_dtypes, training_arguments

    config: RewardTrainConfig = job.config
    model, tokenizer = load_reward_base(config, job.base, job.setup)
    test = data["test"] if "test" in data and len(data["test"]) else None
    args = RewardConfig(**training_arguments(config, job.run, job.setup, has_eval=test is not None),
                        max_length=config.max_length, center_rewards_coefficient=config.center_rewards_coefficient,
                        disable_dropout=True)
    trainer = RewardTrainer(model=model, args=args, train_dataset=data["train"], eval_dataset=test,
                            processing_class=tokenizer, peft_config=reward_lora_config(config), callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # RunCallback prints one readable line per log event instead
    check_dtypes(trainer.model, job.setup, args)
    return trainer, tokenizer


def pair_margins(model, tokenizer, rows, *, conversational: bool, max_length: int | None, device: str,
                 batch_size: int = 8) -> list[float]:
    """reward(chosen) - reward(rejected) for every row, scored the way the judge scores."""
    from alignui.serving.reward_model import reward_inputs, score_ids

    was_training = model.training
    model.eval()
    margins: list[float] = []
    for start in range(0, len(rows), batch_size):
        chunk = [rows[i] for i in range(start, min(start + batch_size, len(rows)))]
        ids = [reward_inputs(tokenizer, r["prompt"], r[side], conversational=conversational, max_length=max_length)
               for side in ("chosen", "rejected") for r in chunk]
        scores = score_ids(model, tokenizer.pad_token_id, ids, device)
        margins += [c - r for c, r in zip(scores[:len(chunk)], scores[len(chunk):])]
    model.train(was_training)
    return margins


def margin_report(margins: list[float], bins: int) -> dict[str, Any]:
    """Accuracy, mean/median margin and a histogram (numpy) of held-out reward margins."""
    import numpy as np

    if not margins:
        return {"n": 0}
    values = np.asarray(margins, dtype=float)
    counts, edges = np.histogram(values, bins=bins)
    return {"n": int(values.size), "accuracy": float((values > 0).mean()), "mean_margin": float(values.mean()),
            "median_margin": float(np.median(values)), "histogram": {"counts": counts.tolist(),
                                                                   "edges": [float(e) for e in edges]},
            "margins": [round(float(m), 5) for m in values]}


def is_conversational(data) -> bool:
    return not isinstance(data["train"][0]["prompt"], str)


def run_reward(job) -> dict[str, Any]:
    """Train a reward model for `job` (alignui.training.job.Job) and return the run's summary."""
    from alignui.training.common import run_snapshot_job

    return run_snapshot_job(job, build_trainer, finish)


def finish(job, trainer, tokenizer, data, *, train_metrics: dict, moved: float) -> dict[str, Any]:
    """Held-out margins and histogram, the adapter with its scoring metadata, the verdict; returns the summary."""
    from alignui.serving.reward_model import META_FILE
    from alignui.training.evaluation import verdict

    run, config = job.run, job.config
    conversational = is_conversational(data)
    report: dict[str, Any] = {"n": 0}
    if "test" in data and len(data["test"]):
        run.update_status(phase="evaluating")
        margins = pair_margins(trainer.model, tokenizer, data["test"], conversational=conversational,
                               max_length=config.max_length, device=job.setup.device,
                               batch_size=config.eval_batch_size)
        report = margin_report(margins, config.histogram_bins)
        (run.path / "reward_eval.json").write_text(json.dumps(report, indent=2))
        run.append_metrics({"step": trainer.state.global_step, "epoch": trainer.state.epoch,
                            "eval_accuracy": report["accuracy"], "eval_margin": report["mean_margin"]})
        job.log(f"held-out: accuracy {report['accuracy']:.1%} on {report['n']} pairs, mean margin "
                f"{report['mean_margin']:+.3f}, median {report['median_margin']:+.3f}")
    run.update_status(phase="saving reward model")
    trainer.save_model(str(run.adapter_dir))
    lineage = run.read_lineage()
    meta = {"kind": "reward", "run_id": run.id, "conversational": conversational, "max_length": config.max_length,
            "base_model": config.base_model or job.base, "base_model_path": job.base,
            "snapshot": lineage.get("snapshot"), "snapshot_sha256": lineage.get("snapshot_sha256")}
    (run.adapter_dir / META_FILE).write_text(json.dumps(meta, indent=2))
    eval_as_dpo = ({"eval_rewards/accuracies": report["accuracy"], "eval_rewards/margins": report["mean_margin"]}
                   if report["n"] else None)
    line = verdict(eval_as_dpo, report["n"]).replace("the adapter", "the reward model")
    job.log(line)
    keep = ("train_loss", "train_runtime", "train_steps_per_second", "train_samples_per_second")
    summary_eval = {k: v for k, v in report.items() if k != "margins"}
    summary_eval.update(eval_as_dpo or {})  # the same names as DPO's, so the Runs table shows them too
    return {"adapter": str(run.adapter_dir), "reward_model": str(run.path), "steps": trainer.state.global_step,
            "params_moved": moved, "train": {k: train_metrics[k] for k in keep if k in train_metrics},
            "eval": summary_eval, "verdict": line, "watchouts": []}
