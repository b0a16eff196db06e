"""OpenAssistant/oasst1 message trees: preference pairs among ranked sibling replies.

Owns: the flat form of the hub dataset (one message per row: message_id,
parent_id, role 'prompter'|'assistant', text, rank, deleted, ...) and the
nested "trees" export (a row per tree whose "prompt" message holds "replies").

Pairs: for every prompter message, its assistant replies that carry a rank
are compared pairwise; the lower rank is preferred (rank 0 is the best), so n
ranked siblings give n*(n-1)/2 pairs (equal ranks give none). The prompt is
the whole conversation from the root down to that prompter message
(prompter -> user, assistant -> assistant).

Excluded (reported, not errors): deleted messages and everything under
them, replies without a rank, and messages whose parent is not in the source.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

from alignui.data.records import Checker, Converted, Messages, Pair, Row, clean_meta

NAME = "oasst"
REQUIRED = ("message_id", "parent_id", "role", "text")
DESCRIPTION = "OpenAssistant oasst1 messages: message_id, parent_id, role, text, rank, deleted"
_ROLE = {"prompter": "user", "assistant": "assistant"}
_META = ("message_tree_id", "lang")


def matches(columns: list[str], first: dict) -> bool:
    return set(REQUIRED) <= set(columns) or (isinstance(first.get("prompt"), dict) and "message_tree_id" in columns)


def _flatten_trees(rows: list[Row]) -> list[Row]:
    """The nested trees export as flat message rows (each reply gets its parent's id)."""
    flat = []
    for row in rows:
        stack = [(row.data.get("prompt"), None)]
        while stack:
            node, parent = stack.pop()
            if not isinstance(node, dict):
                flat.append(Row(row.where, {"message_id": None}))  # fails the checks below with this row's place
                continue
            flat.append(Row(row.where, {**{k: v for k, v in node.items() if k != "replies"}, "parent_id": parent,
                                        "message_tree_id": row.data.get("message_tree_id")}))
            stack.extend((reply, node.get("message_id")) for reply in reversed(node.get("replies") or []))
    return flat


def _check(row: Row, check: Checker) -> dict:
    data = row.data
    msg_id = data.get("message_id")
    if not isinstance(msg_id, str) or not msg_id:
        check.fail(row, "'message_id' must be a non-empty string")
    if data.get("role") not in _ROLE:
        check.fail(row, f"'role' must be 'prompter' or 'assistant', got {data.get('role')!r}")
    parent, rank = data.get("parent_id"), data.get("rank")
    if parent is not None and not isinstance(parent, str):
        check.fail(row, "'parent_id' must be a string or null")
    if isinstance(rank, float) and rank != rank:  # NaN from a parquet/pandas column
        rank = None
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, (int, float))):
        check.fail(row, f"'rank' must be a number or null, got {rank!r}")
    deleted = data.get("deleted")
    if deleted not in (None, True, False, "true", "false", "True", "False", 0, 1):
        check.fail(row, f"'deleted' must be true or false, got {deleted!r}")
    return {**data, "text": check.text(row, "text"), "rank": rank,
            "deleted": deleted in (True, "true", "True", 1), "parent_id": parent or None}


def _conversation(msg_id: str, by_id: dict, cache: dict) -> Messages | None:
    """Root-to-message conversation, or None if a message on the way is deleted or missing."""
    if msg_id in cache:
        return cache[msg_id]
    path, node = [], by_id.get(msg_id)
    while node is not None and not node["deleted"]:
        path.append({"role": _ROLE[node["role"]], "content": node["text"]})
        if node["parent_id"] is None:
            cache[msg_id] = list(reversed(path))
            return cache[msg_id]
        node = by_id.get(node["parent_id"])
    cache[msg_id] = None
    return None


def convert(rows: list[Row], check: Checker) -> Converted:
    if rows and "message_id" not in rows[0].data and isinstance(rows[0].data.get("prompt"), dict):
        rows = _flatten_trees(rows)
    out = Converted()
    by_id: dict[str, dict] = {}
    for row in rows:
        msg = _check(row, check)
        if msg["message_id"] in by_id:
            check.fail(row, f"message_id {msg['message_id']!r} appears twice", "keep one row per message")
        by_id[msg["message_id"]] = msg
    children: dict[str, list[dict]] = defaultdict(list)
    for msg in by_id.values():
        if msg["deleted"]:
            out.excluded["deleted messages"] += 1
        elif msg["parent_id"] is not None and msg["parent_id"] not in by_id:
            out.excluded["messages whose parent is not in the source"] += 1
        elif msg["parent_id"] is not None:
            children[msg["parent_id"]].append(msg)
    cache: dict[str, Messages | None] = {}
    for parent_id, replies in children.items():
        parent = by_id[parent_id]
        if parent["role"] != "prompter":
            continue
        prompt = _conversation(parent_id, by_id, cache)
        replies = [r for r in replies if r["role"] == "assistant"]
        if prompt is None:
            out.excluded["replies under a deleted message"] += len(replies)
            continue
        ranked = sorted((r for r in replies if r["rank"] is not None), key=lambda r: (r["rank"], r["message_id"]))
        out.excluded["replies without a rank"] += len(replies) - len(ranked)
        for good, bad in combinations(ranked, 2):
            if good["rank"] == bad["rank"]:
                out.skipped["equal ranks"] += 1
            elif good["text"] == bad["text"]:
                out.skipped["chosen equals rejected"] += 1
            else:
                meta = {k: clean_meta(parent.get(k)) for k in _META if parent.get(k) is not None}
                meta.update(chosen_id=good["message_id"], rejected_id=bad["message_id"],
                            chosen_rank=good["rank"], rejected_rank=bad["rank"])
                out.pairs.append(Pair(prompt, good["text"], bad["text"], meta))
    return out
