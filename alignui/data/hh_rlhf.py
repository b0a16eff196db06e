"""Anthropic/hh-rlhf: chosen and rejected are whole transcripts of "\\n\\nHuman: ..." / "\\n\\nAssistant: ..." turns.

Owns: parsing a transcript into messages. The prompt is every turn before the
last assistant reply (multi-turn conversations stay messages); the chosen and
rejected replies are the last assistant turns of the two transcripts.

Skipped (counted, not errors, because the public dataset holds such rows):
transcripts whose turns differ before the last reply, an empty last reply,
and identical replies. A transcript with no turns at all is an error.
"""

from __future__ import annotations

import re

from alignui.data.records import Checker, Converted, Messages, Pair, Row, extra_meta
from alignui.data.trl import matches as _has_pair_columns

NAME = "hh-rlhf"
REQUIRED = ("chosen", "rejected")
DESCRIPTION = "Anthropic hh-rlhf: chosen and rejected transcripts with \\n\\nHuman: / \\n\\nAssistant: turns"
_TURN = re.compile(r"(?:\A\s*|\n\n)(Human|Assistant):[ \t]?")
_ROLE = {"Human": "user", "Assistant": "assistant"}


def matches(columns: list[str], first: dict) -> bool:
    value = first.get("chosen")
    return (_has_pair_columns(columns, first) and "prompt" not in columns and isinstance(value, str)
            and "Human:" in value and "Assistant:" in value)


def parse_transcript(text: str) -> Messages | None:
    """The transcript's turns as messages, or None when it has no Human/Assistant turns."""
    parts = _TURN.split(text)
    if len(parts) < 3 or parts[0].strip():
        return None
    return [{"role": _ROLE[parts[i]], "content": parts[i + 1].strip()} for i in range(1, len(parts) - 1, 2)]


def _split(text: str, key: str, row: Row, check: Checker) -> tuple[Messages, str]:
    turns = parse_transcript(text)
    if turns is None:
        check.fail(row, f"'{key}' is not an hh-rlhf transcript (no \"\\n\\nHuman:\" / \"\\n\\nAssistant:\" turns)",
                   "use --format trl for prompt/chosen/rejected columns")
    if turns[-1]["role"] != "assistant":
        check.fail(row, f"'{key}' does not end with an Assistant reply")
    return turns[:-1], turns[-1]["content"]


def convert(rows: list[Row], check: Checker) -> Converted:
    out = Converted()
    for row in rows:
        prompt, good = _split(check.text(row, "chosen"), "chosen", row, check)
        other, bad = _split(check.text(row, "rejected"), "rejected", row, check)
        if not prompt or not any(m["role"] == "user" and m["content"] for m in prompt):
            check.fail(row, "the transcript has no Human turn before the last Assistant reply")
        if other != prompt:
            out.skipped["transcripts differ before the last reply"] += 1
        elif not good or not bad:
            out.skipped["empty reply"] += 1
        elif good == bad:
            out.skipped["chosen equals rejected"] += 1
        elif any(not m["content"] for m in prompt):
            out.skipped["empty turn in the prompt"] += 1
        else:
            out.pairs.append(Pair(prompt, good, bad, extra_meta(row.data, {"chosen", "rejected"})))
    return out
