"""Training configuration: the method-agnostic base dataclass, YAML presets and `--set key=value` overrides.

Owns: `TrainConfig` (the knobs every LoRA training method shares: base model, device, LoRA shape, optimiser,
lengths, checkpointing), the way a config is built from layers (class defaults < YAML file or preset <
`--set` overrides), type coercion of text values, and advice (`warnings()`) that is not an error.

Method configs (DPO here, reward/RLHF elsewhere) subclass `TrainConfig` and add their own fields; everything
below works on any subclass. This module imports neither torch nor trl, so the web process can build and
validate configs cheaply.

Invariants:
- A config that exists is valid: `__post_init__` raises `TrainConfigError` (a UserError) saying what was
  wrong and what to do; unknown keys are refused with the closest known names.
- Field metadata carries `help` (shown in the CLI, the YAML presets and the Train tab) and, where the
  seed's advice applies, `guide` (the short guidance shown next to the widget).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from alignui.errors import UserError

DEVICES = ("auto", "cpu", "cuda", "mps")
REPORT_TO = ("none", "tensorboard", "trackio", "wandb")
CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"
#: The seed's advice for LoRA learning rates; outside it a run is likely to do nothing or to break the model.
LR_RANGE = (5e-7, 5e-5)
#: Appended to every method's learning-rate guide: the cpu-demo presets sit far above it, and the form must say why.
DEMO_LR_NOTE = "the cpu-demo preset is the exception: its much higher rate is meant for the tiny demo model only"


class TrainConfigError(UserError):
    """A training setting is wrong; the message says which one and what to do."""


def knob(default: Any = dataclasses.MISSING, *, help: str, guide: str | None = None, choices: tuple | None = None,
         group: str = "training", default_factory: Any = dataclasses.MISSING):
    """A dataclass field with the metadata the CLI, presets and Train tab read."""
    meta = {"help": help, "guide": guide, "choices": choices, "group": group}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Settings shared by every training method (LoRA on one base model)."""

    # -- model --------------------------------------------------------------------------------------------
    base_model: str = knob("", group="model", help="hub id or local path of the base model; 'demo' for the "
                           "built-in model; empty = the model the app serves")
    device: str = knob("auto", group="model", choices=DEVICES, help="auto picks cuda, then mps, then cpu")
    load_in_4bit: bool = knob(False, group="model", help="QLoRA: load the base model in 4-bit NF4 (CUDA and "
                              "bitsandbytes only)")
    gradient_checkpointing: bool | None = knob(None, group="model", help="recompute activations in the backward "
                                               "pass: far less activation memory for about one more forward per "
                                               "step (~30% slower); empty = on for GPU, off on CPU")
    cpu_threads: int = knob(0, group="model", help="torch threads on CPU; 0 = torch's default")
    # -- LoRA ---------------------------------------------------------------------------------------------
    lora_r: int = knob(16, group="lora", help="LoRA rank", guide="8-64; higher = more capacity and memory")
    lora_alpha: int = knob(32, group="lora", help="LoRA scaling alpha", guide="usually 2 x rank")
    lora_dropout: float = knob(0.05, group="lora", help="dropout on the LoRA input")
    lora_target_modules: str = knob("all-linear", group="lora", help="'all-linear' or comma-separated module "
                                    "names, e.g. q_proj,v_proj")
    # -- optimisation -------------------------------------------------------------------------------------
    learning_rate: float = knob(5e-6, help="peak learning rate (AdamW)",
                                guide="LoRA default ~5e-6; outside 5e-7..5e-5 expect no effect or a broken model; "
                                + DEMO_LR_NOTE)
    num_train_epochs: float = knob(1.0, help="passes over the training split; ignored when max steps > 0",
                                   guide="1 is usually enough")
    max_steps: int = knob(-1, help="stop after this many optimiser steps; when > 0 it wins over num train epochs "
                          "(the data repeats until the steps are done); -1 = run the epochs")
    per_device_train_batch_size: int = knob(4, help="pairs per forward pass")
    gradient_accumulation_steps: int = knob(1, help="forward passes per optimiser step (effective batch = "
                                            "batch size x this)")
    warmup_ratio: float = knob(0.1, help="fraction of steps spent warming the learning rate up")
    lr_scheduler_type: str = knob("cosine", choices=("cosine", "linear", "constant", "constant_with_warmup"),
                                  help="learning-rate schedule after warm-up")
    weight_decay: float = knob(0.0, help="AdamW weight decay")
    max_grad_norm: float = knob(1.0, help="gradient clipping norm")
    seed: int = knob(42, help="seed for LoRA init, data order and sampling")
    # -- data ---------------------------------------------------------------------------------------------
    max_length: int = knob(1024, group="data", help="longest prompt + response in tokens; longer pairs are cut "
                           "at the end", guide="pre-flight shows how many pairs this cuts")
    max_prompt_length: int | None = knob(512, group="data", help="longest prompt in tokens; longer prompts keep "
                                         "their END (the latest turns); empty = no limit")
    eval_batch_size: int = knob(8, group="data", help="pairs per forward pass in the held-out evaluation")
    # -- run ----------------------------------------------------------------------------------------------
    logging_steps: int = knob(1, group="run", help="log metrics every N optimiser steps")
    save_steps: int = knob(50, group="run", help="save a checkpoint every N steps (resume starts from the last)")
    save_total_limit: int = knob(2, group="run", help="checkpoints kept on disk")
    eval_steps: int = knob(0, group="run", help="evaluate on the test split every N steps; 0 = only at the end")
    sample_prompts: int = knob(4, group="run", help="held-out prompts sampled from base and adapter at the end "
                               "(degenerate-sample check); 0 = none")
    sample_max_new_tokens: int = knob(64, group="run", help="length limit of those samples")
    parent_run: str | None = knob(None, group="run", help="lineage: the run this one continues from (informational)")
    report_to: str = knob("none", group="run", choices=REPORT_TO, help="also send metrics to this tracker (the "
                          "app's own curves work either way); must be installed: pip install tensorboard|trackio|wandb")
    # -- scale (alignui.training.launch) --------------------------------------------------------------------
    num_processes: int = knob(1, group="scale", help="training processes (one per GPU; on CPU, gloo processes); "
                              ">1 runs the job under `accelerate launch`",
                              guide="effective batch = batch size x accumulation x processes")
    accelerate_config: str = knob("", group="scale", help="accelerate config for num_processes > 1: ddp, zero2, "
                                  "zero3, zero3_offload, fsdp (configs/accelerate/) or a YAML path; empty = DDP")

    def __post_init__(self):
        if self.report_to == "":  # "none" in YAML/--set reads as empty for a text field
            object.__setattr__(self, "report_to", "none")
        self._check_types()
        _require(self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        _require(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}; try 5e-6")
        _require(self.num_train_epochs > 0 or self.max_steps > 0,
                 "set num_train_epochs > 0 or max_steps > 0: as given, training would do nothing")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "eval_batch_size", "lora_r",
                     "logging_steps", "save_steps", "save_total_limit", "sample_max_new_tokens"):
            _require(getattr(self, name) >= 1, f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("cpu_threads", "eval_steps", "sample_prompts"):
            _require(getattr(self, name) >= 0, f"{name} must be 0 or more, got {getattr(self, name)}")
        _require(self.lora_alpha > 0, f"lora_alpha must be positive, got {self.lora_alpha}; usually 2 x lora_r")
        _require(0 <= self.lora_dropout < 1, f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        _require(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        _require(self.max_length >= 8, f"max_length must be at least 8 tokens, got {self.max_length}")
        if self.max_prompt_length is not None:
            _require(1 <= self.max_prompt_length < self.max_length,
                     f"max_prompt_length ({self.max_prompt_length}) must be at least 1 and below max_length "
                     f"({self.max_length}), or every response would be cut away; lower it or raise max_length")
        _require(self.lora_target_modules.strip() != "", "lora_target_modules is empty; use 'all-linear'")
        _require("lm_head" not in self.target_modules(),
                 "lm_head cannot be a LoRA target (TRL computes log-probs from its weight directly); remove it")
        from alignui.training import launch, tracking  # light modules: no torch

        tracking.check_report_to(self.report_to)
        launch.check_settings(self)

    def _check_types(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value, allowed = getattr(self, f.name), _allowed_types(hints[f.name])
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                raise TrainConfigError(f"{f.name} must be {_type_name(hints[f.name])}, got {value!r}")

    # -- views ----------------------------------------------------------------------------------------------
    def target_modules(self) -> str | list[str]:
        """The PEFT target_modules value: the string 'all-linear' or a list of module names."""
        text = self.lora_target_modules.strip()
        return text if text == "all-linear" else [t.strip() for t in text.split(",") if t.strip()]

    def reference_pass(self) -> bool:
        """Whether each training step also runs the reference policy (the base with adapters off, no gradients):
        DPO and KTO do; reference-free methods (ORPO, SimPO) and SFT/reward models do not. Pre-flight counts it."""
        return False

    def reference_name(self) -> str:
        """What the reference pass runs, in words (pre-flight); config.AdapterStart names its starting adapter."""
        return BASE_REFERENCE

    def data_refusals(self, data) -> list[str]:
        """Why this method cannot train on `data` (the snapshot's DatasetDict), for the pre-flight; [] = it can.
        Every method but KTO needs pairs; KTO overrides this with its own check."""
        if "chosen" in data["train"].column_names:
            return []
        return ["the snapshot holds unpaired (prompt, completion, label) rows, not pairs: only KTO trains on "
                "those; pick KTO or export pairs"]

    def data_warnings(self, data) -> list[str]:
        """What about `data` may make this method train poorly, for the pre-flight (KTO: a rare label class)."""
        return []

    def reward_models(self) -> list[str]:
        """Reward models the job keeps in memory beside the policy (RLHF names them; others have none)."""
        return []

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def warnings(self) -> list[str]:
        """Advice that does not stop a run (the seed's watch-outs about settings)."""
        out = []
        low, high = LR_RANGE
        if not low <= self.learning_rate <= high:
            out.append(f"learning rate {self.learning_rate:g} is outside the usual LoRA range {low:g}..{high:g}: "
                       "too low does nothing, too high breaks the model (fine for the tiny demo model)")
        return out

    @classmethod
    def help_of(cls, name: str) -> str:
        meta = {f.name: f.metadata for f in fields(cls)}[name]
        return meta["help"] + (f" ({meta['guide']})" if meta.get("guide") else "")

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, base: "TrainConfig | None" = None) -> "TrainConfig":
        """A config from `values` (coerced to each field's type) on top of `base` or the defaults."""
        known = {f.name: f for f in fields(cls)}
        unknown = [k for k in values if k not in known]
        if unknown:
            hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, known, n=1)) else repr(k)
                     for k in unknown]
            raise TrainConfigError(f"unknown setting {', '.join(hints)} for {cls.__name__}; known settings: "
                                   f"{', '.join(known)}")
        hints_by_name = typing.get_type_hints(cls)
        coerced = {k: coerce(k, v, hints_by_name[k]) for k, v in values.items()}
        start = base.to_dict() if base is not None else {}
        return cls(**{**start, **coerced})


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise TrainConfigError(message)


def _allowed_types(hint) -> tuple[type, ...]:
    args = typing.get_args(hint) or (hint,)
    allowed: list[type] = []
    for a in args:
        if a is type(None):
            allowed.append(type(None))
        elif a is float:
            allowed += [float, int]
        else:
            allowed.append(typing.get_origin(a) or a)
    return tuple(allowed)


def _type_name(hint) -> str:
    names = [getattr(a, "__name__", str(a)) for a in (typing.get_args(hint) or (hint,))]
    return " or ".join("empty" if n == "NoneType" else f"a {n}" for n in names)


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def coerce(name: str, value: Any, hint) -> Any:
    """`value` (often text from YAML, --set or a form) as the field's type, or a TrainConfigError."""
    args = typing.get_args(hint) or (hint,)
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none", "null"}):
        if type(None) in args:
            return None
        if str in args:
            return ""
        raise TrainConfigError(f"{name} needs a value ({_type_name(hint)})")
    kind = next(a for a in args if a is not type(None))
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError(value)
        if kind is int:
            number = float(value)
            if number != int(number) or isinstance(value, bool):
                raise ValueError(value)
            return int(number)
        if kind is float:
            return float(value)
        if kind is str:
            return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    except (TypeError, ValueError):
        raise TrainConfigError(f"{name} must be {_type_name(hint)}, got {value!r}") from None
    return value


def parse_sets(items: Iterable[str]) -> dict[str, str]:
    """`["beta=0.2", "lora_r=8"]` -> {"beta": "0.2", "lora_r": "8"} (values are coerced later, per field)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TrainConfigError(f"--set takes key=value, got {item!r} (e.g. --set beta=0.1)")
        out[key.strip()] = value.strip()
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise TrainConfigError(f"config file {path} does not exist; see configs/ for presets") from None
    except yaml.YAMLError as exc:
        raise TrainConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TrainConfigError(f"config file {path} must hold a mapping of setting: value")
    return data


def preset_names(path: Path) -> list[str]:
    """Names of the presets in a presets file (configs/<method>.yaml), default first."""
    data = read_yaml(path)
    names = list((data.get("presets") or {}).keys())
    default = data.get("default_preset")
    return sorted(names, key=lambda n: n != default)


def settings_from_file(path: Path, preset: str | None = None) -> dict[str, Any]:
    """The settings in a YAML file: a flat mapping, or one preset of a presets file (its default if unnamed)."""
    data = read_yaml(path)
    if "presets" not in data:
        if preset:
            raise TrainConfigError(f"{path} holds no presets, so --preset {preset} means nothing; drop --preset")
        data.pop("method", None)
        return data
    presets = data["presets"] or {}
    name = preset or data.get("default_preset") or next(iter(presets), None)
    if name not in presets:
        raise TrainConfigError(f"no preset {name!r} in {path}; presets: {', '.join(presets) or 'none'}")
    settings = dict(presets[name] or {})
    settings.pop("description", None)
    return settings


def build_config(cls: type[TrainConfig], *, config_file: Path | None = None, preset: str | None = None,
                 overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Class defaults < YAML file / preset < overrides, validated once at the end."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(settings_from_file(config_file, preset))
    values.update(overrides or {})
    return cls.from_mapping(values)


BASE_REFERENCE = "the base with adapters off (one extra no-grad forward per step, no second copy)"


@dataclass(frozen=True)
class AdapterStart:
    """The `init_adapter` knob of the methods that train one LoRA on a snapshot (DPO, KTO, ORPO, SimPO): the
    next round of training in rounds starts from the last round's adapter instead of a fresh LoRA."""

    init_adapter: str = knob("", group="model", help="start from this adapter (a finished run id or an adapter "
                             "path) instead of a fresh LoRA: the next round of training in rounds; with a "
                             "reference (DPO, KTO) the reference is then a frozen copy of it (TRL), so each round "
                             "moves from the last")

    def reference_name(self) -> str:
        """What the reference pass compares with, in words (pre-flight)."""
        if self.init_adapter.strip():
            return (f"a frozen copy of the starting adapter {self.init_adapter.strip()} (TRL's 'ref' adapter: one "
                    "extra no-grad forward per step, no second copy of the base)")
        return BASE_REFERENCE
