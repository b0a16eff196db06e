"""The README.md dataset card of a snapshot, rendered from its manifest.

Owns: the card's text: YAML metadata (tags; on the hub also the `configs`
block that points the dataset viewer at the parquet files), what the data is,
row counts per split, a verdict histogram, what was excluded and why, the
sources, the truncation warning, and how to load it.

Invariant: a pure function of the manifest (same manifest -> same card).
"""

from __future__ import annotations

from typing import Any

_BAR = 30


def _histogram(counts: dict[str, int]) -> list[str]:
    top = max(counts.values(), default=0) or 1
    width = max((len(k) for k in counts), default=0)
    return ["```"] + [f"{k:<{width}}  {'█' * round(_BAR * v / top):<{_BAR}}  {v}" for k, v in counts.items()] + ["```"]


def _yaml(manifest: dict[str, Any], hub: bool) -> list[str]:
    lines = ["---", "tags:", "- alignui", "- preference", "- dpo", "size_categories:", f"- {_size(manifest['rows'])}"]
    if hub:
        lines += ["configs:", "- config_name: default", "  data_files:"]
        for split in ("train", "test"):
            lines += [f"  - split: {split}", f"    path: data/{split}-*"]
    return lines + ["---", ""]


def _size(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "n>1M"


def render_card(manifest: dict[str, Any], *, hub_repo: str | None = None) -> str:
    """The card; with `hub_repo`, the hub variant (viewer configs, load_dataset(repo))."""
    m, hub = manifest, hub_repo is not None
    fmt = ("conversational: `prompt` is a list of {role, content} messages, `chosen` and `rejected` are one "
           "assistant message each" if m["format"] == "conversational" else
           "plain: `prompt`, `chosen` and `rejected` are strings")
    lines = _yaml(m, hub) + [
        f"# alignui preference snapshot `{m['id']}`", "",
        f"Pairwise preference data exported by alignui on {m['created_at']} ({fmt}), ready for TRL's DPOTrainer "
        "and RewardTrainer. This snapshot is immutable; its sha256 (over the canonical rows) is "
        f"`{m['sha256']}`.", "",
        "| split | rows |", "|---|---|", f"| train | {m['train_rows']} |", f"| test | {m['test_rows']} |",
        f"| **total** | **{m['rows']}** |", "",
        f"Test split: {m['test_size']:.0%} of the rows, shuffled with seed {m['seed']}. Kinds: "
        f"{', '.join(m['filters']['kinds'])}; export policy: {m['filters']['policy']}.", "",
        "## Verdicts", "",
        "Every comparison the export looked at (a = the first response won, b = the second):", "",
        *_histogram(m["verdicts"]), "",
        "Only a and b verdicts become pairs (chosen = the winner, edited by the annotator where they edited it). "
        f"Excluded: {', '.join(f'{v} {k}' for k, v in m['excluded'].items() if v) or 'nothing'}.", "",
        "## Sources", "", "| source | pairs |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in m["sources"].items()], ""]
    trunc = m.get("truncation") or {}
    if "over" in trunc:
        lines += ["## Length", "", f"With the tokenizer of `{trunc['tokenizer']}`, **{trunc['over']}** of "
                  f"{m['rows']} pairs exceed max_length={trunc['max_length']} tokens (prompt + the longer reply) and "
                  f"would be truncated in training; {trunc['prompt_over']} prompts alone reach it. Longest pair: "
                  f"{trunc['longest']} tokens.", ""]
    load = f'load_dataset("{hub_repo}")' if hub else f'load_from_disk("{m["id"]}/dataset")'
    lines += ["## Use", "", "```python", "from datasets import load_dataset, load_from_disk", f"data = {load}",
              "```", "", f"or `python -m alignui train dpo --snapshot {m['id']}`.", ""]
    return "\n".join(lines)
