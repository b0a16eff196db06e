"""The built-in offline demo model: a tiny Llama with a byte-level BPE tokenizer.

Owns: building the model deterministically from code (no downloads) once per
machine (under AppConfig.demo_model_dir, in the per-machine cache), reporting
each build step with its progress, and recognising a finished build. The tokenizer is
trained on the bundled synthetic chat corpus (alignui.serving.demo_corpus); the model
is then pre-trained briefly on the same corpus so that its replies read as
short English answers instead of random bytes.

Invariants:
- Same code version and same machine -> byte-identical weights (fixed seeds,
  deterministic data order, deterministic tokenizer training).
- A directory is only ever seen complete: the build happens in a temporary
  sibling and is renamed into place; `build.json` is written last.
- One build at a time per cache (a lock file); a build whose starter is gone
  or cancelled stops (the child checks its parent; cancel kills the child).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from alignui.serving.demo_corpus import chat_corpus

#: Bump when anything below changes the weights or the tokenizer.
DEMO_VERSION = 1

#: progress(step, fraction in 0..1 or None): hears each step of a build.
Progress = Callable[[str, "float | None"], None]


class BuildCancelled(RuntimeError):
    """The app closed while the demo model was being built (nothing was left half-written)."""


CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]


@dataclass(frozen=True)
class DemoSpec:
    """Size and pre-training budget of the demo model (defaults: ~0.3M params, ~40 s on 2 cores)."""

    vocab_size: int = 1024
    hidden_size: int = 96
    intermediate_size: int = 256
    num_layers: int = 2
    num_heads: int = 4
    max_positions: int = 512
    corpus_size: int = 6000
    train_steps: int = 300
    batch_size: int = 24
    seq_len: int = 96
    learning_rate: float = 3e-3
    seed: int = 0


def is_built(path: Path) -> bool:
    info = path / "build.json"
    if not info.is_file():
        return False
    try:
        return json.loads(info.read_text()).get("version") == DEMO_VERSION
    except (OSError, json.JSONDecodeError):
        return False


def ensure_demo_model(path: Path, spec: DemoSpec = DemoSpec(), log=print, progress: Progress | None = None,
                      cancel: threading.Event | None = None) -> Path:
    """Return `path` holding a finished demo model, building it first if needed.

    `progress(step, fraction)` hears each build step; `cancel` set stops the build (the child is killed) with
    BuildCancelled. Processes sharing one cache take turns through a lock file: the second one waits, then
    finds the model built."""
    path = Path(path)
    progress = progress or (lambda step, fraction=None: None)
    if is_built(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(path.parent / ".demo-build.lock", progress, cancel):
        if is_built(path):  # another process built it while this one waited
            return path
        log(f"alignui: building the offline demo model under {path} (once per machine: about a minute on "
            "2 idle cores, up to ~18 minutes measured on a busy shared 2-core host; the web page shows progress)")
        tmp = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=path.parent))
        try:
            started = time.time()
            _build_in_subprocess(tmp, spec, progress, cancel)
            digest = hashlib.sha256((tmp / "model.safetensors").read_bytes()).hexdigest()
            info = {"version": DEMO_VERSION, "spec": asdict(spec), "weights_sha256": digest,
                    "build_seconds": round(time.time() - started, 2)}
            (tmp / "build.json").write_text(json.dumps(info, indent=2))
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"alignui: demo model ready ({info['build_seconds']} s)")
    return path


@contextlib.contextmanager
def _build_lock(lock_path: Path, progress: Progress, cancel: threading.Event | None):
    """An exclusive flock on `lock_path`, polled so that a wait reports itself and can be cancelled."""
    import fcntl

    with open(lock_path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                progress("waiting for another process that is building the demo model", None)
                if cancel is not None and cancel.wait(0.5):
                    raise BuildCancelled("the demo model build was cancelled") from None
                if cancel is None:
                    time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_in_subprocess(out: Path, spec: DemoSpec, progress: Progress, cancel: threading.Event | None) -> None:
    """Build in a child process: pre-training leaves this process's OpenMP thread team behind, and on
    a 2-core machine its spinning slowed later generation on the model worker thread ~3x (measured).
    The child reports "PROGRESS <fraction> <step>" lines on stdout and exits if this process goes away."""
    cmd = [sys.executable, "-m", "alignui.serving.demo_model", str(out), json.dumps(asdict(spec)), str(os.getpid())]
    root = str(Path(__file__).resolve().parents[2])  # the child finds alignui from any working directory
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
        try:
            _follow_progress(proc, progress, cancel)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        if cancel is not None and cancel.is_set():
            raise BuildCancelled("the demo model build was cancelled")
        if proc.returncode != 0:
            errors.seek(0)
            tail = "\n".join(errors.read().strip().splitlines()[-5:])
            raise RuntimeError(f"building the demo model failed (exit {proc.returncode}):\n{tail}")


def _follow_progress(proc: subprocess.Popen, progress: Progress, cancel: threading.Event | None) -> None:
    """Relay the child's PROGRESS lines until it exits (or `cancel` is set: then return at once)."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            if cancel is not None and cancel.is_set():
                return
            if not sel.select(timeout=0.2):
                if proc.poll() is not None:
                    return
                continue
            line = proc.stdout.readline()
            if not line:
                return
            if line.startswith("PROGRESS "):
                _, fraction, step = line.rstrip("\n").split(" ", 2)
                progress(step, float(fraction))


def _report(step: str, fraction: float) -> None:
    """In the build child: one progress line for the parent (see _follow_progress)."""
    print(f"PROGRESS {fraction:.3f} {step}", flush=True)


def _orphaned(parent_pid: int | None) -> bool:
    """True once the process that started this build is gone (the child then stops instead of finishing)."""
    return parent_pid is not None and os.getppid() != parent_pid


def _train_tokenizer(texts: list[str], spec: DemoSpec):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|end|>", pad_token="<|pad|>",
        chat_template=CHAT_TEMPLATE, model_max_length=spec.max_positions)


def _pretrain(model, ids: list[int], spec: DemoSpec, parent_pid: int | None = None) -> None:
    """Next-token pre-training on random windows of the packed corpus."""
    import torch

    rng = random.Random(spec.seed)
    data = torch.tensor(ids, dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec.learning_rate, total_steps=spec.train_steps,
                                                pct_start=0.1)
    model.train()
    for step in range(spec.train_steps):
        if step % 10 == 0:
            if _orphaned(parent_pid):
                sys.exit("the process that started the demo model build is gone")
            _report(f"pre-training on the bundled corpus (step {step}/{spec.train_steps})",
                    0.15 + 0.8 * step / spec.train_steps)
        starts = [rng.randrange(0, len(ids) - spec.seq_len - 1) for _ in range(spec.batch_size)]
        batch = torch.stack([data[s:s + spec.seq_len] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    model.eval()


def build_demo_model(out: Path, spec: DemoSpec = DemoSpec(), parent_pid: int | None = None) -> None:
    """Build tokenizer + model into `out` (files: model.safetensors, config.json, tokenizer files)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    _report("writing the synthetic chat corpus", 0.0)
    convs = chat_corpus(spec.corpus_size, seed=spec.seed)
    _report("training the byte-level BPE tokenizer", 0.05)
    tokenizer = _train_tokenizer([_render(c) for c in convs[:2000]], spec)
    _report("tokenising the corpus", 0.1)
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in convs]
    ids = [i for t in texts for i in tokenizer(t, add_special_tokens=False)["input_ids"]]
    end_id = tokenizer.convert_tokens_to_ids("<|end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|pad|>")
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads, max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True, bos_token_id=None, eos_token_id=end_id, pad_token_id=pad_id)
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    _pretrain(model, ids, spec, parent_pid)
    _report("saving the model", 0.97)
    model.generation_config = GenerationConfig(
        do_sample=True, temperature=0.8, top_p=0.95, max_new_tokens=64, eos_token_id=end_id, pad_token_id=pad_id)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _render(conv: list[dict[str, str]]) -> str:
    """Plain text of a conversation, for tokenizer training (template markers are special tokens)."""
    return "\n".join(m["content"] for m in conv)


if __name__ == "__main__":  # the child process of _build_in_subprocess
    build_demo_model(Path(sys.argv[1]), DemoSpec(**json.loads(sys.argv[2])),
                     int(sys.argv[3]) if len(sys.argv) > 3 else None)
