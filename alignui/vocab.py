"""The shared vocabulary: the conversation type, the verdict names and their labels, defined once.

Invariants: every module that stores, shows or checks a verdict takes the names from here; a verdict
typed by a person or an API caller goes through `normalize_verdict` (case and surrounding blanks do not
matter, anything else is refused with the list of accepted names).
"""

from __future__ import annotations

from alignui.errors import UserError, quoted

Messages = list[dict[str, str]]

ANONYMOUS = "anonymous"  # the name of a caller who is neither signed in nor typed a name

VERDICTS = ("a", "b", "tie", "both_bad", "skip")        # what an annotation vote may say
ARENA_VERDICTS = ("a", "b", "tie", "both_bad")          # an arena vote (and a gold answer) cannot skip

BUTTON_LABELS = {"a": "A is better", "b": "B is better", "tie": "Tie", "both_bad": "Both bad", "skip": "Skip"}
SAVED_LABELS = {"a": "A is better", "b": "B is better", "tie": "tie", "both_bad": "both bad", "skip": "skipped"}
SHORT_NAMES = {"a": "A better", "b": "B better", "tie": "tie", "both_bad": "both bad", "skip": "skip"}


def user_turn(prompt: str, system: str | None = None) -> Messages:
    """A one-turn conversation: the optional system prompt, then the user's prompt."""
    messages = [{"role": "system", "content": system}] if system and system.strip() else []
    return messages + [{"role": "user", "content": prompt}]


def last_user_turn(messages: Messages) -> str:
    """The content of the last user turn of `messages` ("" when there is none): what lists show as the prompt."""
    return next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")


def normalize_verdict(value: object, allowed: tuple[str, ...] = VERDICTS) -> str:
    """'A ', 'b', 'Both_Bad' -> the stored name; a non-string or unknown verdict is a UserError."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in allowed:
        raise UserError(f"verdict must be one of {', '.join(allowed)}; got {quoted(value)}")
    return text
