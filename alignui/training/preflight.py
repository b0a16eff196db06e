"""The pre-flight report: what a run will see before it starts, and a refusal when it cannot work.

Owns: counting rows, measuring how many pairs `max_length` / `max_prompt_length` cut (and how many lose
their WHOLE response), estimating memory for the chosen model, precision and batch, and the list of
refusals (4-bit without CUDA, a model that does not fit, no usable pairs, ...). It needs the tokenizer and
the model's config only: weights are never loaded (the model is built on the meta device to count its
parameters), so the web process can run it before launching a job, and the job runs it again first thing.

The memory figure is an estimate (weights + LoRA weights/gradients/Adam states + activations + the reference
pass where the method has one + 20%), good to tell "fits comfortably" from "will not fit", not to the last MiB.
With LoRA the reference is the same weights with adapters off, so it costs no second model, only a no-grad
forward per step (its logits are the big part); reference-free methods (ORPO, SimPO) count one model and no
reference pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from alignui.errors import UserError
from alignui.training.common import LocalWeightsNeeded, Setup, load_tokenizer, pair_token_lengths, resolve_base_model, resolve_setup
from alignui.training.config import TrainConfig
from alignui.training import speedups, vllm_rollouts
from alignui.training.launch import check_processes

#: Rows tokenized for the length statistics; larger snapshots are measured on an even spread of rows.
MAX_MEASURED_ROWS = 2000
GIB = 1024 ** 3


@dataclass
class PreflightReport:
    rows: int = 0
    test_rows: int = 0
    measured_rows: int = 0
    prompt_truncated: int = 0  # prompts longer than max_prompt_length (their end is kept)
    truncated: int = 0  # pairs whose prompt + longer response exceed max_length (the response end is cut)
    lost_whole: int = 0  # pairs whose prompt alone fills max_length: no response token survives
    longest_pair: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    n_params: int | None = None
    lora_params: int | None = None
    memory_bytes: int | None = None
    memory_parts: dict[str, int] = field(default_factory=dict)
    reference: str = ""  # how the run holds its reference policy, in words
    available_bytes: int | None = None
    num_processes: int = 1  # training processes (alignui.training.launch)
    engine: str = "single"  # single | DDP | DEEPSPEED | FSDP | ... (accelerate's distributed_type)
    effective_batch: int | None = None  # per-device batch x accumulation x processes
    memory_per_device: int | None = None  # the estimate for one process's device (ZeRO-3/FSDP shard weights)
    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tradeoffs: list[str] = field(default_factory=list)  # what memory/speed settings change (speedups, vllm_rollouts)

    @property
    def ok(self) -> bool:
        return not self.refusals

    def scale(self, count: int) -> int:
        """A count measured on the measured rows, scaled to all rows."""
        return round(count * self.rows / self.measured_rows) if self.measured_rows else 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def raise_if_refused(self) -> None:
        if self.refusals:
            raise UserError("pre-flight refused the run: " + "; ".join(self.refusals))

    def markdown(self) -> str:
        est = "" if self.measured_rows >= self.rows else f" (measured on {self.measured_rows} rows, scaled)"
        lines = [f"**Pre-flight** {'✅ ready' if self.ok else '⛔ refused'}",
                 f"- rows: **{self.rows}** train, **{self.test_rows}** held-out test"]
        if self.measured_rows or self.ok:  # a run refused before any row was measured has no lengths to show
            lines.append(f"- pairs cut at max_length: **{self.scale(self.truncated)}**{est}; losing their whole "
                         f"response: **{self.scale(self.lost_whole)}**; prompts cut to max_prompt_length (end kept): "
                         f"**{self.scale(self.prompt_truncated)}**; longest pair {self.longest_pair} tokens")
        lines.append(f"- device **{self.device}**, precision **{self.dtype}**"
                     + (f"; reference: {self.reference}" if self.reference else ""))
        if self.memory_bytes is not None:
            avail = f" of {self.available_bytes / GIB:.1f} GiB available" if self.available_bytes else ""
            parts = ", ".join(f"{k} {v / GIB:.2f}" for k, v in self.memory_parts.items())
            lines.append(f"- estimated memory **{self.memory_bytes / GIB:.2f} GiB**{avail} ({parts} GiB); "
                         f"{(self.n_params or 0) / 1e6:.1f}M params, {(self.lora_params or 0) / 1e6:.2f}M trainable")
        if self.effective_batch is not None:
            per_device = f"; memory per device **{self.memory_per_device / GIB:.2f} GiB**" \
                if self.memory_per_device is not None else ""
            lines.append(f"- processes **{self.num_processes}** ({self.engine}); effective batch "
                         f"**{self.effective_batch}** (per-device x accumulation x processes){per_device}")
        lines += [f"- ⚙️ {t}" for t in self.tradeoffs]
        lines += [f"- ⛔ {r}" for r in self.refusals] + [f"- ⚠️ {w}" for w in self.warnings]
        return "\n".join(lines)


def measure_lengths(report: PreflightReport, tokenizer, train, config: TrainConfig) -> None:
    """Fill the truncation counts from the token lengths of (an even spread of) the training rows."""
    n = len(train)
    step = max(1, n // MAX_MEASURED_ROWS)
    indices = list(range(0, n, step))[:MAX_MEASURED_ROWS]
    report.measured_rows = len(indices)
    for i in indices:
        row = train[i]
        if "chosen" not in row:  # unpaired (KTO): one completion per row
            row = {"prompt": row["prompt"], "chosen": row["completion"], "rejected": row["completion"]}
        p, c, r = pair_token_lengths(tokenizer, row)
        kept_prompt = p if config.max_prompt_length is None else min(p, config.max_prompt_length)
        report.prompt_truncated += kept_prompt < p
        longest = kept_prompt + max(c, r)
        report.longest_pair = max(report.longest_pair, p + max(c, r))
        report.truncated += longest > config.max_length
        report.lost_whole += kept_prompt >= config.max_length


def model_size(base: str, config: TrainConfig) -> dict[str, int]:
    """Parameter counts from the model's config, built on the meta device (no weights are read)."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(base)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(cfg)
    targets = config.target_modules()
    out_emb = model.get_output_embeddings()
    total = sum(p.numel() for p in model.parameters())
    linear = lora = 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or module is out_emb:
            continue
        linear += module.weight.numel()
        if targets == "all-linear" or name.rsplit(".", 1)[-1] in targets:
            lora += config.lora_r * (module.in_features + module.out_features)
    text = cfg.get_text_config()
    return {"params": total, "linear": linear, "lora": lora, "hidden": int(text.hidden_size),
            "layers": int(text.num_hidden_layers), "vocab": int(text.vocab_size)}


def element_bytes(setup: Setup) -> int:
    """Bytes per weight in the run's precision (fp32 on CPU, bf16/fp16 on a GPU)."""
    return 4 if setup.dtype_name.startswith("float32") else 2


def estimate_memory(size: dict[str, int], config: TrainConfig, setup: Setup) -> dict[str, int]:
    """Bytes by part: weights, LoRA training state (fp32 weights + grads + Adam m, v), activations."""
    elem = element_bytes(setup)
    if setup.quantized:
        weights = size["linear"] * 0.53 + (size["params"] - size["linear"]) * 2  # NF4 + double-quant constants
    else:
        weights = size["params"] * elem
    tokens = config.per_device_train_batch_size * 2 * config.max_length  # chosen and rejected in one batch
    per_layer_full = 17 * tokens * size["hidden"] * elem  # Korthikanti et al.: 34*s*b*h bytes at 16 bits
    if setup.gradient_checkpointing:
        activations = size["layers"] * tokens * size["hidden"] * elem + per_layer_full
    else:
        activations = size["layers"] * per_layer_full
    parts = {"weights": int(weights), "lora+adam": int(size["lora"] * 16), "activations": int(activations)}
    if config.reference_pass():  # no-grad forward of the same weights, adapters off: its fp32 log-probs dominate
        parts["reference pass"] = int(tokens * (size.get("vocab", 0) * 4 + 2 * size["hidden"] * elem))
    parts["overhead"] = int(0.2 * sum(parts.values())) + (512 * 1024 ** 2 if setup.device == "cuda" else 0)
    return parts


def available_memory(device: str) -> int | None:
    """Free memory where the run will live: GPU memory on CUDA, RAM otherwise."""
    if device == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0])
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # psutil comes with accelerate; this is only a fallback
        return None


def resident_models(config: TrainConfig, storage, base: str) -> dict[str, str]:
    """Other models the job holds in memory beside the policy: {label: base model path}.

    RLHF keeps each reward model resident (its own copy of its base, LoRA merged). A reward model that does not
    exist yet (queued behind its own training stage) is counted at the policy base's size, which is what the
    one-click RLHF plan trains it from."""
    from alignui.serving.reward_model import locate, resolve_reward_model

    refs = config.reward_models()
    out = {}
    for i, ref in enumerate(refs):
        label = "reward model" if len(refs) == 1 else f"reward model {i + 1}"
        try:
            out[label] = locate(resolve_reward_model(storage, ref))[1]["base_model_path"]
        except UserError:
            out[label] = base
    return out


def reference_name(config: TrainConfig) -> str:
    """What each step's reference pass runs, in words: none, the base with adapters off, or the frozen copy of
    the adapter the run starts from (config.AdapterStart)."""
    if not config.reference_pass():
        return "none (one model, no reference pass)"
    return config.reference_name()


def preflight(config: TrainConfig, setup: Setup, base: str, tokenizer, data,
              resident: dict[str, str] | None = None) -> PreflightReport:
    """The report for training `base` on `data` (a DatasetDict with train and maybe test) with `config`;
    `resident`: further models held in memory during the run ({label: base path}), counted at full weight."""
    train = data["train"]
    report = PreflightReport(rows=len(train), test_rows=len(data["test"]) if "test" in data else 0,
                             device=setup.device, dtype=setup.dtype_name,
                             reference=reference_name(config))
    if report.rows == 0:
        report.refusals.append("the snapshot has no training rows: collect and export some votes first")
        return report
    report.refusals += config.data_refusals(data)
    if report.refusals:
        return report
    report.warnings += config.data_warnings(data)
    measure_lengths(report, tokenizer, train, config)
    if report.lost_whole >= report.measured_rows:
        report.refusals.append(f"every pair loses its whole response at max_length={config.max_length}: raise "
                               "max_length or set max_prompt_length below it")
    elif report.truncated >= report.measured_rows:
        report.warnings.append(f"every pair is cut at max_length={config.max_length}: the ends of all responses "
                               "are lost (raise max_length if memory allows)")
    elif report.lost_whole:
        report.warnings.append(f"{report.scale(report.lost_whole)} pairs lose their whole response and are skipped")
    if report.test_rows == 0:
        report.warnings.append("the snapshot has no test split: there will be no held-out evaluation "
                               "(export with --test-size 0.1)")
    try:
        size = model_size(base, config)
    except (OSError, ValueError) as exc:
        report.warnings.append(f"could not read the model config of {base} to estimate memory ({exc})")
        return report
    report.n_params, report.lora_params = size["params"], size["lora"]
    report.memory_parts = estimate_memory(size, config, setup)
    for label, path in (resident or {}).items():
        try:
            other = size if path == base else model_size(path, config)
        except (OSError, ValueError) as exc:
            report.warnings.append(f"could not read the config of the {label} ({path}) to count its memory ({exc})")
            continue
        report.memory_parts[label] = int(other["params"] * element_bytes(setup))
    report.memory_bytes = sum(report.memory_parts.values())
    report.available_bytes = available_memory(setup.device)
    if report.available_bytes and report.memory_bytes > report.available_bytes:
        report.refusals.append(
            f"estimated {report.memory_bytes / GIB:.1f} GiB does not fit in the {report.available_bytes / GIB:.1f} "
            f"GiB free on {setup.device}: lower batch size or max_length, turn on gradient checkpointing, or use "
            "4-bit (QLoRA) on a GPU")
    elif report.available_bytes and report.memory_bytes > 0.8 * report.available_bytes:
        report.warnings.append("the estimate is above 80% of free memory: the run may hit out-of-memory")
    return report


def check(config: TrainConfig, storage, snapshot, log=print) -> tuple[PreflightReport, Setup | None, str]:
    """(report, setup or None when refused, resolved base model) for `config` on a snapshot under `storage`.

    A machine that cannot run the config at all (4-bit without CUDA, cuda asked for on a CPU box) becomes a
    refusal in the report; the rest of the report is still filled in as if on CPU, so the user sees it all.
    """
    from alignui.data.snapshot import load_snapshot

    refusals: list[str] = []
    try:
        setup: Setup | None = resolve_setup(config)
    except UserError as exc:
        refusals.append(str(exc))
        setup = None
    data = load_snapshot(snapshot)
    try:
        base = resolve_base_model(config.base_model, storage, log=log)
    except LocalWeightsNeeded as exc:  # --model endpoint:NAME serves no weights: say which local base is needed
        return PreflightReport(rows=len(data["train"]), test_rows=len(data["test"]) if "test" in data else 0,
                               refusals=refusals + [str(exc)]), setup, config.base_model
    report = preflight(config, setup or _cpu_setup(), base, load_tokenizer(base), data,
                       resident=resident_models(config, storage, base))
    report.refusals[:0] = refusals
    check_processes(report, config, setup or _cpu_setup())
    speedups.check(report, config, setup or _cpu_setup())
    vllm_rollouts.check(report, config, setup or _cpu_setup())
    report.warnings += config.warnings()
    return report, setup, base


def _cpu_setup() -> Setup:
    import torch

    return Setup(device="cpu", dtype=torch.float32, quantized=False, gradient_checkpointing=False)
