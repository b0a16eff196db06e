"""Column mapping (`--map prompt=question,chosen=good,rejected=bad`) and the friendly missing-columns error.

Owns: parsing a mapping (new=old pairs), renaming a source's columns by it,
and the error for a file whose columns do not fit: which columns were found,
which are needed, and the exact --map that would fix it when the column names
suggest one (e.g. question/good/bad).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from alignui.data.readers import SourceData
from alignui.data.records import Row, SourceError

MAP_EXAMPLE = "--map prompt=question,chosen=good,rejected=bad"
# Column names people use for each role; a name containing one of these words counts as a match.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt", "question", "instruction", "input", "query", "context", "request", "user", "text"),
    "chosen": ("chosen", "good", "preferred", "better", "best", "positive", "accepted", "winner", "pos",
               "response_j"),
    "rejected": ("rejected", "bad", "dispreferred", "worse", "worst", "negative", "loser", "neg", "response_k"),
}


def parse_map(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """{new: old} from "new=old,..." (or a dict); empty values are ignored (the UI's unset dropdowns)."""
    if not spec:
        return {}
    if isinstance(spec, Mapping):
        pairs = [(str(k).strip(), str(v).strip()) for k, v in spec.items() if v]
    else:
        pairs = []
        for part in str(spec).split(","):
            if not part.strip():
                continue
            new, sep, old = part.partition("=")
            if not sep or not new.strip() or not old.strip():
                raise SourceError(f"--map expects new=old pairs separated by commas, e.g. {MAP_EXAMPLE}; got {spec!r}")
            pairs.append((new.strip(), old.strip()))
    news = [new for new, _ in pairs]
    twice = sorted({n for n in news if news.count(n) > 1})
    if twice:
        raise SourceError(f"--map gives {twice[0]!r} more than once; map each column once, e.g. {MAP_EXAMPLE}")
    return {new: old for new, old in pairs if new != old}


def apply_map(data: SourceData, mapping: Mapping[str, str]) -> SourceData:
    """The source with columns renamed old -> new (a mapped column replaces one already called `new`)."""
    if not mapping:
        return data
    absent = [old for old in mapping.values() if old not in data.columns]
    if absent:
        raise SourceError(f"{data.label}: --map names the column {absent[0]!r}, which is not there (found: "
                          f"{', '.join(data.columns) or 'none'}); fix the mapping")
    renamed = {old: new for new, old in mapping.items()}
    dropped = set(mapping) | set(renamed)

    def rename(d: dict) -> dict:
        out = {k: v for k, v in d.items() if k not in dropped}
        out.update({new: d.get(old) for new, old in mapping.items()})
        return out

    columns = [c for c in data.columns if c not in dropped] + list(mapping)
    rows = [Row(r.where, rename(r.data)) for r in data.rows]
    return SourceData(data.label, rows, columns, data.split, data.splits)


def _candidate(name: str, columns: Sequence[str], taken: set[str]) -> str | None:
    words = SYNONYMS.get(name, (name,))
    free = [c for c in columns if c not in taken and c not in SYNONYMS]
    exact = [c for c in free if c.lower() in words]
    return (exact or [c for c in free if any(w in c.lower() for w in words)] or [None])[0]


def suggest_map(columns: Sequence[str], needed: Sequence[str]) -> str:
    """The --map value that would supply the `needed` columns (COLUMN where no name suggests one)."""
    taken: set[str] = set()
    parts = []
    for name in needed:
        if name in columns:
            continue
        cand = _candidate(name, columns, taken)
        if cand:
            taken.add(cand)
        parts.append(f"{name}={cand or 'COLUMN'}")
    return ",".join(parts)


def missing_columns_error(label: str, columns: Sequence[str], needed: Sequence[str], what: str) -> SourceError:
    """One line: what was found, what is needed, and the --map that would fix it."""
    found = ", ".join(columns) or "none"
    fix = suggest_map(columns, needed)
    return SourceError(
        f"{label}: cannot read it as {what}. Found columns: {found}. Needed: {', '.join(needed)}. If other columns "
        f"hold them, import again with --map {fix} (or pick the columns in the Data tab's Import panel); nothing "
        "was imported")
