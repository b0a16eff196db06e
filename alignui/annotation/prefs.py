"""An annotator's generation settings: sampling for both sides, a system prompt, auto-advance, and which
generator answers each side (by name, as /models lists them; checked when a pair is generated).

Owns: the AnnotationPrefs dataclass (defaults, help text, validation), its
plain-dict form (what the browser remembers per session, via gr.BrowserState)
and the PairSettings it turns into. Reading a remembered dict never fails:
unknown keys are dropped and a stale or broken dict falls back to defaults,
so an old browser cannot lock anyone out.

Also owns the secret that gr.BrowserState encrypts those values with: made
once per data root and kept in the settings table, so that what a browser
remembers stays readable after the app restarts (Gradio's default is a new
random secret per process).
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field, fields

from alignui.db import Store
from alignui.errors import UserError
from alignui.serving.generation import PairSettings, SamplingSettings

MAX_SYSTEM_CHARS = 4000
SECRET_KEY = "browser_state_secret"


@dataclass(frozen=True)
class AnnotationPrefs:
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature (0 = greedy)"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling mass, in (0, 1]"})
    max_new_tokens: int = field(default=128, metadata={"help": "longest response, in tokens"})
    system_prompt: str = field(default="", metadata={"help": "prepended as a system message (empty: none)"})
    temperature_b: float | None = field(default=None, metadata={
        "help": "a different temperature for side B (None: same as A), to compare sampling settings"})
    auto_next: bool = field(default=True, metadata={"help": "after a verdict, draw and generate the next pool prompt"})
    model_a: str = field(default="", metadata={"help": "generator of side A by name ('' = the served model)"})
    model_b: str = field(default="", metadata={"help": "generator of side B by name ('' = the served model)"})

    def __post_init__(self):
        object.__setattr__(self, "max_new_tokens", int(self.max_new_tokens))
        object.__setattr__(self, "system_prompt", (self.system_prompt or "").strip())
        object.__setattr__(self, "model_a", str(self.model_a or "").strip())
        object.__setattr__(self, "model_b", str(self.model_b or "").strip())
        if len(self.system_prompt) > MAX_SYSTEM_CHARS:
            raise UserError(f"the system prompt is {len(self.system_prompt)} characters; keep it under "
                            f"{MAX_SYSTEM_CHARS}")
        self.pair_settings()  # validates every sampling value with SamplingSettings' messages

    def pair_settings(self, seed: int = 0) -> PairSettings:
        side_a = SamplingSettings(temperature=float(self.temperature), top_p=float(self.top_p),
                                  max_new_tokens=self.max_new_tokens)
        side_b = None if self.temperature_b is None else SamplingSettings(
            temperature=float(self.temperature_b), top_p=float(self.top_p), max_new_tokens=self.max_new_tokens)
        return PairSettings(a=side_a, b=side_b, seed=seed)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "AnnotationPrefs":
        """Prefs from a remembered dict; defaults for anything missing, unknown or invalid."""
        if not isinstance(data, dict):
            return cls()
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (UserError, TypeError, ValueError):
            return cls()


def browser_secret(store: Store) -> str:
    """The data root's secret for gr.BrowserState (created on first use)."""
    return store.setting_or_create(SECRET_KEY, lambda: secrets.token_urlsafe(24))
