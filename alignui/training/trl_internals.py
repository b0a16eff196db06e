"""The only places where alignui reaches into TRL's private internals, each checked against the pinned TRL.

Why a reach at all (no public API exists in trl 1.16):
- DPO prompt truncation that keeps the END of a long prompt (the latest turns): TRL dropped
  max_prompt_length and filters out a pair whose prompt alone fills max_length while it tokenizes, before
  a caller could shorten the prompt. We wrap `DPOTrainer._prepare_dataset`.
- The rollouts of an RLOO/GRPO step (prompt, completion, rewards, advantages) for the Train tab: TRL keeps
  them in the trainer's private `_logs` buffer and hands them only to wandb/trackio.

Invariant: `problems()` lists every way the installed TRL differs from what these reaches assume; the
trainers call `require_compatible()` before building, so a changed TRL fails at once with one line that says
which TRL to install, and tests/training/test_trl_internals.py fails loudly on an upgrade.
"""

from __future__ import annotations

import inspect
from typing import Any

PREPARE_DATASET_PARAMS = ("self", "dataset", "processing_class", "args", "dataset_name")
PINNED = "trl==1.16.0"


def problems() -> list[str]:
    """What in the installed TRL no longer matches the private API used below (empty: all good)."""
    from trl import DPOTrainer, GRPOTrainer, RLOOTrainer

    found = []
    params = tuple(inspect.signature(DPOTrainer._prepare_dataset).parameters)
    if params != PREPARE_DATASET_PARAMS:
        found.append(f"DPOTrainer._prepare_dataset{params} (expected {PREPARE_DATASET_PARAMS})")
    for cls in (RLOOTrainer, GRPOTrainer):
        source = inspect.getsource(cls)
        for key in ("self._logs", '"prompt"', '"completion"', '"rewards"', '"advantages"'):
            if key not in source:
                found.append(f"{cls.__name__} no longer keeps {key} in its rollout logs")
                break
    return found


def require_compatible() -> None:
    """Raise a one-line RuntimeError naming the TRL to install when the private API changed."""
    import trl

    found = problems()
    if found:
        raise RuntimeError(f"trl {trl.__version__} changed what alignui relies on ({'; '.join(found)}); "
                           f"install {PINNED} (requirements.txt)")


def keep_prompt_end_dpo_trainer():
    """trl.DPOTrainer plus `max_prompt_length`: over-long prompts keep their last tokens instead of being dropped."""
    from trl import DPOTrainer

    from alignui.training.common import keep_prompt_end

    require_compatible()

    class AlignDPOTrainer(DPOTrainer):
        def __init__(self, *args, max_prompt_length: int | None = None, **kwargs):
            self.max_prompt_length = max_prompt_length
            super().__init__(*args, **kwargs)

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            # switch TRL's length filter off while it tokenizes, shorten prompts (keeping the end), then
            # apply the same filter: a pair survives when its shortened prompt leaves room for a response
            max_length, args.max_length = args.max_length, None
            try:
                dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            finally:
                args.max_length = max_length
            limit, bos = self.max_prompt_length, self._tokenizer.bos_token_id
            if limit is not None:
                dataset = dataset.map(lambda ex: {"prompt_ids": keep_prompt_end(ex["prompt_ids"], limit, bos)},
                                      desc=f"Keeping the last {limit} prompt tokens ({dataset_name})")
            if max_length is not None:
                dataset = dataset.filter(lambda ex: len(ex["prompt_ids"]) < max_length,
                                         desc=f"Dropping pairs with no room for a response ({dataset_name})")
            return dataset

    return AlignDPOTrainer


def latest_rollouts(trainer) -> dict[str, Any]:
    """The rollouts TRL buffered since the last log event: prompt, completion, rewards (per reward model), advantages."""
    return trainer._logs
