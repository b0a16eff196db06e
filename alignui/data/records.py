"""Shapes and checks shared by every import format: rows with their position, pairs, prompts, field checks.

Owns: `Row` (a source row and where it sits, e.g. "line 9000"), `Pair` and
`PromptItem` (what a format converts rows into), `Converted` (the pairs or
prompts plus what was skipped and why), and `Checker`, which validates one
field of one row and raises SourceError naming the file, the line, what was
wrong and what to do.

Invariants:
- A SourceError always means nothing was imported (checks run before any write).
- Texts handed on are non-empty strings of at most `max_chars` characters;
  messages are lists of {role, content} with role system/user/assistant.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from alignui.errors import UserError

from alignui.vocab import Messages  # noqa: E402  (the one definition)
ROLES = ("system", "user", "assistant")
MAX_FIELD_CHARS = 100_000


class SourceError(UserError):
    """The source cannot be imported as it is; the message names the place and the fix. Nothing was written."""


class Row(NamedTuple):
    """One source row and where it sits (a NamedTuple: 100k of them are made per 100k-row file)."""

    where: str  # "line 12", "row 3", "item 4", "train row 7"
    data: dict[str, Any]


@dataclass(frozen=True)
class Pair:
    prompt: Messages
    chosen: str
    rejected: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptItem:
    messages: Messages
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Converted:
    """A format's output: pairs, prompts or ratings (prompt, completion, desirable: TRL's unpaired rows), rows
    skipped (with reasons), and source items that are not pairs."""

    pairs: list[Pair] = field(default_factory=list)
    prompts: list[PromptItem] = field(default_factory=list)
    ratings: list[tuple[Messages, str, bool]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    excluded: Counter = field(default_factory=Counter)


def clean_meta(value: Any) -> Any:
    """JSON-safe copy of a metadata value: NaN/inf become None, tuples lists, other objects strings."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): clean_meta(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_meta(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return clean_meta(value.item())
    return str(value)


def extra_meta(data: dict[str, Any], used: set[str]) -> dict[str, Any]:
    """The columns a format does not consume, kept as metadata (scores, ratings, ids)."""
    return {k: clean_meta(v) for k, v in data.items() if k not in used}


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "true/false", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__)


@dataclass(frozen=True)
class Checker:
    """Validates fields of rows from one source (`label` is the file name or dataset id)."""

    label: str
    max_chars: int = MAX_FIELD_CHARS

    def fail(self, row: Row | str, problem: str, fix: str = "fix that row (or drop it) and import again") -> None:
        where = row.where if isinstance(row, Row) else row
        raise SourceError(f"{self.label}, {where}: {problem}; {fix} (nothing was imported)")

    def _string(self, row: Row, name: str, value: Any) -> str:
        if value is None:
            self.fail(row, f"'{name}' is empty (null)", f"every row needs a non-empty '{name}'; fill it or drop the row")
        if not isinstance(value, str):
            self.fail(row, f"'{name}' must be text, got {_type_name(value)}")
        if not value.strip():
            self.fail(row, f"'{name}' is an empty string", f"every row needs a non-empty '{name}'; fill it or drop "
                                                           "the row")
        if len(value) > self.max_chars:
            self.fail(row, f"'{name}' holds {len(value):,} characters, more than the limit of {self.max_chars:,}",
                      "shorten or drop that row")
        return value

    def _ok(self, value: Any) -> bool:
        """The fast path of _string (checked for every field of every row): a non-blank, short enough str."""
        return type(value) is str and bool(value) and not value.isspace() and len(value) <= self.max_chars

    def text(self, row: Row, key: str) -> str:
        value = row.data.get(key)
        return value if self._ok(value) else self._string(row, key, value)

    def messages(self, row: Row, key: str, value: Any = None) -> Messages:
        value = row.data.get(key) if value is None else value
        if not isinstance(value, list) or not value:
            self.fail(row, f"'{key}' must be a non-empty list of {{role, content}} messages, got {_type_name(value)}")
        out = []
        for i, msg in enumerate(value):
            if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
                self.fail(row, f"message {i + 1} of '{key}' is not a {{role, content}} object")
            role, content = msg["role"], msg["content"]
            if role not in ROLES:
                self.fail(row, f"message {i + 1} of '{key}' has role {role!r}", f"use one of {', '.join(ROLES)}")
            if not self._ok(content):
                if content is not None and not isinstance(content, str):
                    self.fail(row, f"message {i + 1} of '{key}' has {_type_name(content)} content, not text",
                              "only text messages can be imported")
                self._string(row, f"{key}[{i}].content", content)
            out.append({"role": role, "content": content})
        return out

    def text_or_messages(self, row: Row, key: str) -> str | Messages:
        """A field that TRL allows either as a plain string or as a conversational message list."""
        value = row.data.get(key)
        if self._ok(value):
            return value
        if isinstance(value, list):
            return self.messages(row, key, value)
        return self._string(row, key, value)


def maybe_json_list(value: Any) -> Any:
    """A CSV cell holding a JSON list of messages, decoded (CSV has no nested types); anything else as is."""
    if isinstance(value, str) and value.startswith("[") and value.rstrip().endswith("]"):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, list) and decoded and all(isinstance(m, dict) and "role" in m for m in decoded):
            return decoded
    return value
