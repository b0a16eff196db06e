"""TRL's preference format: prompt/chosen/rejected as plain strings or conversational message lists.

Owns: the explicit-prompt form ({"prompt", "chosen", "rejected"}), the
implicit-prompt form ({"chosen", "rejected"} sharing a prefix, which becomes
the prompt, by the rule of trl.data_utils.extract_prompt), and `to_pair`,
which the other formats reuse to reduce a row to one prompt conversation
plus one chosen and one rejected assistant reply.

Invariants: a plain-string prompt becomes one user message; a completion
given as messages must come down to exactly one assistant message once the
prompt's messages are removed from its front.
"""

from __future__ import annotations

from alignui.data.records import Checker, Converted, Messages, Pair, Row, extra_meta

NAME = "trl"
REQUIRED = ("chosen", "rejected")
DESCRIPTION = "TRL preference format: prompt, chosen, rejected (strings or message lists; prompt may be implicit)"


def matches(columns: list[str], first: dict) -> bool:
    return {"chosen", "rejected"} <= set(columns)


def shared_prefix(chosen: str, rejected: str) -> int:
    """Where the implicit prompt ends: trl.data_utils.extract_prompt's rule (first differing character, minus
    the space before it), re-stated because importing trl pulls in torch (~8 s) for one loop."""
    n = min(len(chosen), len(rejected))
    for i in range(n):
        if chosen[i] != rejected[i]:
            return i - 1 if i > 0 and chosen[i - 1] == " " else i
    return n


def _split_implicit(chosen, rejected, row: Row, check: Checker):
    if isinstance(chosen, str) != isinstance(rejected, str):
        check.fail(row, "'chosen' and 'rejected' must both be strings or both be message lists")
    if isinstance(chosen, str):
        cut = shared_prefix(chosen, rejected)
        return chosen[:cut], chosen[cut:], rejected[cut:]
    cut = 0
    while cut < min(len(chosen), len(rejected)) and chosen[cut] == rejected[cut]:
        cut += 1
    return chosen[:cut], chosen[cut:], rejected[cut:]


def _reply(completion, prompt: Messages, key: str, row: Row, check: Checker) -> str:
    """The one assistant reply in a completion (a string, or messages that may repeat the prompt first)."""
    if isinstance(completion, str):
        return completion
    if completion[:len(prompt)] == prompt and len(completion) > len(prompt):
        completion = completion[len(prompt):]
    if len(completion) != 1 or completion[0]["role"] != "assistant":
        roles = "/".join(m["role"] for m in completion) or "nothing"
        check.fail(row, f"'{key}' must come down to one assistant reply after the prompt, but holds {roles}",
                   "alignui stores one reply per side; split multi-reply rows or drop them")
    return completion[0]["content"]


def to_pair(prompt, chosen, rejected, row: Row, check: Checker, meta: dict, out: Converted) -> None:
    """Append the pair (prompt str|messages|None=implicit) to `out`, or count why it is skipped."""
    if prompt is None:
        if chosen == rejected:
            out.skipped["chosen equals rejected"] += 1
            return
        prompt, chosen, rejected = _split_implicit(chosen, rejected, row, check)
        if not prompt or (isinstance(prompt, str) and not prompt.strip()):
            check.fail(row, "'chosen' and 'rejected' share no prompt and there is no 'prompt' column",
                       "add a 'prompt' column (or --map prompt=COLUMN)")
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    if not any(m["role"] == "user" for m in messages):
        check.fail(row, "the prompt has no user message")
    if isinstance(chosen, (str, list)) and not chosen:
        out.skipped["empty reply"] += 1
        return
    good, bad = _reply(chosen, messages, "chosen", row, check), _reply(rejected, messages, "rejected", row, check)
    if not good.strip() or not bad.strip():
        out.skipped["empty reply"] += 1
    elif good == bad:
        out.skipped["chosen equals rejected"] += 1
    else:
        out.pairs.append(Pair(messages, good, bad, meta))


def convert(rows: list[Row], check: Checker) -> Converted:
    out = Converted()
    for row in rows:
        prompt = check.text_or_messages(row, "prompt") if "prompt" in row.data else None
        chosen, rejected = check.text_or_messages(row, "chosen"), check.text_or_messages(row, "rejected")
        to_pair(prompt, chosen, rejected, row, check, extra_meta(row.data, {"prompt", "chosen", "rejected"}), out)
    return out
