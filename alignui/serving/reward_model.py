"""The reward model as an automatic judge: load a registered reward model, score responses, compare two.

Owns:
- `RewardJudge.load(path, device)`: a reward model trained by `python -m alignui train reward` (a run
  directory, or its adapter/ directory), loaded as one sequence-classification model: the base weights with
  the reward LoRA merged in, plus the score head. `.score(messages, text) -> float`,
  `.score_many(prompts, texts)`, `.compare(messages, text_a, text_b) -> Judgment` ('a' | 'b' | 'tie').
- `reward_inputs(...)`: how a (prompt, response) becomes the reward model's tokens. It is the ONE place
  for this, used by the judge, by the RL stage's reward function and by the reward run's held-out margins,
  so a response is scored exactly the way the reward model was trained (TRL's RewardTrainer: the chat
  template over prompt + response for conversational data; prompt + response + EOS for plain text).
- `find_reward_models(storage)`: finished reward runs under the data root, newest first (files only, no
  database, so training jobs can use it).

Invariants:
- A judge holds one model: base + merged reward LoRA (+ score head), in the device's dtype. It is a second
  copy of the base weights next to a served or trained policy; `describe()` says so, for the UI.
- Scoring is deterministic (eval mode, no dropout, no sampling). In the web process, call it through
  ModelHandle.submit like all model work (one worker thread, see alignui.serving.loading).
- torch/transformers/peft are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from alignui.errors import NotFoundError, UserError

#: Written next to a reward adapter: what it was trained on, so it is scored the same way.
META_FILE = "alignui_reward.json"
VERDICTS = ("a", "b", "tie")
#: Default tie band: two identical responses can score a few 1e-7 apart in one batch (BLAS kernels per row).
TIE_EPSILON = 1e-4

from alignui.vocab import Messages  # noqa: E402  (the one definition)


@dataclass(frozen=True)
class Judgment:
    verdict: str  # 'a' | 'b' | 'tie'
    score_a: float
    score_b: float

    @property
    def margin(self) -> float:
        return self.score_a - self.score_b

    @property
    def prob_a(self) -> float:
        """P(a is preferred) under the Bradley-Terry model the reward model was trained with."""
        return 1.0 / (1.0 + math.exp(-self.margin))


# -- turning (prompt, response) into reward-model tokens --------------------------------------------------------
def as_messages(prompt: str | Messages) -> Messages:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def response_text(response: str | Messages) -> str:
    if isinstance(response, str):
        return response
    return "".join(str(m.get("content", "")) for m in response if m.get("role", "assistant") == "assistant")


def _plain(prompt: str | Messages) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(str(m.get("content", "")) for m in prompt)


def reward_inputs(tokenizer, prompt: str | Messages, response: str | Messages, *, conversational: bool,
                  max_length: int | None = None) -> list[int]:
    """Token ids of one scored sequence, as TRL's RewardTrainer builds them; too long keeps the END."""
    if conversational:
        conv = as_messages(prompt) + [{"role": "assistant", "content": response_text(response)}]
        ids = tokenizer.apply_chat_template(conv, tokenize=True, return_dict=True)["input_ids"]
    else:
        eos = tokenizer.eos_token or ""
        ids = tokenizer(_plain(prompt) + response_text(response) + eos)["input_ids"]
    ids = list(ids)
    return ids[-max_length:] if max_length and len(ids) > max_length else ids


def score_ids(model, pad_id: int, batch: Sequence[list[int]], device: str) -> list[float]:
    """Reward of each token sequence (right-padded into one batch)."""
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ids in enumerate(batch):
        input_ids[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[i, :len(ids)] = 1
    with torch.inference_mode():
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
    return logits[:, 0].float().tolist()


# -- finding and loading reward models ---------------------------------------------------------------------------
def locate(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """(adapter directory, metadata) of a reward model given its run directory or adapter directory."""
    path = Path(path).expanduser()
    adapter = path / "adapter" if (path / "adapter" / "adapter_config.json").is_file() else path
    if not (adapter / "adapter_config.json").is_file():
        raise NotFoundError(f"{path} holds no reward model (no adapter_config.json): train one with "
                            "`python -m alignui train reward` and pass its run directory")
    meta = _read_json(adapter / META_FILE)
    if meta.get("kind", "reward") != "reward":
        raise UserError(f"{path} is a {meta.get('kind')} adapter, not a reward model")
    lineage = _read_json(adapter.parent / "lineage.json")
    base = meta.get("base_model_path") or lineage.get("base_model_path") or \
        _read_json(adapter / "adapter_config.json").get("base_model_name_or_path")
    if not base:
        raise UserError(f"{adapter} does not say which base model it belongs to (no lineage.json or "
                        "base_model_name_or_path); re-train the reward model")
    return adapter, {"conversational": True, "max_length": 1024, **meta, "base_model_path": str(base),
                     "run_id": meta.get("run_id") or lineage.get("run_id") or adapter.parent.name}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def find_reward_models(storage: str | Path) -> list[Path]:
    """Run directories of finished reward models under the data root, newest first."""
    from alignui.paths import StorageLayout
    from alignui.runs import list_run_dirs

    found = []
    for run in list_run_dirs(StorageLayout(Path(storage))):
        status = run.read_status()
        if status.get("method") == "reward" and status.get("state") == "done" and run.has_adapter:
            found.append(run.path)
    return found


def resolve_reward_model(storage: str | Path, ref: str | None) -> Path:
    """A reward model by run id (under the data root), by path, or the newest finished one."""
    from alignui.paths import StorageLayout, UnsafeNameError

    if not ref:
        found = find_reward_models(storage)
        if not found:
            raise NotFoundError("there is no trained reward model yet: run `python -m alignui train reward` (or the "
                                "Train tab's RLHF method) first")
        return found[0]
    if Path(ref).expanduser().is_dir():
        return Path(ref).expanduser()
    try:
        path = StorageLayout(Path(storage)).run_dir(ref)
    except UnsafeNameError as exc:
        raise NotFoundError(f"no reward model {ref!r}: {exc}") from exc
    if not path.is_dir():
        known = ", ".join(p.name for p in find_reward_models(storage)[:5]) or "none yet"
        raise NotFoundError(f"no reward model {ref!r} under {path.parent} (finished reward runs: {known})")
    state = _read_json(path / "status.json").get("state", "done")
    if state != "done":
        raise NotFoundError(f"reward model run {ref} is {state}, not finished: resume it (Train tab) or train "
                            "a new one, then start the RL stage again")
    return path


def load_reward_model(adapter: Path, base: str, device: str, dtype):
    """(model, tokenizer): the base as a 1-label sequence classifier with the reward LoRA merged in."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl.trainer.reward_trainer import suppress_seqcls_warning

    source = adapter if (adapter / "tokenizer_config.json").is_file() else base
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        with suppress_seqcls_warning():  # the score head comes from the adapter, not the base checkpoint
            model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=dtype)
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    except (OSError, ValueError) as exc:
        raise UserError(f"could not load the reward model {adapter} on {base} ({type(exc).__name__}: "
                        f"{str(exc)[:200]})") from exc
    model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
    model.to(device).eval()
    return model, tokenizer


@dataclass
class RewardJudge:
    """A loaded reward model that scores responses and compares two of them."""

    model: Any
    tokenizer: Any
    device: str
    adapter: Path
    meta: dict[str, Any] = field(default_factory=dict)
    tie_margin: float = TIE_EPSILON
    batch_size: int = 8

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", *, tie_margin: float = TIE_EPSILON,
             batch_size: int = 8) -> "RewardJudge":
        """Load the reward model in a run directory (or adapter directory) onto `device` ('auto' picks)."""
        from alignui.serving.loading import pick_device, pick_dtype

        if tie_margin < 0:
            raise UserError(f"tie_margin must be 0 or more, got {tie_margin}")
        adapter, meta = locate(path)
        device = pick_device(device)
        model, tokenizer = load_reward_model(adapter, meta["base_model_path"], device, pick_dtype(device))
        return cls(model, tokenizer, device, adapter, meta, tie_margin=tie_margin, batch_size=batch_size)

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id", self.adapter.parent.name))

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def describe(self) -> str:
        dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        return (f"reward model {self.run_id} (base {Path(self.meta['base_model_path']).name}, "
                f"{self.n_parameters / 1e6:.1f}M params, LoRA merged) on {self.device}, {dtype}")

    def score_many(self, prompts: Sequence[str | Messages], responses: Sequence[str | Messages]) -> list[float]:
        """Reward of each (prompt, response), in order, scored in batches."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        ids = [reward_inputs(self.tokenizer, p, r, conversational=bool(self.meta.get("conversational", True)),
                             max_length=self.meta.get("max_length")) for p, r in zip(prompts, responses)]
        out: list[float] = []
        for start in range(0, len(ids), self.batch_size):
            out += score_ids(self.model, self.tokenizer.pad_token_id, ids[start:start + self.batch_size],
                             self.device)
        return out

    def score(self, messages: str | Messages, text: str | Messages) -> float:
        return self.score_many([messages], [text])[0]

    def compare(self, messages: str | Messages, text_a: str | Messages, text_b: str | Messages) -> Judgment:
        """Which of two responses to one prompt the reward model prefers ('tie' within tie_margin)."""
        a, b = self.score_many([messages, messages], [text_a, text_b])
        verdict = "tie" if abs(a - b) <= self.tie_margin else ("a" if a > b else "b")
        return Judgment(verdict, a, b)

    def reward_function(self):
        """A TRL reward function (prompts, completions -> rewards) that scores exactly like `score_many`."""
        def reward_model(prompts, completions, **kwargs) -> list[float]:
            return self.score_many(prompts, completions)
        return reward_model
