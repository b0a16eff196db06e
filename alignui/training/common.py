"""What every training method shares: the device/dtype decision, loading the base model, LoRA, lengths.

Owns:
- `resolve_setup(config)`: device, dtype and gradient checkpointing for this machine. The dtype follows the
  device (alignui.serving.loading.pick_dtype: bf16 on CUDA that supports it, fp16 on older GPUs, fp32 on CPU) and
  the Trainer's autocast is set to the same dtype, so base weights, LoRA compute and autocast always agree
  (the seed's "expected scalar type BFloat16 but found Float" cannot arise). 4-bit is refused without CUDA.
- `load_base(...)`: the base model + tokenizer (alignui.serving.loading.load_pretrained; QLoRA prepared with PEFT's
  prepare_model_for_kbit_training). The model is loaded ONCE: with LoRA the reference policy is the same
  model with adapters disabled (TRL's behaviour when given a peft_config), never a second copy.
- `lora_config`, `training_arguments` (the TrainingArguments kwargs every method shares),
  `keep_prompt_end` (prompt truncation that keeps the latest turns; alignui.training.trl_internals applies it
  inside TRL's tokenization), `pair_token_lengths` (what TRL will tokenize, for the pre-flight report).

No gradio, no duckdb: jobs read snapshots from disk (alignui.data.snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from alignui.config import DEMO_MODEL, ENDPOINT_PREFIX, config_from, needs_local_weights
from alignui.errors import UserError
from alignui.serving.loading import load_pretrained, pick_device, pick_dtype, quantization_config
from alignui.training.config import TrainConfig
from alignui.runs import RunDir


@dataclass(frozen=True)
class Setup:
    """How a job runs on this machine (decided once, before anything is loaded)."""

    device: str
    dtype: Any  # torch.dtype
    quantized: bool
    gradient_checkpointing: bool

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).replace("torch.", "") + (" (4-bit NF4 base)" if self.quantized else "")


def resolve_setup(config: TrainConfig) -> Setup:
    """Device, dtype and gradient checkpointing for `config` here; refuses what this machine cannot do."""
    device = pick_device(config.device)
    dtype = pick_dtype(device)
    if config.load_in_4bit:
        quantization_config(device, dtype)  # raises a UserError without CUDA or bitsandbytes
    checkpointing = config.gradient_checkpointing if config.gradient_checkpointing is not None else device == "cuda"
    return Setup(device=device, dtype=dtype, quantized=config.load_in_4bit, gradient_checkpointing=checkpointing)


class LocalWeightsNeeded(UserError):
    """The base model would be an endpoint (`--model endpoint:NAME`): training needs weights on this machine."""


def _local_weights_needed(model: str) -> LocalWeightsNeeded:
    """The refusal for an endpoint as base model, naming the endpoint's model where this environment registers
    it (ALIGNUI_ENDPOINTS; an app started with --endpoint flags knows it, its jobs may not)."""
    try:
        endpoints = config_from(None, team=False).endpoints
    except ValueError:  # a ConfigError in the environment: the refusal stands without the model's id
        endpoints = ()
    spec = next((e for e in endpoints if ENDPOINT_PREFIX + e.name == model), None)
    return LocalWeightsNeeded(needs_local_weights(model, spec))


def resolve_base_model(base_model: str, storage: Path, log: Callable[[str], None] = print) -> str:
    """A loadable reference: 'demo' = the built-in model (built once per machine, in the cache), a local path
    (made absolute), or a hub id as given. '' = what `serve` would serve here, by the same rule
    (alignui.serving.hub.choose_model): ALIGNUI_MODEL or its default, or, offline with that not cached, the
    demo model; the log says which and why. An endpoint (`endpoint:NAME`, given or served) is refused with
    LocalWeightsNeeded, never replaced by the demo model."""
    from alignui.serving.demo_model import ensure_demo_model
    from alignui.serving.hub import HubAccess, choose_model

    name = base_model.strip()
    if name.startswith(ENDPOINT_PREFIX):
        raise _local_weights_needed(name)
    app = config_from(None, team=False)  # the model settings only, read where the environment is read
    if not name and app.served_endpoint is not None:
        raise _local_weights_needed(app.model)
    if not name:
        choice = choose_model(app.model, HubAccess.of(app))
        name = choice.source
        log(f"alignui: base model: {choice.notice or name} (what `serve` would serve here; "
            "pass --set base_model=... to choose)")
    if name == DEMO_MODEL:
        return str(ensure_demo_model(app.demo_model_dir, log=log).resolve())
    local = Path(name).expanduser()
    return str(local.resolve()) if local.exists() else name


def load_tokenizer(base: str):
    from transformers import AutoTokenizer

    from alignui.serving.loading import prepare_tokenizer

    try:
        return prepare_tokenizer(AutoTokenizer.from_pretrained(base))
    except (OSError, ValueError) as exc:
        raise UserError(f"could not load the tokenizer of {base} ({type(exc).__name__}: {str(exc)[:200]}); "
                        "pass --set base_model=<local path> or 'demo'") from exc


def load_base(config: TrainConfig, base: str, setup: Setup):
    """(model, tokenizer) for training; the model is on `setup.device` in `setup.dtype` (or 4-bit)."""
    try:
        model, tokenizer, dtype = load_pretrained(base, setup.device, four_bit=setup.quantized)
    except (OSError, ValueError) as exc:
        raise UserError(f"could not load the base model {base} ({type(exc).__name__}: {str(exc)[:200]}); "
                        "pass --set base_model=<local path> or 'demo'") from exc
    assert dtype == setup.dtype, (dtype, setup.dtype)
    if setup.quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=setup.gradient_checkpointing)
    model.config.use_cache = False  # the KV cache is useless in training and conflicts with checkpointing
    return model, tokenizer


def lora_config(config: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules(), bias="none", task_type="CAUSAL_LM")


def start_adapter(model, config, storage: Path):
    """(model, peft_config) for a trainer: a fresh LoRA from our config, or (the config's init_adapter, see
    config.AdapterStart) the given adapter loaded as the trainable one (PEFT is_trainable=True); a trainer with
    a reference (DPO, KTO) then copies it as its frozen "ref" adapter."""
    start = config.init_adapter.strip()
    if not start:
        return model, lora_config(config)
    from peft import PeftModel

    from alignui.training.rlhf import resolve_adapter  # the same run-id-or-path rule as the RL stage's

    return PeftModel.from_pretrained(model, str(resolve_adapter(storage, start)), is_trainable=True), None


def training_arguments(config: TrainConfig, run: RunDir, setup: Setup, *, has_eval: bool) -> dict[str, Any]:
    """TrainingArguments kwargs every method shares (method configs add their own on top)."""
    import torch

    from alignui.training.tracking import record, tracking_arguments

    record(config.report_to, run)
    evaluate_steps = has_eval and config.eval_steps > 0
    return dict(
        output_dir=str(run.checkpoints_dir),
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio of the total steps
        lr_scheduler_type=config.lr_scheduler_type,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy="steps" if evaluate_steps else "no",
        eval_steps=config.eval_steps if evaluate_steps else None,
        # autocast in exactly the dtype the base was loaded in (fp32 on CPU: no autocast at all)
        bf16=setup.dtype == torch.bfloat16,
        fp16=setup.dtype == torch.float16,
        use_cpu=setup.device == "cpu",
        gradient_checkpointing=setup.gradient_checkpointing,
        **tracking_arguments(config.report_to, run),  # report_to (+ run_name, project) and where it writes
        disable_tqdm=True,
        dataloader_num_workers=0,
        # LoRA uses every trainable weight each step: no extra autograd traversal under DDP (transformers' PEFT default)
        ddp_find_unused_parameters=False if config.num_processes > 1 else None,
    )


def fix_trainable_dtype(model, setup: Setup) -> None:
    """QLoRA on an fp16-only GPU: TRL casts LoRA weights to bf16 (the QLoRA paper's choice), which such a GPU
    cannot autocast with; keep them as fp32 master weights under fp16 autocast instead."""
    import torch

    if setup.quantized and setup.dtype == torch.float16:
        for p in model.parameters():
            if p.requires_grad and p.dtype == torch.bfloat16:
                p.data = p.data.float()


def check_dtypes(model, setup: Setup, args) -> None:
    """Refuse to start when weights and autocast disagree (the seed's BFloat16-vs-Float crash, caught early).

    Trainable (LoRA) weights may be fp32 master copies; every other floating weight must be in the setup's
    dtype, and any non-fp32 weight requires autocast in that same dtype.
    """
    import torch

    floats = {p.dtype for p in model.parameters() if p.is_floating_point()}
    allowed = {setup.dtype, torch.float32}
    if not floats <= allowed:
        raise RuntimeError(f"weights in {sorted(map(str, floats))} but this run computes in {setup.dtype}")
    if floats - {torch.float32}:
        autocast = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None
        if autocast != setup.dtype:
            raise RuntimeError(f"{setup.dtype} weights need {setup.dtype} autocast, got {autocast}")


def keep_prompt_end(ids: list[int], limit: int | None, keep_first: int | None = None) -> list[int]:
    """The last `limit` prompt tokens (the latest turns matter most), keeping a leading BOS token if any."""
    if limit is None or len(ids) <= limit:
        return list(ids)
    if keep_first is not None and ids and ids[0] == keep_first and limit > 1:
        return [ids[0]] + list(ids[-(limit - 1):])
    return list(ids[-limit:])


def _tokenize(tokenizer, messages_or_text, *, generation_prompt: bool) -> list[int]:
    if isinstance(messages_or_text, str):
        return tokenizer(messages_or_text, add_special_tokens=False)["input_ids"]
    return tokenizer.apply_chat_template(messages_or_text, add_generation_prompt=generation_prompt, tokenize=True,
                                         return_dict=True)["input_ids"]


def pair_token_lengths(tokenizer, row: dict[str, Any]) -> tuple[int, int, int]:
    """(prompt, chosen, rejected) token counts the way TRL's DPO tokenizes a row (chat template or plain)."""
    prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    if isinstance(prompt, str):
        eos = tokenizer.eos_token or ""
        p = _tokenize(tokenizer, prompt, generation_prompt=False)
        c = _tokenize(tokenizer, prompt + chosen + eos, generation_prompt=False)
        r = _tokenize(tokenizer, prompt + rejected + eos, generation_prompt=False)
    else:
        p = _tokenize(tokenizer, prompt, generation_prompt=True)
        c = _tokenize(tokenizer, prompt + chosen, generation_prompt=False)
        r = _tokenize(tokenizer, prompt + rejected, generation_prompt=False)
    return len(p), max(0, len(c) - len(p)), max(0, len(r) - len(p))


def trainable_state(model) -> dict[str, Any]:
    """A detached copy of the trainable parameters (to show that training moved them)."""
    return {n: p.detach().float().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def parameter_change(before: dict, after: dict) -> float:
    """Relative L2 change of the trainable weights between two `trainable_state`s (0 = nothing moved)."""
    import torch

    num = sum(float(torch.linalg.vector_norm(after[k] - before[k]) ** 2) for k in before)
    den = sum(float(torch.linalg.vector_norm(before[k]) ** 2) for k in before) or 1.0
    return (num / den) ** 0.5


def train_and_measure(job, trainer, callback) -> tuple[dict[str, Any], float]:
    """Run `trainer` for `job` (resuming from its checkpoint if any) and return (train metrics, how far the
    trainable weights moved); raises JobCancelled when the run was stopped (a checkpoint is saved by then).
    On CUDA the metrics include the peak GPU memory of the training loop."""
    import time

    import torch

    from alignui.training.job import JobCancelled

    before = trainable_state(trainer.model)
    cuda = job.setup.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    cpu_started = time.process_time()
    result = trainer.train(resume_from_checkpoint=str(job.resume_from) if job.resume_from else None)
    metrics = {**result.metrics, "train_cpu_seconds": time.process_time() - cpu_started}  # load-proof speed
    if cuda:
        metrics["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2 ** 30
    if callback.stopped_at is not None or job.stop.is_set():
        raise JobCancelled(f"run {job.run.id} cancelled at step {trainer.state.global_step} with a checkpoint "
                           "saved: Resume continues from there")
    return metrics, parameter_change(before, trainable_state(trainer.model))


def run_snapshot_job(job, build_trainer: Callable, finish: Callable) -> dict[str, Any]:
    """The shape of every snapshot-trained method (DPO, reward model, SFT): load the snapshot, build the trainer
    with alignui's callback, train (resumable, cancellable), then `finish(job, trainer, tokenizer, data,
    train_metrics=, moved=)` evaluates, saves and returns the run's summary."""
    from alignui.data.snapshot import load_snapshot
    from alignui.training.metrics import RunCallback
    from alignui.training.ranks import synced_stop

    data = load_snapshot(job.snapshot)
    callback = RunCallback(job.run, should_stop=synced_stop(job.stop.is_set), log=job.log)
    job.run.update_status(phase="loading model")
    trainer, tokenizer = build_trainer(job, data, [callback])
    job.check_stop("while loading")
    job.run.update_status(phase="training")
    train_metrics, moved = train_and_measure(job, trainer, callback)
    return finish(job, trainer, tokenizer, data, train_metrics=train_metrics, moved=moved)
