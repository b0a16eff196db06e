"""Loading the base model and tokenizer: device, dtype, 4-bit, and the offline demo fallback.

Owns: `load_model(config)` -> ModelHandle. A hub id or local path is tried
first (alignui.serving.hub.choose_model: the Hub is probed once, offline loads
are cached-only); with no hub access and nothing cached, the built-in demo
model is built once per machine (AppConfig.demo_model_dir) and served
instead, with a notice for the UI. alignui.serving.loader runs this in the
background so that the web page answers at once.

Invariants:
- dtype follows the device: bf16 on CUDA when supported, else fp16; fp32 on
  CPU and MPS. One dtype for the whole model, so LoRA weights created later
  match the base (the "expected scalar type BFloat16" error cannot arise).
- 4-bit is refused without CUDA, with a message that says so; without CUDA,
  bitsandbytes is never imported (skip_bitsandbytes_without_cuda).
- The tokenizer always has a pad token and pads on the left (batched generation).
- `--model endpoint:NAME` loads nothing (alignui.serving.remote): the handle's model, tokenizer and dtype are
  None and `handle.endpoint` answers instead.
- On CPU the served model's linear layers run a paired decode step one row per core where that
  measures faster here (alignui.serving.cpu_decode); training loads its own, unswitched copy.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from alignui.config import DEMO_MODEL, AppConfig
from alignui.errors import UserError
from alignui.serving.demo_model import Progress, ensure_demo_model
from alignui.serving.hub import HubAccess, choose_model, fallback_notice

if TYPE_CHECKING:
    from alignui.serving.adapters import AdapterServer


@dataclass
class ModelHandle:
    """The one loaded base model.

    All model work runs on `executor`, one long-lived worker thread: on CPU every thread that runs
    torch ops gets its own OpenMP team, and idle teams spin on the same cores, which made a pair
    generated on a fresh thread per request ~3x slower (measured on 2 cores). Hold `lock` while
    switching adapters or generating.
    """

    model: Any
    tokenizer: Any
    ref: str
    device: str
    dtype: Any
    is_demo: bool = False
    quantized: bool = False
    notice: str | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    #: The AdapterServer (alignui.serving.adapters) once the arena has loaded adapters into this model; None before.
    adapters: "AdapterServer | None" = field(default=None, repr=False)
    #: Whether the linear layers run a decode step's rows on separate cores (recorded with each generation).
    batch_parallel: bool = False
    #: The threads torch was given for this model (AppConfig.cpu_threads); 0: torch's default, one per core.
    cpu_threads: int = 0
    #: Whether concurrent generations share decode steps (alignui.serving.scheduler; AppConfig.batching).
    batching: bool = True
    #: The BatchScheduler, made on first batched generation (alignui.serving.scheduler.batch_scheduler).
    scheduler: Any = field(default=None, repr=False)
    #: `--decode-process`: the DecodeProcess (alignui.serving.decode_process) that decodes the base model's batched
    #: rows in a child process; None otherwise.
    decoder: Any = field(default=None, repr=False)
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="alignui-model"), repr=False)
    #: `--model endpoint:NAME`: the Endpoint (alignui.serving.endpoints) that is the served model; then `model`,
    #: `tokenizer` and `dtype` are None (no local weights: alignui.serving.remote).
    endpoint: Any = field(default=None, repr=False)

    @property
    def remote(self) -> bool:
        """True when the served model is an endpoint: nothing runs here, no adapters, no local tokenizer."""
        return self.endpoint is not None

    def submit(self, fn: Callable[..., Any], *args, **kwargs) -> Future:
        """Run `fn` on the model's worker thread (serialised with all other model work)."""
        return self.executor.submit(fn, *args, **kwargs)

    def close(self) -> None:
        """Stop the worker thread (after the work already queued on it); batched requests still waiting or
        decoding fail with a message instead of waiting forever."""
        if self.decoder is not None:
            self.decoder.close()
        if self.scheduler is not None:
            self.scheduler.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        if self.scheduler is not None:
            self.scheduler.fail_running()

    @property
    def context_length(self) -> int:
        if self.remote:  # the endpoint knows its own context; it refuses a prompt that does not fit
            raise UserError(f"{self.ref} is served by an endpoint: its context length is not known here")
        n = getattr(self.model.config, "max_position_embeddings", None) or self.tokenizer.model_max_length
        return int(min(n, 1_000_000))

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def describe(self) -> str:
        if self.remote:
            spec = self.endpoint.spec
            return f"{self.ref} ({spec.model} at {spec.base_url}; no local weights)"
        kind = "built-in demo model" if self.is_demo else self.ref
        dtype = str(self.dtype).replace("torch.", "") + (" 4-bit" if self.quantized else "")
        decoder = "" if self.decoder is None else (
            ", decode steps in their own process" if self.decoder.serving else
            f", decode steps back in this process ({self.decoder.stopped_why})")
        return f"{kind} ({self.n_parameters / 1e6:.1f}M params) on {self.device}, {dtype}{decoder}"


def pick_device(preference: str = "auto") -> str:
    import torch

    if preference == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu")
    if preference != "auto":
        return preference
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str):
    """bf16 on CUDA that supports it, fp16 on older CUDA GPUs, fp32 elsewhere."""
    import torch

    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def quantization_config(device: str, dtype):
    """A bitsandbytes 4-bit (NF4) config, or a clear refusal where it cannot run."""
    if device != "cuda":
        raise UserError("4-bit loading needs a CUDA GPU and this machine has none; "
                        "drop --load-in-4bit (ALIGNUI_4BIT) to load in full precision")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise UserError("4-bit loading needs bitsandbytes: pip install bitsandbytes") from exc
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype)


def prepare_tokenizer(tokenizer):
    """Left padding and a pad token, which batched generation needs."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_pretrained(source: str | Path, device: str, *, four_bit: bool = False, local_only: bool = False):
    """(model, tokenizer, dtype) from a hub id or local directory, placed on `device`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = pick_dtype(device)
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": local_only}
    if four_bit:
        kwargs["quantization_config"] = quantization_config(device, dtype)
        kwargs["device_map"] = {"": 0}
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(str(source), local_files_only=local_only))
    model = AutoModelForCausalLM.from_pretrained(str(source), **kwargs)
    if not four_bit:
        model.to(device)
    model.eval()
    return model, tokenizer, dtype


def skip_bitsandbytes_without_cuda() -> None:
    """Keep bitsandbytes unimported where it cannot run: PEFT imports it whenever it is installed, and on a
    machine without CUDA its import prints a CPU "kernels" warning on every start (4-bit is refused there
    anyway, by quantization_config). A `None` entry in sys.modules makes `find_spec`/`import` report it
    absent (PEFT and transformers then skip it)."""
    import sys

    import torch

    if not torch.cuda.is_available() and "bitsandbytes" not in sys.modules:
        sys.modules["bitsandbytes"] = None  # type: ignore[assignment]


def _no_progress(step: str, fraction: float | None = None) -> None:
    return None


def load_model(config: AppConfig, log: Callable[[str], None] = print, *, progress: Progress = _no_progress,
               cancel: threading.Event | None = None, hub: HubAccess | None = None) -> ModelHandle:
    """The configured model, or the demo model with a notice when the hub cannot be reached.

    `progress(step, fraction)` hears each step (the demo build's own steps included); `cancel` stops a demo
    build; `hub` is the process's remembered answer to "is the Hub reachable" (probed here once if None)."""
    if config.served_endpoint is not None:  # --model endpoint:NAME: nothing to load (alignui.serving.remote)
        from alignui.serving.remote import endpoint_handle

        return endpoint_handle(config, log)
    skip_bitsandbytes_without_cuda()
    progress("choosing the device", None)
    device = pick_device(config.device)
    if config.load_in_4bit:
        quantization_config(device, pick_dtype(device))  # refuse early, before any download
    progress(f"checking whether {config.model} can be loaded", None)
    choice = choose_model(config.model, hub or HubAccess.of(config))
    if choice.is_demo:
        if choice.notice:
            log(f"alignui: {choice.notice}")
        return _serving(_demo_handle(config, device, log, progress, cancel, notice=choice.notice), config, log)
    progress(f"loading {config.model}", None)
    try:
        model, tok, dtype = load_pretrained(choice.source, device, four_bit=config.load_in_4bit,
                                            local_only=choice.local_only)
    except (OSError, ValueError) as exc:
        if Path(config.model).expanduser().exists():
            raise
        notice = fallback_notice(config.model, "it could not be loaded")
        log(f"alignui: {notice} [{type(exc).__name__}: {str(exc)[:200]}]")
        return _serving(_demo_handle(config, device, log, progress, cancel, notice=notice), config, log)
    ref = choice.source if choice.local_only and Path(choice.source).exists() else config.model
    handle = ModelHandle(model, tok, ref, device, dtype, quantized=config.load_in_4bit)
    return _serving(handle, config, log)


def _serving(handle: ModelHandle, config: AppConfig, log: Callable[[str], None]) -> ModelHandle:
    """On CPU: the model's thread count (AppConfig.cpu_threads), and, when asked (--cpu-batch-parallel), a paired
    generation's two rows on two cores.

    Explicit settings, not a start-up measurement: a micro-benchmark at start let host noise pick the kernel
    (both give the same outputs; only speed differs, and only on some hosts: bench/pair_generation.py)."""
    import torch

    from alignui.serving.cpu_decode import use_batch_parallel

    handle.batching = config.batching
    threads = cpu_threads(config, handle)
    if threads:
        # On the worker thread, where all model work runs: torch keeps a thread count per thread (OpenMP's) and
        # gives a thread, at its first torch op, the count last set anywhere, which is then set back to this one's.
        before = torch.get_num_threads()
        handle.submit(_set_own_threads, threads).result()
        torch.set_num_threads(before)
        handle.cpu_threads = threads
        why = "--cpu-threads" if config.cpu_threads else "its steps are too small to split; --cpu-threads N to change"
        log(f"alignui: the model runs on {threads} CPU thread{'s' if threads > 1 else ''} ({why})")
    if config.cpu_batch_parallel and handle.device == "cpu":
        handle.submit(use_batch_parallel, handle.model).result()
        handle.batch_parallel = True
        log("alignui: paired decoding runs one response per CPU core (--cpu-batch-parallel)")
    if config.decode_process:
        _start_decoder(handle, config, log)
    return handle


def _start_decoder(handle: ModelHandle, config: AppConfig, log: Callable[[str], None]) -> None:
    """--decode-process: a child process decodes the shared steps (alignui.serving.decode_process), where it can."""
    from alignui.serving.decode_process import DecodeProcess
    from alignui.serving.kv_batch import supports_joining

    if handle.device != "cpu":
        log(f"alignui: --decode-process is for CPU hosts (it holds a second copy of the weights); on "
            f"{handle.device} the decode steps stay in the web process")
    elif not config.batching or not supports_joining(handle.model.config):
        log("alignui: --decode-process needs shared decode steps (batching on, a full-attention model); ignored")
    else:
        try:  # the child loads what this process loaded: the demo model when it was the fallback, else the same ref
            handle.decoder = DecodeProcess(replace(config, model=DEMO_MODEL if handle.is_demo else handle.ref), log,
                                           adapter_paths=lambda: handle.adapters.paths() if handle.adapters else {})
        except Exception as exc:  # noqa: BLE001 - no process could be started here: serve without one
            log(f"alignui: --decode-process could not start its process ({type(exc).__name__}: {exc}); the decode "
                "steps stay in the web process")


def _set_own_threads(n: int) -> None:
    import torch

    torch.get_num_threads()  # this thread's first torch call takes the shared count; after it, its own stays
    torch.set_num_threads(n)


def cpu_threads(config: AppConfig, handle: ModelHandle) -> int:
    """Threads torch gets for the served model (0: leave torch's default, one per core).

    The demo model gets one: its decode step is ~500 tiny ops, too small for a second thread to speed up, and the
    idle second OpenMP thread spins on the other core, which the web server needs (bench/cpu_threads.py, 2 cores:
    0.58-0.69x the server CPU per served pair). Other models keep torch's default (on a 26M model two runs of that
    bench disagreed on which is faster), and so does --cpu-batch-parallel, which puts each row on its own core."""
    if handle.device != "cpu":
        return 0
    if config.cpu_threads:
        return config.cpu_threads
    return 1 if handle.is_demo and not config.cpu_batch_parallel else 0


def _demo_handle(config: AppConfig, device: str, log, progress: Progress, cancel: threading.Event | None,
                 notice: str | None) -> ModelHandle:
    def building(step: str, fraction: float | None = None) -> None:
        progress(f"building the demo model (once per machine): {step}", fraction)

    path = ensure_demo_model(config.demo_model_dir, log=log, progress=building, cancel=cancel)
    progress("loading the demo model", 0.98)
    model, tok, dtype = load_pretrained(path, device, local_only=True)
    return ModelHandle(model, tok, DEMO_MODEL, device, dtype, is_demo=True,
                       notice=notice or "Serving the built-in demo model (tiny, offline, trained on a toy corpus).")
