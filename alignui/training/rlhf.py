"""The RL stage of RLHF: online RL of a LoRA policy against registered reward models (TRL RLOO, or GRPO).

Owns: `RLHFTrainConfig` (reward model(s), algorithm, KL coefficient, generations per prompt, new-token limit,
temperature, prompt sources, an optional starting adapter) and the job `run_rlhf`: prompts from the snapshot
(and/or a prompts file such as the exported prompt pool), the policy trained with TRL's RLOOTrainer (default)
or GRPOTrainer, live metrics (TRL's reward, kl, completions/mean_length, ... in metrics.jsonl) plus a few
rollouts per logging step in rollouts.jsonl, so reward hacking is visible while it happens.

What is resident (the seed warns about three models in GPU memory): ONE copy of the base model serves as
both policy (base + trainable LoRA) and reference (the same weights with the adapter disabled; when starting
from an SFT adapter, a frozen copy of that adapter, named 'ref', is the reference), plus each reward model
(its own base weights with the reward LoRA merged in). `residency()` says this in words for the UI and log.

Invariants:
- Rewards come from alignui.serving.reward_model (`RewardJudge.reward_function`), so the RL reward, the judge and the
  reward run's held-out accuracy all tokenize a response the same way the reward model was trained.
- The saved adapter (run/adapter/) is a standard PEFT causal-LM adapter the arena can hot-swap.
- torch/trl are imported inside functions (the web process imports this module for the config).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignui.errors import UserError
from alignui.training.config import DEMO_LR_NOTE, TrainConfig, _require, knob
from alignui.training.ppo import PPOSettings
from alignui.training.vllm_rollouts import VLLMRolloutSettings

ALGORITHMS = ("rloo", "grpo", "ppo")
ROLLOUTS_FILE = "rollouts.jsonl"


@dataclass(frozen=True)
class RLHFTrainConfig(VLLMRolloutSettings, TrainConfig, PPOSettings):
    """TrainConfig + the RL stage's knobs (defaults: TRL's RLOO with LoRA, the seed's advice); vLLM rollouts: the
    VLLMRolloutSettings mixin (alignui.training.vllm_rollouts); PPOSettings holds the knobs only algorithm=ppo
    reads."""

    reward_model: str = knob("", group="rlhf", help="reward model(s): run id or path of a finished `train reward` "
                             "run; several, comma-separated, are summed (an ensemble); empty = the newest")
    algorithm: str = knob("rloo", group="rlhf", choices=ALGORITHMS,
                          help="rloo = REINFORCE leave-one-out (TRL RLOOTrainer); grpo = group-relative policy "
                               "optimisation (GRPOTrainer); ppo = PPO with a learned value adapter, GAE and "
                               "clipped losses (alignui.training.ppo)")
    beta: float = knob(0.05, group="rlhf", help="KL coefficient: how strongly the policy is held to the reference",
                       guide="0.01-0.1; 0 = no KL (faster, but invites reward hacking)")
    num_generations: int = knob(4, group="rlhf", help="responses sampled per prompt; each is rewarded against the "
                                "others for the same prompt", guide="4-16; more = steadier signal, slower steps")
    max_new_tokens: int = knob(128, group="rlhf", help="longest sampled response in tokens",
                               guide="just above your typical good answer; cut responses still get rewarded")
    temperature: float = knob(1.0, group="rlhf", help="sampling temperature of the rollouts",
                              guide="0.7-1.0; too low and a prompt's samples are identical: no learning signal")
    top_p: float = knob(1.0, group="rlhf", help="nucleus sampling of the rollouts (1 = off)")
    learning_rate: float = knob(1e-5, help="peak learning rate (AdamW)",
                                guide="LoRA ~1e-5; watch KL and the samples, halve it if they degrade; " + DEMO_LR_NOTE)
    prompts_file: str = knob("", group="data", help="extra prompts (.txt, one per line, or .jsonl with a prompt "
                             "or messages field), e.g. the exported prompt pool")
    use_snapshot_prompts: bool = knob(True, group="data", help="train on the snapshot's prompts (train split)")
    init_adapter: str = knob("", group="model", help="start the policy from this adapter (an SFT run id or path); "
                             "the reference is then a frozen copy of it")
    eval_prompts: int = knob(16, group="run", help="held-out prompts answered by base and policy at the end, "
                             "both scored by the reward model; 0 = none")
    log_samples: int = knob(4, group="run", help="rollouts written per logging step (watch for reward hacking)")

    def __post_init__(self):
        super().__post_init__()
        _require(self.algorithm in ALGORITHMS, f"algorithm must be one of {', '.join(ALGORITHMS)}, "
                                               f"got {self.algorithm!r}")
        _require(self.beta >= 0, f"beta must be 0 or more (0.05 is the default), got {self.beta}")
        _require(self.num_generations >= (1 if self.algorithm == "ppo" else 2),
                 f"num_generations must be at least 2 (RLOO/GRPO compare a prompt's samples with each other), got "
                 f"{self.num_generations}")
        batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if self.algorithm == "ppo":
            self.check_ppo(batch)
            _require(self.num_processes == 1, "algorithm=ppo runs in one process: set num_processes=1 (or use "
                                              "rloo/grpo for several GPUs)")
        _require(batch % self.num_generations == 0,
                 f"per_device_train_batch_size x gradient_accumulation_steps ({batch}) must be a multiple of "
                 f"num_generations ({self.num_generations}): each batch holds whole groups of samples")
        _require(self.max_new_tokens >= 1, f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        _require(self.temperature > 0, f"temperature must be positive (1.0 is the default), got {self.temperature}")
        _require(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        _require(self.use_snapshot_prompts or bool(self.prompts_file.strip()),
                 "no prompts to train on: set use_snapshot_prompts=true or give a prompts_file")
        for name in ("eval_prompts", "log_samples"):
            _require(getattr(self, name) >= 0, f"{name} must be 0 or more, got {getattr(self, name)}")
        self.check_vllm(self.algorithm)

    def reference_pass(self) -> bool:
        """PPO runs the reference (adapters off) over every batch of rollouts (pre-flight counts it)."""
        return self.algorithm == "ppo"

    def reward_models(self) -> list[str]:
        """The reward model references, in order ([''] = the newest finished reward run)."""
        refs = [r.strip() for r in self.reward_model.split(",") if r.strip()]
        return refs or [""]

    def warnings(self) -> list[str]:
        out = [w for w in super().warnings() if not w.startswith("learning rate")]
        if not 1e-6 <= self.learning_rate <= 1e-4:
            out.append(f"learning rate {self.learning_rate:g} is outside the usual LoRA RL range 1e-6..1e-4 "
                       "(fine for the tiny demo model)")
        if self.beta == 0:
            out.append("beta 0: nothing holds the policy near the reference; watch the samples for reward hacking")
        if self.temperature < 0.5:
            out.append(f"temperature {self.temperature:g} is low: a prompt's samples may be identical and teach "
                       "nothing")
        return out


# -- prompts -----------------------------------------------------------------------------------------------------
def read_prompts_file(path: Path) -> list[Any]:
    """Prompts from a .txt (one per line) or .jsonl (prompt / messages field) file."""
    if not path.is_file():
        raise UserError(f"prompts_file {path} does not exist")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if path.suffix != ".jsonl":
        return [ln.strip() for ln in lines]
    out = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} line {number} is not JSON ({exc.msg}); fix or remove it") from exc
        value = row.get("prompt", row.get("messages")) if isinstance(row, dict) else row
        if not isinstance(value, (str, list)) or not value:
            raise UserError(f"{path} line {number} has no 'prompt' or 'messages' field")
        out.append(value)
    return out


def fit_prompt(tokenizer, prompt: Any, limit: int | None) -> Any | None:
    """The prompt within `limit` tokens: earliest turns are dropped first; None when even the last is too long."""
    if limit is None:
        return prompt
    if isinstance(prompt, str):
        return prompt if len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) <= limit else None
    turns = list(prompt)
    while turns:
        ids = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=True, return_dict=True)
        if len(ids["input_ids"]) <= limit:
            return turns
        turns = turns[1:]
    return None


def collect_prompts(config: RLHFTrainConfig, data, tokenizer, log=print) -> list[Any]:
    """Distinct prompts to train on, in first-seen order, each within max_prompt_length."""
    raw: list[Any] = list(data["train"]["prompt"]) if config.use_snapshot_prompts else []
    if config.prompts_file.strip():
        raw += read_prompts_file(Path(config.prompts_file).expanduser())
    out = distinct_prompts(raw, tokenizer, config.max_prompt_length, log=log)
    if not out:
        raise UserError("no prompts left to train on: the snapshot and prompts_file hold none that fit "
                        "max_prompt_length")
    return out


def distinct_prompts(raw: list[Any], tokenizer, limit: int | None, log=print) -> list[Any]:
    """`raw` without repeats (first-seen order), all in one form, each fitted to `limit` tokens."""
    conversational = any(isinstance(p, list) for p in raw)
    seen, out, dropped = set(), [], 0
    for prompt in raw:
        if conversational and isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        key = json.dumps(prompt, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        fitted = fit_prompt(tokenizer, prompt, limit)
        if fitted is None:
            dropped += 1
        else:
            out.append(fitted)
    if dropped:
        log(f"warning: {dropped} prompts are longer than max_prompt_length={limit} even with earlier turns "
            "dropped, and are skipped")
    return out


# -- the trainer ---------------------------------------------------------------------------------------------------
def trainer_class(algorithm: str):
    """TRL's RLOOTrainer or GRPOTrainer, plus a few rollouts written to rollouts.jsonl at each log event."""
    from trl import GRPOTrainer, RLOOTrainer

    from alignui.training.trl_internals import latest_rollouts, require_compatible

    require_compatible()
    parent = RLOOTrainer if algorithm == "rloo" else GRPOTrainer

    class AlignRLTrainer(parent):
        def __init__(self, *args, rollouts_path: Path | None = None, log_samples: int = 0, **kwargs):
            self.rollouts_path, self.log_samples = rollouts_path, log_samples
            super().__init__(*args, **kwargs)

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            is_step_log = "loss" in logs and self.model.training  # not the end-of-training summary, not eval
            if is_step_log and self.rollouts_path is not None and self.log_samples:
                write_rollouts(self.rollouts_path, self.state.global_step, latest_rollouts(self), self.num_generations,
                               self.log_samples)
            super().log(logs, start_time)

    return AlignRLTrainer


def write_rollouts(path: Path, step: int, logs: dict, group: int, count: int) -> None:
    """Append `count` of the latest rollouts (one per prompt group where possible) with their rewards."""
    prompts, completions = list(logs["prompt"]), list(logs["completion"])
    rewards = {name: list(values) for name, values in logs["rewards"].items()}
    advantages = list(logs["advantages"])
    picks = list(range(0, len(prompts), group))[:count]
    picks += [i for i in range(len(prompts)) if i not in picks][:count - len(picks)]
    with path.open("a") as fh:
        for i in picks:
            prompt = prompts[i] if isinstance(prompts[i], str) else prompts[i][-1]["content"]
            text = completions[i] if isinstance(completions[i], str) else completions[i][-1]["content"]
            record = {"step": step, "prompt": prompt, "completion": text,
                      "reward": sum(v[i] for v in rewards.values() if i < len(v)),
                      "advantage": advantages[i] if i < len(advantages) else None}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def rl_arguments(config: RLHFTrainConfig, base_kwargs: dict[str, Any], n_rewards: int):
    from trl import GRPOConfig, RLOOConfig

    from alignui.training import vllm_rollouts

    cls = RLOOConfig if config.algorithm == "rloo" else GRPOConfig
    return cls(**base_kwargs, num_generations=config.num_generations, max_completion_length=config.max_new_tokens,
               temperature=config.temperature, top_p=config.top_p, beta=config.beta, disable_dropout=True,
               log_completions=False, reward_weights=[1.0] * n_rewards, **vllm_rollouts.trl_arguments(config))


def load_policy(config: RLHFTrainConfig, job):
    """(model, tokenizer, peft_config): the base once, with a fresh LoRA (peft_config) or the init adapter."""
    from alignui.training.common import load_base, lora_config

    model, tokenizer = load_base(config, job.base, job.setup)
    if not config.init_adapter.strip():
        return model, tokenizer, lora_config(config)
    from peft import PeftModel

    adapter = resolve_adapter(job.storage, config.init_adapter.strip())
    return PeftModel.from_pretrained(model, str(adapter), is_trainable=True), tokenizer, None


def resolve_adapter(storage: Path, ref: str) -> Path:
    """A policy adapter directory by run id (under the data root) or path."""
    from alignui.paths import StorageLayout, UnsafeNameError

    path = Path(ref).expanduser()
    if not path.is_dir():
        try:
            path = StorageLayout(Path(storage)).run_dir(ref)
        except UnsafeNameError as exc:
            raise UserError(f"init_adapter {ref!r}: {exc}") from exc
    state = (json.loads((path / "status.json").read_text()) if (path / "status.json").is_file() else {}).get("state")
    if state not in (None, "done"):
        raise UserError(f"init_adapter run {ref} is {state}, not finished: resume it (Train tab), then start the RL "
                        "stage again")
    adapter = path / "adapter" if (path / "adapter" / "adapter_config.json").is_file() else path
    if not (adapter / "adapter_config.json").is_file():
        raise UserError(f"init_adapter {ref!r} holds no adapter (no adapter_config.json); give a finished SFT or "
                        "DPO run id")
    return adapter


def load_judges(config: RLHFTrainConfig, job) -> list:
    """The reward model(s) as RewardJudges on the job's device (LoRA merged: one forward per batch)."""
    from alignui.serving.reward_model import RewardJudge, load_reward_model, locate, resolve_reward_model

    judges = []
    for ref in config.reward_models():
        adapter, meta = locate(resolve_reward_model(job.storage, ref))
        model, tokenizer = load_reward_model(adapter, meta["base_model_path"], job.setup.device, job.setup.dtype)
        judges.append(RewardJudge(model, tokenizer, job.setup.device, adapter, meta,
                                  batch_size=max(config.eval_batch_size, config.per_device_train_batch_size)))
    return judges


def build_trainer(job, prompts: list[Any], judges: list, callbacks: list):
    """(trainer, tokenizer): the policy (base + LoRA; reference = adapter disabled) against `judges`."""
    from datasets import Dataset
    from transformers import PrinterCallback

    from alignui.training.common import check_dtypes, training_arguments

    config: RLHFTrainConfig = job.config
    model, tokenizer, peft_config = load_policy(config, job)
    args = rl_arguments(config, training_arguments(config, job.run, job.setup, has_eval=False), len(judges))
    funcs = []
    for i, judge in enumerate(judges):
        fn = judge.reward_function()
        fn.__name__ = "reward" if len(judges) == 1 else f"reward_{i + 1}"  # names TRL's rewards/<name>/mean
        funcs.append(fn)
    trainer = trainer_class(config.algorithm)(
        model=model, reward_funcs=funcs, args=args, train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks,
        rollouts_path=job.run.path / ROLLOUTS_FILE, log_samples=config.log_samples)
    trainer.remove_callback(PrinterCallback)  # RunCallback prints one readable line per log event instead
    check_dtypes(trainer.model, job.setup, args)
    return trainer, tokenizer


def run_rlhf(job) -> dict[str, Any]:
    """Online RL of a LoRA policy for `job` (alignui.training.job.Job); returns the run's summary."""
    from alignui.data.snapshot import load_snapshot
    from alignui.training.common import load_tokenizer, train_and_measure
    from alignui.training.metrics import RunCallback
    from alignui.training.ranks import synced_stop
    from alignui.training.rlhf_eval import finish, residency

    config: RLHFTrainConfig = job.config
    data = load_snapshot(job.snapshot)
    prompts = collect_prompts(config, data, load_tokenizer(job.base), log=job.log)
    job.run.update_status(phase="loading reward model")
    judges = load_judges(config, job)
    job.check_stop("while loading")
    callback = RunCallback(job.run, should_stop=synced_stop(job.stop.is_set), log=job.log)  # ranks stop together
    job.run.update_status(phase="loading policy")
    if config.algorithm == "ppo":
        from alignui.training.ppo_loop import VALUE_NOTE, build_ppo_trainer

        trainer, tokenizer = build_ppo_trainer(job, prompts, judges, [callback])
        resident = residency(trainer.model, judges, job.base).replace("; reward model", f"; {VALUE_NOTE}; reward "
                                                                      "model", 1)
    else:
        trainer, tokenizer = build_trainer(job, prompts, judges, [callback])
        resident = residency(trainer.model, judges, job.base)
    job.run.write_lineage({**job.run.read_lineage(), "reward_models": [j.run_id for j in judges],
                           "init_adapter": config.init_adapter or None})
    job.log(f"resident: {resident}")
    job.run.update_status(phase="training", resident=resident)
    job.log(f"{config.algorithm.upper()} on {len(prompts)} prompts, {config.num_generations} samples each")
    train_metrics, moved = train_and_measure(job, trainer, callback)
    return finish(job, trainer, tokenizer, data, judges, train_metrics=train_metrics, moved=moved,
                  resident=resident)
