"""TRL's unpaired preference format (KTO): prompt, completion, label (true = desirable / thumbs up).

Owns: recognising it (a 'completion' and a 'label' column beside 'prompt', no chosen/rejected) and turning
each row into one thumbs rating (prompt conversation, assistant reply, desirable). Imported rows land in the
`ratings` table as decided up/down ratings, beside the thumbs collected in the app.

Invariants: a plain-string prompt becomes one user message; a conversational completion must come down to
one assistant reply (trl.py's rule); label is a boolean or one of true/false/1/0/up/down (any case), anything
else fails the import naming the row.
"""

from __future__ import annotations

from alignui.data.records import Checker, Converted, Row
from alignui.data.trl import _reply

NAME = "unpaired"
REQUIRED = ("prompt", "completion", "label")
DESCRIPTION = "TRL unpaired format (KTO, thumbs up/down): prompt, completion, label (true = desirable)"
_LABELS = {"true": True, "1": True, "up": True, "false": False, "0": False, "down": False}


def matches(columns: list[str], first: dict) -> bool:
    return set(REQUIRED) <= set(columns) and not {"chosen", "rejected"} & set(columns)


def _label(value, row: Row, check: Checker) -> bool:
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if key not in _LABELS:
        check.fail(row, f"'label' must be true or false (desirable or not), got {value!r}")
    return _LABELS[key]


def convert(rows: list[Row], check: Checker) -> Converted:
    out = Converted()
    for row in rows:
        prompt = check.text_or_messages(row, "prompt")
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        if not any(m["role"] == "user" for m in messages):
            check.fail(row, "the prompt has no user message")
        reply = _reply(check.text_or_messages(row, "completion"), messages, "completion", row, check)
        desirable = _label(row.data.get("label"), row, check)
        if not reply.strip():
            out.skipped["empty reply"] += 1
            continue
        out.ratings.append((messages, reply, desirable))
    return out
