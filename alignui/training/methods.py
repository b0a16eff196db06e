"""The method registry: method name -> (config class, job function, preset file).

Owns: the one table that says which training methods exist. The CLI (`python -m alignui train <method>`),
the job envelope (alignui.training.job), the runner and the Train tab all look methods up here, so adding a
method is one row plus its module.

Entries name their config class and job function by import path, so listing methods imports nothing heavy;
`Method.config_class()` imports the method's module (which must keep torch/trl imports inside functions) and
`Method.job()` returns `job(job: alignui.training.job.Job) -> dict`.

A row may also name the TRL classes it trains with (`needs`): TRL moves trainers between releases (ORPO and
CPO live in trl.experimental in 1.16, KTO was promoted out of it), so a method whose trainer this TRL lacks is
listed as unavailable with one line saying so (`unavailable_reason`), found without importing TRL, and a job
that gets that far anyway stops with the same one-line MethodUnavailable (`load_trl`), never an import error.

Invariant: the table is an immutable tuple; a method whose module is not there yet is reported as
unavailable with a clear message, never half-run.
"""

from __future__ import annotations

import importlib
import importlib.util
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
    needs: tuple[str, ...] = ()  # "module:Class" of the TRL trainer/config classes the job trains with
    help: str = ""  # one line: what it trains and when to prefer it

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
    def unavailable_reason(self) -> str | None:
        """None when the method can run here, else one line saying why not (nothing heavy is imported)."""
        try:
            self.config_class()
        except MethodUnavailable as exc:
            return str(exc)
        missing = [path for path in self.needs if not module_exists(path.partition(":")[0])]
        if missing:
            return trl_missing(missing[0], self.name)
        return None

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None


def module_exists(dotted: str) -> bool:
    """Whether `dotted` (e.g. trl.experimental.orpo) is installed, judged from the files of its top-level
    package: nothing is imported (importing trl.experimental costs seconds and prints a warning)."""
    top, *rest = dotted.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None:
        return False
    for root in spec.submodule_search_locations or []:
        path = Path(root).joinpath(*rest)
        if not rest or path.is_dir() or path.with_suffix(".py").is_file():
            return True
    return False


def trl_missing(path: str, method: str) -> str:
    try:
        from importlib.metadata import version

        trl = f"trl {version('trl')}"
    except Exception:  # noqa: BLE001 - only for the message
        trl = "the installed trl"
    return (f"training method '{method}' needs {path.replace(':', '.')}, which {trl} does not have (TRL moved or "
            "dropped it; alignui is tested with trl==1.16.0): pick another method or install that version")


def load_trl(path: str, method: str) -> Any:
    """The TRL class at "module:Class", or a one-line MethodUnavailable when this TRL lacks it."""
    import warnings

    module, _, attr = path.partition(":")
    try:
        with warnings.catch_warnings():  # trl.experimental warns on every import that its API is unstable
            warnings.simplefilter("ignore")
            return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise MethodUnavailable(trl_missing(path, method)) from exc


METHODS: tuple[Method, ...] = (
    Method("dpo", "DPO", "alignui.training.dpo:DPOTrainConfig",
           "alignui.training.dpo:run_dpo", "dpo.yaml",
           help="pairs, held near the base by a reference pass (adapters off): the default for preference pairs"),
    Method("reward", "Reward model", "alignui.training.reward:RewardTrainConfig",
           "alignui.training.reward:run_reward", "reward.yaml", produces_adapter=False,
           help="pairs -> a scalar scorer: RLHF's reward model"),
    Method("rlhf", "RLHF (reward model + online RL)", "alignui.training.rlhf:RLHFTrainConfig",
           "alignui.training.rlhf:run_rlhf", "rlhf.yaml",
           help="online RL (RLOO/GRPO/PPO) against a trained reward model"),
    Method("sft", "SFT (supervised fine-tuning on chosen responses)", "alignui.training.sft:SFTTrainConfig",
           "alignui.training.sft:run_sft", "sft.yaml", help="imitate the chosen responses: RLHF's optional first step"),
    Method("orpo", "ORPO (reference-free, SFT built in)", "alignui.training.reference_free:ORPOTrainConfig",
           "alignui.training.reference_free:run_orpo", "orpo.yaml",
           needs=("trl.experimental.orpo:ORPOTrainer", "trl.experimental.orpo:ORPOConfig"),
           help="pairs, no reference model: one forward pass per response (less memory than DPO) and an SFT term "
                "on the chosen response, so no separate SFT stage is needed"),
    Method("simpo", "SimPO (reference-free, length-normalised)", "alignui.training.reference_free:SimPOTrainConfig",
           "alignui.training.reference_free:run_simpo", "simpo.yaml",
           needs=("trl.experimental.cpo:CPOTrainer", "trl.experimental.cpo:CPOConfig"),
           help="pairs, no reference model (less memory than DPO); rewards the average log-probability per token, "
                "so longer answers do not win by length"),
    Method("kto", "KTO (thumbs up/down; pairs are split)", "alignui.training.kto:KTOTrainConfig",
           "alignui.training.kto:run_kto", "kto.yaml", needs=("trl:KTOTrainer", "trl:KTOConfig"),
           help="unpaired desirable/undesirable examples (each pair gives one of each): for thumbs up/down "
                "feedback and unbalanced classes"),
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
