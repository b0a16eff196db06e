"""Importing a source into the database: read -> map columns -> detect format -> convert -> check -> one transaction.

Owns: ImportOptions (validated), the import summary ({"imported", "skipped",
"reasons", ...}, the CLI's last line), de-duplication within the source, and
`preview_source` (columns and detected format, for the UI's mapping
dropdowns).

Invariants:
- Every row is read and checked before anything is written; a bad row raises
  SourceError naming its line, and the database is left exactly as it was.
- The write is one Store.import_batch transaction; pairs already imported
  (same prompt, chosen and rejected) are skipped and counted, as are
  duplicates inside the source.
- Importing is a privileged action: `require(identity, "import")` first.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from alignui.data.detect import FORMAT_CHOICES, choose_format, detect
from alignui.data.mapping import apply_map, parse_map
from alignui.data.readers import POOL_SPLITS, SourceData, read_source
from alignui.data.records import MAX_FIELD_CHARS, Checker, Converted, SourceError
from alignui.db.imports import ImportBatch
from alignui.team.identity import Identity, require


@dataclass(frozen=True)
class ImportOptions:
    format: str = field(default="auto", metadata={"help": "auto, trl, hh-rlhf, ultrafeedback, oasst or prompts"})
    split: str | None = field(default=None, metadata={
        "help": "split of a dataset directory or hub dataset to read; for prompt lists 'heldout' puts the prompts "
                "in the held-out pool the arena draws from (default pool: train)"})
    mapping: Any = field(default=None, metadata={"help": "column mapping new=old,... (or a dict)"})
    max_chars: int = field(default=MAX_FIELD_CHARS, metadata={"help": "longest text accepted in one field"})
    label: str | None = field(default=None, metadata={"help": "name recorded as the source (default: file name)"})

    def __post_init__(self):
        if self.format not in FORMAT_CHOICES:
            raise SourceError(f"format must be one of {', '.join(FORMAT_CHOICES)}; got {self.format!r}")
        if not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise SourceError(f"max_chars must be a positive number, got {self.max_chars!r}")
        if self.split is not None and not str(self.split).strip():
            object.__setattr__(self, "split", None)
        object.__setattr__(self, "mapping", parse_map(self.mapping))

    @property
    def pool(self) -> str:
        """The prompt pool split ('train' or 'heldout') that imported prompts go to."""
        return self.split if self.split in POOL_SPLITS else "train"


@dataclass(frozen=True)
class ImportSummary:
    imported: int
    skipped: int
    reasons: dict[str, int]
    format: str
    kind: str
    source: str
    rows: int
    excluded: dict[str, int] = field(default_factory=dict)
    import_id: str | None = None
    split: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"imported": self.imported, "skipped": self.skipped, "reasons": self.reasons, "format": self.format,
               "kind": self.kind, "source": self.source, "rows": self.rows, "import_id": self.import_id}
        if self.excluded:
            out["excluded"] = self.excluded
        if self.split:
            out["split"] = self.split
        return out


def _nonzero(counter: Counter) -> dict[str, int]:
    return {k: v for k, v in sorted(counter.items()) if v}


def _encoder():
    """The stored JSON form of prompts and metadata: the arguments of db.records.messages_hash, so the sha256
    of a stored prompt is its messages_hash. One encoder per import: json.dumps builds one per call."""
    return json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def _pairs_columns(converted: Converted) -> dict[str, list]:
    """The batch columns of a pairs import, minus duplicates inside the source (counted in converted.skipped)."""
    seen: set[str] = set()
    encode, sha256 = _encoder(), hashlib.sha256
    cols: dict[str, list] = {k: [] for k in ("messages", "content_hash", "chosen", "rejected", "pair_hash", "meta")}
    for p in converted.pairs:
        messages = encode(p.prompt)
        content = sha256(messages.encode()).hexdigest()  # == messages_hash(p.prompt)
        digest = sha256("\x00".join((content, p.chosen, p.rejected)).encode()).hexdigest()
        if digest in seen:
            converted.skipped["duplicate within the source"] += 1
            continue
        seen.add(digest)
        cols["messages"].append(messages)
        cols["content_hash"].append(content)
        cols["chosen"].append(p.chosen)
        cols["rejected"].append(p.rejected)
        cols["pair_hash"].append(digest)
        cols["meta"].append(encode(p.meta) if p.meta else None)
    return cols


def _prompts_columns(converted: Converted) -> dict[str, list]:
    seen: set[str] = set()
    encode = _encoder()
    cols: dict[str, list] = {"messages": [], "content_hash": [], "meta": []}
    for item in converted.prompts:
        messages = encode(item.messages)
        content = hashlib.sha256(messages.encode()).hexdigest()
        if content in seen:
            converted.skipped["duplicate within the source"] += 1
            continue
        seen.add(content)
        cols["messages"].append(messages)
        cols["content_hash"].append(content)
        cols["meta"].append(encode(item.meta) if item.meta else None)
    return cols


def load(source: str, options: ImportOptions) -> tuple[SourceData, Any, Converted]:
    """Read, map, detect and convert (no database): (source data, format module, converted rows)."""
    data = apply_map(read_source(source, split=options.split, label=options.label), options.mapping)
    fmt = choose_format(data, options.format)
    converted = fmt.convert(data.rows, Checker(data.label, options.max_chars))
    return data, fmt, converted


def import_source(store, source: str, options: ImportOptions, identity: Identity) -> ImportSummary:
    """Import a file, directory or hub dataset; see the module docstring for the guarantees."""
    require(identity, "import")
    data, fmt, converted = load(source, options)
    if fmt.NAME == "unpaired":
        return _import_ratings(store, data, fmt, converted, options)
    kind = "prompts" if fmt.NAME == "prompts" else "pairs"
    if kind == "pairs" and options.split == "heldout" and data.split != "heldout":
        raise SourceError("held-out prompts are for the arena, and pairs are training data: import pairs without "
                          "--split heldout (nothing was imported)")
    columns = _prompts_columns(converted) if kind == "prompts" else _pairs_columns(converted)
    batch = ImportBatch(source=f"import:{data.label}", format=fmt.NAME, kind=kind, columns=columns,
                        split=options.pool if kind == "prompts" else "train", actor=identity.name,
                        options={"format": options.format, "split": options.split, "map": options.mapping})
    written = store.import_batch(batch, _nonzero(converted.skipped))
    reasons = _nonzero(converted.skipped + Counter({"already in the database": written.already_stored}))
    return ImportSummary(imported=written.imported, skipped=sum(reasons.values()), reasons=reasons, format=fmt.NAME,
                         kind=kind, source=batch.source, rows=len(data.rows), excluded=_nonzero(converted.excluded),
                         import_id=written.import_id, split=data.split)


def _import_ratings(store, data: SourceData, fmt, converted: Converted, options: ImportOptions) -> ImportSummary:
    """TRL unpaired rows -> decided thumbs ratings, in one transaction (Store.add_ratings_bulk); a row already
    stored from the same source (same prompt, completion and label) is skipped and counted. Not logged in the
    `imports` table (its kind column allows only pairs and prompts)."""
    if options.split == "heldout" and data.split != "heldout":
        raise SourceError("held-out prompts are for the arena, and ratings are training data: import them without "
                          "--split heldout (nothing was imported)")
    source = f"import:{data.label}"
    added, already = store.add_ratings_bulk(converted.ratings, source=source)
    reasons = _nonzero(converted.skipped + Counter({"already in the database": already}))
    return ImportSummary(imported=added, skipped=sum(reasons.values()), reasons=reasons, format=fmt.NAME,
                         kind="ratings", source=source, rows=len(data.rows), excluded=_nonzero(converted.excluded),
                         import_id=None, split=data.split)


@dataclass(frozen=True)
class SourcePreview:
    label: str
    columns: list[str]
    rows: int
    detected: str | None
    sample: list[dict[str, Any]]
    splits: tuple[str, ...] = ()


def preview_source(source: str, split: str | None, identity: Identity) -> SourcePreview:
    """Columns, row count, detected format and the first rows of a source (nothing is written). Admins only, like
    the import itself: it reads files on the server."""
    require(identity, "import")
    data = read_source(source, split=split)
    first = data.rows[0].data if data.rows else {}
    found = detect(data.columns, first)
    sample = [{k: (str(v)[:200] if v is not None else None) for k, v in r.data.items()} for r in data.rows[:3]]
    return SourcePreview(data.label, data.columns, len(data.rows), found.NAME if found else None, sample, data.splits)
