"""Plain prompt lists: prompts for the pool the Annotate tab draws from (no responses, no verdicts).

Owns: reading one prompt per row from the first column present among
PROMPT_COLUMNS (a string becomes one user message; a message list is kept up
to its last user turn, so an SFT-style `messages` column works too), and a
.txt file read as one prompt per line. Other columns are kept as metadata.
"""

from __future__ import annotations

from alignui.data.records import Checker, Converted, PromptItem, Row, extra_meta

NAME = "prompts"
REQUIRED = ("prompt",)
PROMPT_COLUMNS = ("prompt", "messages", "instruction", "question", "query", "text")
DESCRIPTION = "prompt list: one prompt per row in a 'prompt' column (or a .txt file, one per line)"


def matches(columns: list[str], first: dict) -> bool:
    """Auto-detection is strict (TRL's prompt-only columns); --format prompts also accepts PROMPT_COLUMNS."""
    return not {"chosen", "rejected"} & set(columns) and ("prompt" in columns or "messages" in columns)


def accepts(columns: list[str]) -> bool:
    return any(c in columns for c in PROMPT_COLUMNS)


def convert(rows: list[Row], check: Checker) -> Converted:
    out = Converted()
    for row in rows:
        key = next((c for c in PROMPT_COLUMNS if c in row.data), None)
        if key is None:
            check.fail(row, f"no prompt column (one of {', '.join(PROMPT_COLUMNS)})")
        value = check.text_or_messages(row, key)
        messages = [{"role": "user", "content": value}] if isinstance(value, str) else value
        last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
        if last_user is None:
            check.fail(row, f"'{key}' has no user message")
        out.prompts.append(PromptItem(messages[:last_user + 1], extra_meta(row.data, {key})))
    return out
