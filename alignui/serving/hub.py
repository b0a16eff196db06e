"""Offline or online, decided once: one short probe of the Hugging Face Hub, and what that means for the model.

Owns:
- `HubAccess`: the answer to "can this process reach the Hub?", probed at most once (one HTTP request with a
  short timeout; HF_HUB_OFFLINE / --offline answer without any request) and remembered by whoever holds it
  (the AppContext for the app, the job for a training command). No retries: transformers' own retry loop is
  never reached offline, because offline loads pass local_files_only.
- `choose_model(...)`: the one rule `serve` and `train` share for "what model do we use": the demo model, a
  local path, a hub id (cached-only when offline), or, offline with the hub id not cached, the demo model
  with a notice that says why.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from alignui.config import DEMO_MODEL

PROBE_TIMEOUT_S = 2.0


def probe_hub(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """One HEAD request to the Hub; any HTTP answer (even an error status) means it is reachable."""
    try:
        with urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


@dataclass
class HubAccess:
    """Whether the Hub is reachable, asked once (thread-safe) and then remembered."""

    endpoint: str = "https://huggingface.co"
    offline: bool = False  # HF_HUB_OFFLINE / ALIGNUI_OFFLINE: answer False without a request
    _answer: bool | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def of(cls, config) -> "HubAccess":
        return cls(endpoint=config.hf_endpoint, offline=config.offline)

    def reachable(self) -> bool:
        with self._lock:
            if self._answer is None:
                self._answer = False if self.offline else probe_hub(self.endpoint)
            return self._answer

    @property
    def why_not(self) -> str:
        return "offline mode is on" if self.offline else "the Hugging Face Hub could not be reached"


def is_cached(repo_id: str) -> bool:
    """True when the hub model's config is in the local Hugging Face cache (no request made)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an id that is not a valid repo id is not cached either
        return False


@dataclass(frozen=True)
class ModelChoice:
    """What to load: `source` is 'demo', a local path or a hub id; `local_only` forbids any download."""

    source: str
    local_only: bool = False
    notice: str | None = None

    @property
    def is_demo(self) -> bool:
        return self.source == DEMO_MODEL


def choose_model(model: str, hub: HubAccess) -> ModelChoice:
    """The shared rule of `serve` and `train` (probes the hub only for a hub id)."""
    if model == DEMO_MODEL:
        return ModelChoice(DEMO_MODEL)
    local = Path(model).expanduser()
    if local.exists():
        return ModelChoice(str(local.resolve()), local_only=True)
    if hub.reachable():
        return ModelChoice(model)
    if is_cached(model):
        return ModelChoice(model, local_only=True)
    return ModelChoice(DEMO_MODEL, notice=fallback_notice(model, hub.why_not))


def fallback_notice(model: str, why: str) -> str:
    return (f"Could not load {model} ({why} and it is not cached): using the built-in demo model instead. "
            "Pass --model with a local path to use your own.")
