"""Import and export summaries as readable lines (the Data tab showed them as raw JSON).

Owns: `import_lines(summary)` and `export_lines(summary)`: the summary dicts of alignui.data.importer /
alignui.data.export (the CLI's JSON contract, unchanged) turned into short plain-text lines with the numbers.
Invariant: plain text only (no markdown, no HTML): a file name or a reason is user text, and the UI escapes
each line (alignui.ui.common.md_text).
"""

from __future__ import annotations

from typing import Any

EXCLUDED_NAMES = {"tie": "ties", "both_bad": "both bad", "skip": "skipped", "pending": "not yet voted",
                  "deleted": "deleted", "by_policy": "dropped by the several-votes policy", "arena": "arena votes"}


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def import_lines(s: dict[str, Any]) -> list[str]:
    kind = "prompt" if s.get("kind") == "prompts" else "pair"
    lines = [f"Imported {_plural(int(s.get('imported', 0)), kind)} from {s.get('source', '?')} "
             f"(format {s.get('format', '?')}, {s.get('rows', 0):,} rows read"
             + (f", split {s['split']}" if s.get("split") else "") + ")."]
    reasons = s.get("reasons") or {}
    if s.get("skipped"):
        why = "; ".join(f"{n:,} {reason.replace('_', ' ')}" for reason, n in reasons.items())
        lines.append(f"Skipped {_plural(int(s['skipped']), 'row')}" + (f": {why}." if why else "."))
    else:
        lines.append("Nothing was skipped.")
    if s.get("excluded"):
        lines.append("Left out: " + "; ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in s["excluded"].items()) + ".")
    if s.get("import_id"):
        lines.append(f"Import id {s['import_id']}.")
    return lines


def export_lines(s: dict[str, Any]) -> list[str]:
    lines = [f"Snapshot {s['snapshot']}: {_plural(int(s['rows']), 'pair')} "
             f"({s.get('train_rows', s['rows'] - s.get('test_rows', 0)):,} train, {s.get('test_rows', 0):,} test).",
             f"Written to {s['path']}" + (f" (sha256 {str(s['sha256'])[:12]}…)." if s.get("sha256") else ".")]
    left_out = [f"{n:,} {EXCLUDED_NAMES.get(k, k)}" for k, n in (s.get("excluded") or {}).items() if n]
    lines.append("Left out: " + "; ".join(left_out) + "." if left_out else "Nothing was left out.")
    if s.get("over_max_length"):
        lines.append(f"{_plural(int(s['over_max_length']), 'pair')} longer than max_length tokens (training "
                     "truncates them).")
    if s.get("pushed"):
        lines.append(f"Pushed to {s['pushed']}.")
    if s.get("push_error"):
        lines.append(f"Not pushed: {s['push_error']}")
    return lines
