"""Typed rows the Store hands out and takes in (plain frozen dataclasses, no database handles).

Owns: the verdict vocabulary and the record shapes shared by annotation, arena,
export and the UI.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alignui.vocab import ARENA_VERDICTS, VERDICTS, Messages, last_user_turn  # noqa: F401  (re-exported)

KINDS = ("annotate", "arena")


def messages_hash(messages: Messages) -> str:
    """Stable content hash of a conversation (role + content only, order kept)."""
    canon = [{"role": m["role"], "content": m["content"]} for m in messages]
    return hashlib.sha256(json.dumps(canon, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class NewGeneration:
    """One response as produced, before it is stored."""

    model_ref: str
    text: str
    params: dict[str, Any] = field(default_factory=dict)
    n_tokens: int | None = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class Prompt:
    id: str
    messages: Messages
    source: str
    split: str
    created_at: datetime

    @property
    def last_user_text(self) -> str:
        return last_user_turn(self.messages)


@dataclass(frozen=True)
class Comparison:
    id: str
    prompt_id: str
    kind: str
    messages: Messages
    text_a: str
    text_b: str
    model_a: str
    model_b: str
    verdict: str | None
    edited_chosen: str | None
    annotator: str | None
    created_at: datetime
    decided_at: datetime | None
    duration_ms: float | None
    gen_a: str = ""
    gen_b: str = ""

    @property
    def chosen_text(self) -> str | None:
        """The preferred response as it will be exported (the edit wins), or None without a winner."""
        if self.verdict not in ("a", "b"):
            return None
        return self.edited_chosen or (self.text_a if self.verdict == "a" else self.text_b)
