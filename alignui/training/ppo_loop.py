"""The PPO loop of `train rlhf --set algorithm=ppo`: rollouts, the PPO epochs, checkpoints (maths: ppo.py).

Owns: `build_ppo_trainer(job, prompts, judges, callbacks)` -> (PPOLoraTrainer, tokenizer), and the models:
ONE copy of the base weights carries the policy (LoRA adapter 'default', trainable), the critic (LoRA adapter
'value' + a value head on the last hidden state, trainable, PEFT modules_to_save) and the reference (adapters
off; with init_adapter, a frozen copy of it named 'ref'). Adapters are switched with PEFT's set_adapter.

One Trainer step = one PPO iteration: a batch of rollouts (prompts x num_generations samples, scored by the
reward model(s)), then ppo_epochs passes of num_mini_batches optimiser updates over it; the last update's
gradients are left for the Trainer's own optimiser step (clipping, scheduler). So max_steps counts rollout
batches (the same generation budget as RLOO's steps), checkpoints fall between rollout batches (nothing is
buffered across a checkpoint: resume is exact), and transformers' Trainer does logging, saving, resuming and
callbacks (alignui.training.metrics.RunCallback: live metrics, cancel) as for every other method.

Invariants:
- A checkpoint holds both adapters (policy at the root, critic in value/) and ppo_state.json (the adaptive KL
  coefficient); resume restores all three. The final save (the run's adapter/) is the policy alone: a plain
  PEFT causal-LM adapter the arena hot-swaps.
- Metrics use the names of the other RL methods where they mean the same (reward, reward_std, kl,
  completions/mean_length, completions/clipped_ratio) so the Train tab's curves and watch-outs work, plus
  PPO's own (policy_loss, value_loss, clip_fraction, value_clip_fraction, approx_kl, entropy, beta).
- Prompt tokens and padding are masked out of every loss (ppo.py's masked means).
"""

from __future__ import annotations

import json
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from statistics import mean
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from alignui.training import ppo

POLICY, VALUE, REF = "default", "value", "ref"
PPO_STATE = "ppo_state.json"
VALUE_NOTE = "value = a second LoRA adapter ('value') + a value head on the same weights"


# -- models --------------------------------------------------------------------------------------------------------
def load_models(config, job):
    """(model, tokenizer): the base once, policy adapter (fresh or init_adapter), reference, critic."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import set_seed

    from alignui.training.common import load_base, lora_config
    from alignui.training.rlhf import resolve_adapter

    set_seed(config.seed)  # LoRA's A matrices are drawn here, before the Trainer seeds: same seed, same run
    base, tokenizer = load_base(config, job.base, job.setup)
    if config.init_adapter.strip():
        adapter = str(resolve_adapter(job.storage, config.init_adapter.strip()))
        model = PeftModel.from_pretrained(base, adapter, is_trainable=True)
        model.load_adapter(adapter, adapter_name=REF, is_trainable=False)  # the reference: a frozen copy
    else:
        model = get_peft_model(base, lora_config(config))
    head = torch.nn.Linear(base.config.hidden_size, 1, device=base.device, dtype=torch.float32)
    torch.nn.init.zeros_(head.weight)  # the critic starts at V = 0
    torch.nn.init.zeros_(head.bias)
    model.get_base_model().value_head = head
    model.add_adapter(VALUE, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                                        target_modules=config.target_modules(), exclude_modules=["value_head"],
                                        modules_to_save=["value_head"], bias="none", task_type="CAUSAL_LM"))
    model.set_adapter(POLICY)
    set_trainable(model)
    return model, tokenizer


def set_trainable(model) -> None:
    """Both adapters (and the critic's head) train; base weights and the 'ref' copy stay frozen. PEFT's
    set_adapter/disable_adapter flip requires_grad to the active adapter alone, so this runs after each."""
    for name, param in model.named_parameters():
        param.requires_grad_(("lora_" in name or "modules_to_save" in name) and f".{REF}." not in name
                             and "original_module" not in name)


def encode_prompts(tokenizer, prompts: list[Any], device) -> dict:
    """Left-padded prompt ids (chat template for conversations, plain text otherwise)."""
    tokenizer.padding_side = "left"
    if isinstance(prompts[0], list):
        enc = tokenizer.apply_chat_template(prompts, add_generation_prompt=True, return_tensors="pt", padding=True,
                                            return_dict=True)
    else:
        enc = tokenizer(prompts, return_tensors="pt", padding=True)
    return {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}


def completion_mask(completions, eos_ids: set[int]):
    """1 on the real completion tokens: up to and including the first end-of-sequence token."""
    is_eos = torch.zeros_like(completions, dtype=torch.bool)
    for eos in eos_ids:
        is_eos |= completions == eos
    after = is_eos.long().cumsum(-1) - is_eos.long()  # end tokens strictly before this position
    return (after == 0).long()


# -- the trainer ---------------------------------------------------------------------------------------------------
class PPOLoraTrainer(Trainer):
    """transformers' Trainer whose step is one PPO iteration (see the module docstring)."""

    def __init__(self, *args, settings, judges: list, group: int, micro_batch: int, rollouts_path: Path | None,
                 log_samples: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings, self.judges, self.group, self.micro_batch = settings, judges, group, micro_batch
        self.rollouts_path, self.log_samples = rollouts_path, log_samples
        self.kl_control = ppo.AdaptiveKL(settings.beta, settings.kl_target, settings.kl_horizon)
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._latest: dict[str, Any] | None = None
        gen = self.model.generation_config.eos_token_id
        self.eos_ids = set(gen if isinstance(gen, list) else [gen]) | {self.processing_class.eos_token_id}

    @contextmanager
    def adapter(self, name: str | None):
        """Forward passes through adapter `name` (None = adapters off); the trainable set is unchanged."""
        model = self.model
        if name is None:
            with model.disable_adapter():
                yield
            set_trainable(model)
            return
        model.set_adapter(name)
        set_trainable(model)
        try:
            yield
        finally:
            model.set_adapter(POLICY)
            set_trainable(model)

    # -- forward passes ---------------------------------------------------------------------------------------
    def token_logprobs(self, batch: dict, rows, with_entropy: bool = False):
        """Log-probs of the sampled completion tokens (temperature-scaled, as sampled) under the active adapter."""
        from trl.trainer.utils import entropy_from_logits, selective_log_softmax

        n_prompt = batch["n_prompt"]
        with self.accelerator.autocast():
            logits = self.model(input_ids=batch["ids"][rows], attention_mask=batch["attn"][rows],
                                position_ids=batch["pos"][rows], use_cache=False).logits
        logits = logits[:, n_prompt - 1:-1].float() / self.settings.temperature
        logp = selective_log_softmax(logits, batch["ids"][rows, n_prompt:])
        return (logp, entropy_from_logits(logits.detach())) if with_entropy else logp

    def values(self, batch: dict, rows):
        """The critic's value of each completion position (the state before its token), adapter 'value'."""
        causal_lm = self.model.get_base_model()
        with self.adapter(VALUE), self.accelerator.autocast():
            hidden = causal_lm.base_model(input_ids=batch["ids"][rows], attention_mask=batch["attn"][rows],
                                          position_ids=batch["pos"][rows], use_cache=False).last_hidden_state
            n_prompt = batch["n_prompt"]
            return causal_lm.value_head(hidden[:, n_prompt - 1:-1].float()).squeeze(-1)

    def _chunks(self, n: int):
        return torch.arange(n, device=self.model.device).split(self.micro_batch)

    # -- a batch of rollouts ----------------------------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, prompts: list[Any]) -> dict:
        """Sample, score and evaluate one batch: ids, masks, old log-probs, values, advantages, returns."""
        s, model = self.settings, self.model
        prompts = [p for p in prompts for _ in range(self.group)]
        enc = encode_prompts(self.processing_class, prompts, model.device)
        model.eval()
        out = model.generate(**enc, do_sample=True, temperature=s.temperature, top_p=s.top_p,
                             max_new_tokens=s.max_new_tokens, use_cache=True,
                             pad_token_id=self.processing_class.pad_token_id)
        n_prompt = enc["input_ids"].shape[1]
        completions = out[:, n_prompt:]
        mask = completion_mask(completions, self.eos_ids)
        ended = sum((completions == eos) for eos in self.eos_ids).bool().any(-1)  # False: cut at max_new_tokens
        attn = torch.cat([enc["attention_mask"], mask], dim=1)
        batch = {"ids": out, "attn": attn, "pos": (attn.cumsum(-1) - 1).clamp(min=0), "n_prompt": n_prompt,
                 "mask": mask, "ended": ended}
        texts = [self.processing_class.decode(c[m.bool()], skip_special_tokens=True) for c, m in zip(completions, mask)]
        scores = self.score(prompts, texts)
        chunks = self._chunks(len(prompts))
        batch["old_logp"] = torch.cat([self.token_logprobs(batch, r) for r in chunks])
        ref = REF if REF in model.peft_config else None
        with self.adapter(ref):
            ref_logp = torch.cat([self.token_logprobs(batch, r) for r in chunks])
        batch["old_values"] = torch.cat([self.values(batch, r) for r in chunks]) * mask
        kl = ppo.kl_k1(batch["old_logp"], ref_logp, mask)
        rewards = ppo.token_rewards(scores, kl, mask, self.kl_control.beta)
        advantages, batch["returns"] = ppo.gae(rewards, batch["old_values"], mask, s.gamma, s.lam)
        batch["advantages"] = ppo.masked_whiten(advantages, mask)
        model.train()
        self._record_rollout(prompts, texts, scores, kl, mask, batch)
        return batch

    def score(self, prompts: list[Any], texts: list[str]):
        """The reward models' summed score per sample; each model's mean goes to rewards/<name>/mean."""
        completions = [[{"role": "assistant", "content": t}] if isinstance(p, list) else t
                       for p, t in zip(prompts, texts)]
        total = torch.zeros(len(texts), device=self.model.device)
        self._per_model = {}
        for i, judge in enumerate(self.judges):
            name = "reward" if len(self.judges) == 1 else f"reward_{i + 1}"
            values = judge.score_many(prompts, completions)
            self._per_model[name] = values
            self._metrics[f"rewards/{name}/mean"].append(mean(values))
            total += torch.tensor(values, device=total.device)
        return total

    def _record_rollout(self, prompts, texts, scores, kl, mask, batch) -> None:
        m, lengths = self._metrics, mask.sum(-1).float()
        m["reward"].append(scores.mean().item())
        m["reward_std"].append(scores.std().item() if len(scores) > 1 else 0.0)
        m["kl"].append(ppo.masked_mean(kl, mask).item())
        m["beta"].append(self.kl_control.beta)
        m["completions/mean_length"].append(lengths.mean().item())
        m["completions/clipped_ratio"].append(1.0 - batch["ended"].float().mean().item())
        m["value_mean"].append(ppo.masked_mean(batch["old_values"], mask).item())
        seq_adv = (batch["advantages"].sum(-1) / lengths.clamp(min=1)).tolist()
        self._latest = {"prompt": prompts, "completion": texts, "rewards": dict(self._per_model),
                        "advantages": seq_adv}
        self.kl_control.update(kl.sum(-1).mean().item(), len(texts))

    # -- the PPO epochs ---------------------------------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None):
        """One PPO iteration; returns the mean loss (the last update's gradients stay for the Trainer's step)."""
        batch = self.rollout(inputs["prompts"])
        s, n = self.settings, batch["ids"].shape[0]
        size = max(1, n // s.num_mini_batches)
        losses = []
        for epoch in range(s.ppo_epochs):
            minibatches = torch.randperm(n, device=model.device).split(size)
            for i, rows in enumerate(minibatches):
                losses.append(self._update(batch, rows))
                if not (epoch == s.ppo_epochs - 1 and i == len(minibatches) - 1):
                    if self.args.max_grad_norm > 0:
                        self._clip_grad_norm(model)
                    self.optimizer.step()
                    self.optimizer.zero_grad()
        return torch.tensor(mean(losses), device=self.args.device)

    def _update(self, batch: dict, rows) -> float:
        """Backward of the PPO loss on one minibatch (in micro-batches); returns the loss."""
        s, total = self.settings, 0.0
        stats = defaultdict(float)
        for micro in rows.split(self.micro_batch):
            weight, mask = len(micro) / len(rows), batch["mask"][micro]
            logp, entropy = self.token_logprobs(batch, micro, with_entropy=True)
            pg, clip = ppo.policy_loss(logp, batch["old_logp"][micro], batch["advantages"][micro], mask, s.cliprange)
            vf, vclip = ppo.value_loss(self.values(batch, micro), batch["old_values"][micro],
                                       batch["returns"][micro], mask, s.cliprange_value)
            loss = (pg + s.vf_coef * vf) * weight
            self.accelerator.backward(loss)
            total += loss.item()
            for key, value in (("policy_loss", pg), ("value_loss", vf), ("clip_fraction", clip),
                               ("value_clip_fraction", vclip), ("entropy", ppo.masked_mean(entropy, mask)),
                               ("approx_kl", 0.5 * ppo.masked_mean((logp.detach() - batch["old_logp"][micro]) ** 2,
                                                                   mask))):
                stats[key] += value.item() * weight
        for key, value in stats.items():
            self._metrics[key].append(value)
        return total

    # -- logging, checkpoints ---------------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._metrics:  # a training-step log (not the end-of-training summary)
            logs.update({key: mean(values) for key, values in self._metrics.items()})
            self._metrics.clear()
            if self.rollouts_path is not None and self.log_samples and self._latest:
                from alignui.training.rlhf import write_rollouts

                write_rollouts(self.rollouts_path, self.state.global_step, self._latest, self.group, self.log_samples)
        super().log(logs, start_time)

    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        if folder.is_dir():
            (folder / PPO_STATE).write_text(json.dumps({"beta": self.kl_control.beta}))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None) -> None:
        """Both adapters' weights and the KL coefficient from a checkpoint (Trainer's own loads one adapter)."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        folder = Path(resume_from_checkpoint)
        for name, sub in ((POLICY, folder), (VALUE, folder / VALUE)):
            set_peft_model_state_dict(self.model, load_file(str(sub / "adapter_model.safetensors")), adapter_name=name)
        if (folder / PPO_STATE).is_file():
            self.kl_control.beta = json.loads((folder / PPO_STATE).read_text())["beta"]

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Checkpoints keep the critic; the final save (the run's adapter/) is the policy adapter alone."""
        if not _internal_call:
            for name in (VALUE, REF):
                if name in self.model.peft_config:
                    self.model.delete_adapter(name)
        super().save_model(output_dir, _internal_call)


def build_ppo_trainer(job, prompts: list[Any], judges: list, callbacks: list):
    """(trainer, tokenizer) for `job` (alignui.training.job.Job) with algorithm=ppo."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl.trainer.utils import disable_dropout_in_model

    from alignui.training.common import check_dtypes, training_arguments
    from alignui.training.rlhf import ROLLOUTS_FILE

    config = job.config
    model, tokenizer = load_models(config, job)
    disable_dropout_in_model(model)  # rollout and update log-probs must agree (ratio 1 at the first update)
    rollout = config.per_device_train_batch_size * config.gradient_accumulation_steps
    kwargs = training_arguments(config, job.run, job.setup, has_eval=False)
    kwargs.update(per_device_train_batch_size=max(1, rollout // config.num_generations), gradient_accumulation_steps=1,
                  remove_unused_columns=False)
    args = TrainingArguments(**kwargs)
    if job.setup.gradient_checkpointing:
        model.enable_input_require_grads()
    trainer = PPOLoraTrainer(model=model, args=args, train_dataset=Dataset.from_dict({"prompt": prompts}),
                             data_collator=lambda rows: {"prompts": [r["prompt"] for r in rows]},
                             processing_class=tokenizer, callbacks=callbacks, settings=config, judges=judges,
                             group=config.num_generations, micro_batch=config.per_device_train_batch_size,
                             rollouts_path=job.run.path / ROLLOUTS_FILE, log_samples=config.log_samples)
    trainer.remove_callback(PrinterCallback)  # RunCallback prints one readable line per log event instead
    set_trainable(trainer.model)
    check_dtypes(trainer.model, job.setup, args)
    return trainer, tokenizer
