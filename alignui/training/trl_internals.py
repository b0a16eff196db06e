"""The only places where alignui reaches into TRL's private internals, each checked against the pinned TRL.

Why a reach at all (no public API exists in trl 1.16):
- DPO and KTO prompt truncation that keeps the END of a long prompt (the latest turns): TRL dropped
  max_prompt_length and filters out a row whose prompt alone fills max_length while it tokenizes, before
  a caller could shorten the prompt. We wrap `DPOTrainer._prepare_dataset` / `KTOTrainer._prepare_dataset`.
- ORPO and SimPO (CPO) prompt truncation, same rule: those trainers (trl.experimental) tokenize the
  chat-rendered prompt text row by row and have no prompt limit at all. We wrap their `tokenize_row`.
- The rollouts of an RLOO/GRPO step (prompt, completion, rewards, advantages) for the Train tab: TRL keeps
  them in the trainer's private `_logs` buffer and hands them only to wandb/trackio.

Invariant: `problems()` lists every way the installed TRL differs from what these reaches assume; the
trainers call `require_compatible()` before building, so a changed TRL fails at once with one line that says
which TRL to install, and tests/training/test_trl_internals.py fails loudly on an upgrade.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

PREPARE_DATASET_PARAMS = ("self", "dataset", "processing_class", "args", "dataset_name")
TOKENIZE_ROW_PARAMS = ("self", "feature", "model")
#: The reference-free trainers whose `tokenize_row` we wrap; optional: a TRL without one is the method
#: registry's business (alignui.training.methods says the method is unavailable), not a problem here.
ROW_TOKENIZING = ("trl.experimental.orpo:ORPOTrainer", "trl.experimental.cpo:CPOTrainer")
PINNED = "trl==1.16.0"


def problems() -> list[str]:
    """What in the installed TRL no longer matches the private API used below (empty: all good)."""
    from trl import DPOTrainer, GRPOTrainer, KTOTrainer, RLOOTrainer

    found = []
    for cls in (DPOTrainer, KTOTrainer):
        params = tuple(inspect.signature(cls._prepare_dataset).parameters)
        if params != PREPARE_DATASET_PARAMS:
            found.append(f"{cls.__name__}._prepare_dataset{params} (expected {PREPARE_DATASET_PARAMS})")
    for cls in _row_tokenizing_trainers():
        params = tuple(inspect.signature(cls.tokenize_row).parameters)
        if params != TOKENIZE_ROW_PARAMS:
            found.append(f"{cls.__name__}.tokenize_row{params} (expected {TOKENIZE_ROW_PARAMS})")
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


def _row_tokenizing_trainers() -> list[type]:
    import importlib

    out = []
    for path in ROW_TOKENIZING:
        module, _, name = path.partition(":")
        try:
            with warnings.catch_warnings():  # trl.experimental warns on import; the registry already says so
                warnings.simplefilter("ignore")
                out.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return out


def keep_prompt_end_dpo_trainer():
    """trl.DPOTrainer plus `max_prompt_length`: over-long prompts keep their last tokens instead of being dropped."""
    from trl import DPOTrainer

    return keep_prompt_end_trainer(DPOTrainer)


def keep_prompt_end_trainer(trainer_cls):
    """A subclass of a TRL trainer that tokenizes rows into `prompt_ids` in `_prepare_dataset` (DPOTrainer,
    KTOTrainer), taking `max_prompt_length=`: over-long prompts keep their last tokens instead of being dropped."""
    from alignui.training.common import keep_prompt_end

    require_compatible()

    class PromptEndTrainer(trainer_cls):
        def __init__(self, *args, max_prompt_length: int | None = None, **kwargs):
            self.max_prompt_length = max_prompt_length
            super().__init__(*args, **kwargs)

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            # switch TRL's length filter off while it tokenizes, shorten prompts (keeping the end), then
            # apply the same filter: a row survives when its shortened prompt leaves room for a response
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
                                         desc=f"Dropping rows with no room for a response ({dataset_name})")
            return dataset

    PromptEndTrainer.__name__ = PromptEndTrainer.__qualname__ = f"Align{trainer_cls.__name__}"
    return PromptEndTrainer


def shorten_prompt_text(tokenizer, prompt: str, limit: int | None) -> str:
    """`prompt` (already rendered by the chat template) cut to its last `limit` tokens, a leading BOS kept."""
    from alignui.training.common import keep_prompt_end

    if limit is None:
        return prompt
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if len(ids) <= limit:
        return prompt
    return tokenizer.decode(keep_prompt_end(ids, limit, tokenizer.bos_token_id), skip_special_tokens=False)


def keep_prompt_end_row_trainer(trainer_cls, tokenizer, limit: int | None):
    """A subclass of TRL's ORPO/CPO trainer whose rows keep the last `limit` prompt tokens (see the module
    docstring): `tokenize_row` gets the shortened prompt text."""
    require_compatible()

    class PromptEndTrainer(trainer_cls):
        def tokenize_row(self, feature, model=None):
            feature = {**feature, "prompt": shorten_prompt_text(tokenizer, feature["prompt"], limit)}
            return super().tokenize_row(feature, model)

    PromptEndTrainer.__name__ = PromptEndTrainer.__qualname__ = f"Align{trainer_cls.__name__}"
    return PromptEndTrainer


def latest_rollouts(trainer) -> dict[str, Any]:
    """The rollouts TRL buffered since the last log event: prompt, completion, rewards (per reward model), advantages."""
    return trainer._logs
