"""UltraFeedback, binarized: HuggingFaceH4/ultrafeedback_binarized and argilla/ultrafeedback-binarized-preferences.

Owns two shapes of the same data:
- H4 (and argilla's "-cleaned" variant): prompt (str), chosen and rejected as
  message lists that start with the user turn, score_chosen/score_rejected
  (or chosen-rating/...), a redundant `messages` column. The prompt
  conversation is the chosen list minus its last (assistant) message.
- argilla: instruction, chosen_response, rejected_response, plus
  chosen_avg_rating, rejected_avg_rating, chosen_model, source.

Scores, ratings, models and ids are kept in the pair's metadata; `messages`
(a copy of chosen) is dropped. Equal replies (rating ties) are skipped.
"""

from __future__ import annotations

from alignui.data.records import Checker, Converted, Row, extra_meta
from alignui.data.trl import to_pair

NAME = "ultrafeedback"
REQUIRED = ("prompt", "chosen", "rejected")
ARGILLA = ("instruction", "chosen_response", "rejected_response")
SCORE_HINTS = {"score_chosen", "score_rejected", "messages", "prompt_id", "chosen-rating", "chosen_rating",
               "chosen_avg_rating", "chosen-model"}
DESCRIPTION = ("UltraFeedback binarized: H4 (prompt, chosen/rejected messages, score_chosen/score_rejected) or "
               "argilla (instruction, chosen_response, rejected_response, ratings)")


def matches(columns: list[str], first: dict) -> bool:
    cols = set(columns)
    return set(ARGILLA) <= cols or ({"chosen", "rejected"} <= cols and bool(cols & SCORE_HINTS))


def required_for(columns: list[str]) -> tuple[str, ...]:
    """The columns this format needs, in the shape the columns look closest to (for error messages)."""
    return ARGILLA if any(c in columns for c in ARGILLA) else REQUIRED


def _h4_prompt(row: Row, check: Checker, chosen, rejected):
    """The prompt conversation: chosen minus its last message when chosen is a conversation, else the prompt text."""
    if isinstance(chosen, list) and len(chosen) > 1 and chosen[-1]["role"] == "assistant":
        prompt = chosen[:-1]
        if not isinstance(rejected, list) or rejected[:-1] != prompt:
            return None
        return prompt
    if "prompt" not in row.data:
        check.fail(row, "'chosen' is not a conversation ending with the assistant reply and there is no 'prompt'",
                   "add a 'prompt' column (or --map prompt=COLUMN)")
    return check.text_or_messages(row, "prompt")


def convert(rows: list[Row], check: Checker) -> Converted:
    out = Converted()
    for row in rows:
        if all(k in row.data for k in ARGILLA):
            prompt = check.text(row, "instruction")
            chosen, rejected = check.text(row, "chosen_response"), check.text(row, "rejected_response")
            meta = extra_meta(row.data, set(ARGILLA))
        else:
            chosen, rejected = check.text_or_messages(row, "chosen"), check.text_or_messages(row, "rejected")
            prompt = _h4_prompt(row, check, chosen, rejected)
            if prompt is None:
                out.skipped["prompts of chosen and rejected differ"] += 1
                continue
            if isinstance(prompt, list):
                chosen, rejected = chosen[-1:], rejected[-1:]
            meta = extra_meta(row.data, {"prompt", "chosen", "rejected", "messages"})
        to_pair(prompt, chosen, rejected, row, check, meta, out)
    return out
