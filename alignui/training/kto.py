"""KTO on TRL's KTOTrainer: the config (`KTOTrainConfig`), the unpaired data it trains on, and the job (`run_kto`).

Owns: turning a snapshot into TRL's unpaired format (prompt, completion, label): a pair snapshot yields one
desirable example (its chosen response) and one undesirable example (its rejected response) per pair; an
unpaired snapshot (thumbs up/down) is used as it is, and a snapshot with thumbs ratings beside its pairs
trains on its unpaired/ splits (the pairs split in two, then the thumbs). The rows are shuffled with the run's seed, because TRL
estimates KTO's KL term from mismatched (prompt, completion) pairs of neighbours in a fixed-order batch, and
a pair's two halves side by side would make that estimate meaningless. Also owns the class weights: unless
set, the rarer class is weighted up so that desirable_weight * n_desirable == undesirable_weight *
n_undesirable (inside the [1, 4/3] band the KTO paper recommends), and the pre-flight refusal of a snapshot
with only one label class (KTO learns from the contrast; with one class it can only drift).

When to prefer KTO: the feedback is thumbs up/down on single responses (cheaper to collect than pairs), or the
classes are unbalanced. Training, evaluation, adapter, samples and cancel/resume are DPO's shared path; the
verdict is judged on the held-out reward margin between desirable and undesirable completions.

Invariants: one copy of the base model (the reference is the base with adapters off, as in DPO); torch/trl
are imported inside functions (the web process imports this module for the config).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from alignui.training.config import AdapterStart, TrainConfig, _require, knob
from alignui.training.speedups import KernelSettings, trl_arguments as kernel_arguments

KTO_TRAINER, KTO_ARGS = "trl:KTOTrainer", "trl:KTOConfig"
UNPAIRED_COLUMNS = ("prompt", "completion", "label")


@dataclass(frozen=True)
class KTOTrainConfig(AdapterStart, KernelSettings, TrainConfig):
    """TrainConfig + KTO's knobs. Prefer KTO for thumbs up/down feedback or unbalanced classes."""

    beta: float = knob(0.1, group="kto", help="how far the policy may move from the reference (KL strength)",
                       guide="0.1 default; lower = bolder")
    desirable_weight: float | None = knob(None, group="kto", help="loss weight of desirable (chosen / thumbs-up) "
                                          "examples; empty = set from the class balance",
                                          guide="empty: the rarer class is weighted up so both classes pull "
                                                "equally (KTO paper: keep w_d*n_d / (w_u*n_u) in 1..4/3)")
    undesirable_weight: float | None = knob(None, group="kto", help="loss weight of undesirable (rejected / "
                                            "thumbs-down) examples; empty = set from the class balance",
                                            guide="empty = from the class balance (see desirable_weight)")
    precompute_ref_log_probs: bool = knob(False, group="kto", help="compute reference log-probs once before "
                                          "training: saves the reference forward (and its memory) in every step, "
                                          "costs one pass over the data first; pays off from about one epoch")

    def __post_init__(self):
        super().__post_init__()
        _require(self.beta > 0, f"beta must be positive, got {self.beta}; 0.1 is the usual default")
        for name in ("desirable_weight", "undesirable_weight"):
            value = getattr(self, name)
            _require(value is None or value > 0, f"{name} must be positive or empty (from the class balance), "
                                                 f"got {value}")

    def reference_pass(self) -> bool:
        return not self.precompute_ref_log_probs  # precomputed: one pass over the data before training instead

    def trl_arguments(self, desirable_weight: float, undesirable_weight: float) -> dict[str, Any]:
        """KTOConfig's own keyword arguments (beside TrainingArguments'), with the resolved class weights."""
        return {"beta": self.beta, "desirable_weight": desirable_weight, "undesirable_weight": undesirable_weight,
                "max_length": self.max_length, "precompute_ref_log_probs": self.precompute_ref_log_probs,
                **kernel_arguments(self)}

    def class_weights(self, n_desirable: int, n_undesirable: int) -> tuple[float, float]:
        """(desirable, undesirable) weights: as set, else from the balance so that both classes weigh the same."""
        d, u = max(n_desirable, 1), max(n_undesirable, 1)
        if self.desirable_weight is not None and self.undesirable_weight is not None:
            return self.desirable_weight, self.undesirable_weight
        if self.desirable_weight is not None:
            return self.desirable_weight, round(self.desirable_weight * d / u, 4)
        if self.undesirable_weight is not None:
            return round(self.undesirable_weight * u / d, 4), self.undesirable_weight
        return (round(u / d, 4), 1.0) if d < u else (1.0, round(d / u, 4))

    def data_refusals(self, data) -> list[str]:
        counts = label_counts(data["train"])
        if min(counts) == 0:
            have, lack = ("desirable", "undesirable") if counts[0] else ("undesirable", "desirable")
            return [f"the snapshot has only {have} examples ({max(counts)}) and no {lack} ones: KTO learns from "
                    "the contrast between both classes; collect some of both (or export pairs)"]
        return []

    def data_warnings(self, data) -> list[str]:
        """A label class so rare that many batches hold none of it: those steps learn nothing from that class,
        and the class weight makes each rare example's step large (measured on the demo model's thumbs, 8%
        desirable: batch 8 gave 5.5%-95.5% of the held-out property over 6 snapshots, configs/kto.yaml)."""
        n_d, n_u = label_counts(data["train"])
        rare, batch = min(n_d, n_u) / max(n_d + n_u, 1), self.per_device_train_batch_size
        if not rare or rare * batch >= 1:
            return []
        name = "desirable" if n_d < n_u else "undesirable"
        return [f"only {rare:.0%} of the training examples are {name}: {(1 - rare) ** batch:.0%} of batches of "
                f"{batch} hold none of them; raise per_device_train_batch_size to {math.ceil(1 / rare)} or more "
                "(and max_steps with it), e.g. the cpu-demo-thumbs preset on the demo model"]


def is_unpaired(split) -> bool:
    return {"completion", "label"} <= set(split.column_names)


def label_counts(split) -> tuple[int, int]:
    """(desirable, undesirable) examples in a split: a pair counts once in each class."""
    if not is_unpaired(split):
        return len(split), len(split)
    labels = [bool(x) for x in split["label"]]
    return sum(labels), len(labels) - sum(labels)


def unpaired_rows(split, seed: int) -> list[dict[str, Any]]:
    """The split in TRL's unpaired format, shuffled with `seed` (see the module docstring for why)."""
    if is_unpaired(split):
        rows = [{"prompt": r["prompt"], "completion": r["completion"], "label": bool(r["label"])} for r in split]
    else:
        rows = [{"prompt": r["prompt"], "completion": r[side], "label": side == "chosen"}
                for r in split for side in ("chosen", "rejected")]
    random.Random(seed).shuffle(rows)
    return rows


def with_thumbs(ref, data):
    """The snapshot's unpaired/ splits when it holds thumbs ratings beside its pairs (they are only there), else
    `data` as loaded (pairs are split into both classes by unpaired_rows)."""
    from alignui.data.snapshot import load_unpaired

    if ref is None or not (getattr(ref, "manifest", None) or {}).get("ratings") or is_unpaired(data["train"]):
        return data
    return load_unpaired(ref)


def kto_verdict(eval_metrics: dict[str, Any] | None, n: int, *, train_accuracy: float | None = None) -> str:
    """One line: did held-out desirable completions end up with a higher implicit reward than undesirable ones."""
    if not eval_metrics or n == 0 or "eval_rewards/margins" not in eval_metrics:
        return "ℹ️ no held-out test split, so no verdict: export with a test split (--test-size 0.1)"
    chosen, rejected = eval_metrics.get("eval_rewards/chosen", 0.0), eval_metrics.get("eval_rewards/rejected", 0.0)
    margin = float(eval_metrics["eval_rewards/margins"])
    facts = (f"held-out reward {chosen:+.3f} for desirable vs {rejected:+.3f} for undesirable completions "
             f"(margin {margin:+.3f}) on {n} unseen examples")
    if margin > 0 and chosen > rejected:
        return f"✅ learned the preference: {facts}"
    return f"❌ no preference learned: {facts}; check the labels, or raise the learning rate / train longer"


def build_trainer(job, data, callbacks: list):
    """(trainer, tokenizer) for a KTO job: unpaired, shuffled rows; weights from the class balance."""
    from datasets import Dataset
    from transformers import PrinterCallback

    from alignui.training.common import (check_dtypes, fix_trainable_dtype, load_base, start_adapter,
                                         training_arguments)
    from alignui.training.methods import load_trl
    from alignui.training.trl_internals import keep_prompt_end_trainer

    trainer_cls, args_cls = load_trl(KTO_TRAINER, "kto"), load_trl(KTO_ARGS, "kto")
    config: KTOTrainConfig = job.config
    data = with_thumbs(job.snapshot, data)
    model, tokenizer = load_base(config, job.base, job.setup)
    train = Dataset.from_list(unpaired_rows(data["train"], config.seed))
    test = Dataset.from_list(unpaired_rows(data["test"], config.seed)) if "test" in data and len(data["test"]) \
        else None
    n_d, n_u = label_counts(train)
    w_d, w_u = config.class_weights(n_d, n_u)
    job.log(f"KTO: {n_d} desirable and {n_u} undesirable training examples -> weights {w_d:g} / {w_u:g} "
            "(the rarer class is weighted up so both pull equally)")
    args = args_cls(**training_arguments(config, job.run, job.setup, has_eval=test is not None),
                    **config.trl_arguments(w_d, w_u))
    model, peft_config = start_adapter(model, config, job.storage)
    trainer = keep_prompt_end_trainer(trainer_cls)(
        model=model, args=args, train_dataset=train, eval_dataset=test, processing_class=tokenizer,
        peft_config=peft_config, callbacks=callbacks, max_prompt_length=config.max_prompt_length)
    trainer.remove_callback(PrinterCallback)  # RunCallback prints one readable line per log event instead
    fix_trainable_dtype(trainer.model, job.setup)
    check_dtypes(trainer.model, job.setup, args)
    return trainer, tokenizer


def run_kto(job) -> dict[str, Any]:
    """Train a KTO LoRA adapter for `job` (alignui.training.job.Job); returns the run's summary."""
    from functools import partial

    from alignui.training.common import run_snapshot_job
    from alignui.training.dpo import finish

    return run_snapshot_job(job, build_trainer, partial(finish, judge=kto_verdict))
