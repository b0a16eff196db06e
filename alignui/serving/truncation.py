"""The truncation warning, up front: how many pairs exceed max_length tokens for a given tokenizer.

Owns: counting tokens the way a DPO trainer sees a pair (the prompt rendered
with the model's chat template and a generation prompt, then one reply and
an end-of-sequence token) and reporting how many pairs would be cut at
`max_length`, before anyone trains on them.

Invariants: pure (no database, no model weights: a tokenizer is enough);
each distinct prompt is rendered once; a tokenizer without a chat template
falls back to the message texts joined by newlines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def _render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n".join(m["content"] for m in messages) + "\n"


def _lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def truncation_report(tokenizer: Any, prompts: Sequence[list[dict[str, str]]], chosen: Sequence[str],
                      rejected: Sequence[str], max_length: int, *, name: str | None = None) -> dict[str, Any]:
    """{"max_length", "over", "prompt_over", "longest", "tokenizer"} for the pairs given as three columns."""
    keys = [json.dumps(p, sort_keys=True, ensure_ascii=False) for p in prompts]
    unique = dict.fromkeys(keys)
    first = dict(zip(keys, prompts))
    prompt_len = dict(zip(unique, _lengths(tokenizer, [_render(tokenizer, first[k]) for k in unique])))
    good, bad = _lengths(tokenizer, list(chosen)), _lengths(tokenizer, list(rejected))
    totals = [prompt_len[k] + max(g, b) + 1 for k, g, b in zip(keys, good, bad)]  # +1: the EOS the trainer appends
    return {
        "max_length": int(max_length),
        "over": sum(t > max_length for t in totals),
        "prompt_over": sum(prompt_len[k] >= max_length for k in keys),
        "longest": max(totals, default=0),
        "tokenizer": name or getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__,
    }


def load_tokenizer(model: str, demo_dir: Any, *, offline: bool) -> tuple[Any, str | None]:
    """(tokenizer, None) for the configured model, or the demo model's when that is what the app would serve;
    (None, reason) when neither can be loaded without weights or a download."""
    from pathlib import Path

    from transformers import AutoTokenizer

    candidates = [] if model == "demo" else [model]
    candidates.append(str(demo_dir))
    last = None
    for source in candidates:
        local = Path(source).expanduser()
        if source == str(demo_dir) and not (local / "tokenizer_config.json").is_file():
            last = f"the demo model is not built yet under {demo_dir} (start the app once)"
            continue
        try:
            return AutoTokenizer.from_pretrained(source, local_files_only=offline or local.exists()), None
        except (OSError, ValueError) as exc:
            last = f"cannot load the tokenizer of {source} ({type(exc).__name__})"
    return None, last
