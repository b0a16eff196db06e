"""The method registry: method name -> (config class, job function, preset file).

Owns: the one table that says which training methods exist. The CLI (`python -m alignui train <method>`),
the job envelope (alignui.training.job), the runner and the Train tab all look methods up here, so adding a
method is one row plus its module.

Entries name their config class and job function by import path, so listing methods imports nothing heavy;
`Method.config_class()` imports the method's module (which must keep torch/trl imports inside functions) and
`Method.job()` returns `job(job: alignui.training.job.Job) -> dict`.

Invariant: the table is an immutable tuple; a method whose module is not there yet is reported as
unavailable with a clear message, never half-run.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from alignui.errors import UserError
from alignui.training.config import CONFIGS_DIR, TrainConfig


class MethodUnavailable(UserError):
    """The method is registered but its implementation is not installed in this version."""


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    config_path: str  # "module:ClassName" of a TrainConfig subclass
    job_path: str  # "module:function" taking a Job, returning the summary dict
    preset_file: str  # file name under configs/
    produces_adapter: bool = True  # True: the output is a policy adapter the arena can serve

    def _load(self, path: str) -> Any:
        module, _, attr = path.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise MethodUnavailable(f"training method '{self.name}' is not available in this version of alignui "
                                    f"({type(exc).__name__}: {exc})") from exc

    def config_class(self) -> type[TrainConfig]:
        return self._load(self.config_path)

    def job(self) -> Callable[..., dict]:
        return self._load(self.job_path)

    @property
    def presets_path(self) -> Path:
        return CONFIGS_DIR / self.preset_file

    @property
    def available(self) -> bool:
        try:
            self.config_class()
        except MethodUnavailable:
            return False
        return True


METHODS: tuple[Method, ...] = (
    Method("dpo", "DPO", "alignui.training.dpo:DPOTrainConfig",
           "alignui.training.dpo:run_dpo", "dpo.yaml"),
    Method("reward", "Reward model", "alignui.training.reward:RewardTrainConfig",
           "alignui.training.reward:run_reward", "reward.yaml", produces_adapter=False),
    Method("rlhf", "RLHF (reward model + online RL)", "alignui.training.rlhf:RLHFTrainConfig",
           "alignui.training.rlhf:run_rlhf", "rlhf.yaml"),
    Method("sft", "SFT (supervised fine-tuning on chosen responses)", "alignui.training.sft:SFTTrainConfig",
           "alignui.training.sft:run_sft", "sft.yaml"),
)


def method_names() -> tuple[str, ...]:
    return tuple(m.name for m in METHODS)


def get_method(name: str) -> Method:
    for m in METHODS:
        if m.name == name:
            return m
    raise UserError(f"unknown training method {name!r}; choose one of {', '.join(method_names())}")


def available_methods() -> list[Method]:
    """Methods whose implementation is importable here (what the Train tab offers)."""
    return [m for m in METHODS if m.available]
