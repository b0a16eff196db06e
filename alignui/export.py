"""Exporting votes as an immutable dataset snapshot, and pushing one to the hub.

Owns: ExportOptions (validated), choosing the rows (decided comparisons of
the chosen kinds, not deleted, under an export policy of alignui.agreement),
shaping them (conversational messages by default, plain strings with
`plain`), the seeded train/test split, the content hash, writing
<storage>/snapshots/<id>/ (layout: alignui/snapshot_format.py), indexing it
in the `snapshots` table, and the push.

Invariants:
- A snapshot directory appears complete or not at all (it is written in a
  hidden sibling and renamed into place); its files are read-only afterwards.
- Same rows and options -> same sha256 (over canonical rows, never file bytes).
- Only verdicts a and b become pairs (chosen = the winner, or the annotator's
  edit of it); ties, both-bad, skips, pending and deleted comparisons are counted.
- Export and push are privileged: require(identity, "export"/"push") first.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alignui.agreement import EXPORT_POLICIES, apply_export_policy
from alignui.dataset_card import render_card
from alignui.db.core import new_id
from alignui.errors import UserError
from alignui.identity import Identity, require
from alignui.paths import StorageLayout
from alignui.snapshot_format import (DATASET_DIR, MANIFEST, README, SNAPSHOT_SCHEMA_VERSION, SnapshotRef,
                                     rows_sha256)

EXPORT_FORMATS = ("hf", "parquet", "jsonl")
PAIR_VERDICTS = ("a", "b")
_SPEAKER = {"system": "System", "user": "Human", "assistant": "Assistant"}
TokenCounter = Callable[[list, list, list, int], dict]


@dataclass(frozen=True)
class ExportOptions:
    format: str = field(default="hf", metadata={"help": "hf (dataset only), or also a data.parquet / data.jsonl"})
    plain: bool = field(default=False, metadata={"help": "prompt/chosen/rejected as strings, not message lists"})
    include_arena: bool = field(default=False, metadata={"help": "also turn arena votes into pairs"})
    test_size: float = field(default=0.1, metadata={"help": "share of the rows in the test split, 0 to <1"})
    seed: int = field(default=42, metadata={"help": "seed of the train/test shuffle"})
    out: Path | None = field(default=None, metadata={"help": "snapshot directory (default storage/snapshots/<id>)"})
    max_length: int | None = field(default=1024, metadata={"help": "report pairs longer than this many tokens"})
    sources: tuple[str, ...] = field(default=(), metadata={"help": "only these sources (empty: all)"})
    policy: str = field(default="keep_all", metadata={"help": f"one of {', '.join(EXPORT_POLICIES)}"})
    min_agreement: float = field(default=0.6, metadata={"help": "for drop_low_agreement: share of judges agreeing"})

    def __post_init__(self):
        if self.format not in EXPORT_FORMATS:
            raise UserError(f"export format must be one of {', '.join(EXPORT_FORMATS)}; got {self.format!r}")
        if not isinstance(self.test_size, (int, float)) or not 0 <= self.test_size < 1:
            raise UserError(f"test size is a share from 0 to below 1 (e.g. 0.1); got {self.test_size!r}")
        if self.max_length is not None and (not isinstance(self.max_length, int) or self.max_length < 1):
            raise UserError(f"max_length must be a positive number of tokens; got {self.max_length!r}")
        if self.policy not in EXPORT_POLICIES:
            raise UserError(f"export policy must be one of {', '.join(EXPORT_POLICIES)}; got {self.policy!r}")
        if not 0 <= self.min_agreement <= 1:
            raise UserError(f"min_agreement is a share from 0 to 1; got {self.min_agreement!r}")
        object.__setattr__(self, "sources", tuple(s for s in self.sources if s))
        object.__setattr__(self, "out", Path(self.out).expanduser() if self.out else None)

    @property
    def kinds(self) -> tuple[str, ...]:
        return ("annotate", "arena") if self.include_arena else ("annotate",)


@dataclass(frozen=True)
class ExportResult:
    ref: SnapshotRef

    @property
    def manifest(self) -> dict[str, Any]:
        return self.ref.manifest

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        out = {"snapshot": self.ref.id, "path": str(self.ref.path), "rows": m["rows"], "test_rows": m["test_rows"],
               "train_rows": m["train_rows"], "sha256": m["sha256"], "excluded": m["excluded"]}
        trunc = m.get("truncation") or {}
        if "over" in trunc:
            out["over_max_length"] = trunc["over"]
        return out


def plain_prompt(messages: list[dict[str, str]]) -> str:
    """One user turn -> its text; several turns -> an hh-rlhf style transcript ending in "Assistant:"."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "".join(f"\n\n{_SPEAKER[m['role']]}: {m['content']}" for m in messages) + "\n\nAssistant:"


def _row(c, plain: bool) -> dict[str, Any]:
    messages = json.loads(c.messages)
    won_a = c.verdict == "a"
    chosen = c.edited_chosen or (c.text_a if won_a else c.text_b)
    rejected = c.text_b if won_a else c.text_a
    decided = c.decided_at.isoformat() if c.decided_at else None
    shaped = ((plain_prompt(messages), chosen, rejected) if plain else
              (messages, [{"role": "assistant", "content": chosen}], [{"role": "assistant", "content": rejected}]))
    return {"prompt": shaped[0], "chosen": shaped[1], "rejected": shaped[2], "id": c.id, "source": c.source,
            "kind": c.kind, "annotator": c.annotator, "chosen_model": c.model_a if won_a else c.model_b,
            "rejected_model": c.model_b if won_a else c.model_a, "edited": bool(c.edited_chosen),
            "decided_at": decided, "meta": c.meta}


def select_rows(store, options: ExportOptions) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The pair rows (ordered by comparison id) and the counts of what was left out."""
    decided = store.export_rows(options.kinds, options.sources or None)
    kept = decided if options.policy == "keep_all" else apply_export_policy(decided, options.policy,
                                                                            options.min_agreement)
    verdicts = Counter(c.verdict for c in kept)
    histogram = store.verdict_histogram(options.kinds, options.sources or None)
    excluded = {v: verdicts.get(v, 0) for v in ("tie", "both_bad", "skip")}
    excluded.update(pending=histogram["pending"], deleted=histogram["deleted"],
                    by_policy=len(decided) - len(kept))
    if not options.include_arena:
        excluded["arena"] = store.count_kind("arena")
    rows = [_row(c, options.plain) for c in sorted(kept, key=lambda c: c.id) if c.verdict in PAIR_VERDICTS]
    return rows, excluded


def split_indices(n: int, test_size: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded shuffle into train/test (scikit-learn); everything goes to train when a split is impossible."""
    if n < 2 or test_size <= 0:
        return list(range(n)), []
    from sklearn.model_selection import train_test_split

    n_test = max(1, min(n - 1, round(n * test_size)))
    train, test = train_test_split(list(range(n)), test_size=n_test, random_state=seed, shuffle=True)
    return list(train), list(test)


def _write_files(tmp: Path, splits: dict[str, list[dict]], options: ExportOptions) -> None:
    """dataset/ (save_to_disk) plus data.parquet or data.jsonl, from Arrow tables built once."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset, DatasetDict
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # a progress bar per split would flood the CLI's stdout
    schema = pa.Table.from_pylist(splits["train"] or splits["test"]).schema
    tables = {name: pa.Table.from_pylist(rows, schema=schema) for name, rows in splits.items()}
    # Datasets wrap the Arrow tables as they are: train_test_split's indices mapping made saving 25x slower.
    empty = {name: 1 for name, t in tables.items() if t.num_rows == 0}  # 0 shards would not load back
    DatasetDict({name: Dataset(t) for name, t in tables.items()}).save_to_disk(str(tmp / DATASET_DIR),
                                                                               num_shards=empty or None)
    if options.format == "parquet":
        both = pa.concat_tables([t.append_column("split", pa.array([name] * t.num_rows, pa.string()))
                                 for name, t in tables.items()])
        pq.write_table(both, tmp / "data.parquet")
    elif options.format == "jsonl":
        with (tmp / "data.jsonl").open("w", encoding="utf-8") as f:
            for name, rows in splits.items():
                for row in rows:
                    f.write(json.dumps({**row, "split": name}, ensure_ascii=False) + "\n")


def _target(layout: StorageLayout, options: ExportOptions, snapshot_id: str) -> Path:
    if options.out is None:
        path = layout.snapshot_dir(snapshot_id)
        return path if not path.exists() else layout.snapshot_dir(f"{snapshot_id}-{new_id()[:4]}")
    if options.out.exists() and (not options.out.is_dir() or any(options.out.iterdir())):
        raise UserError(f"{options.out} already exists and is not an empty directory; snapshots are immutable, "
                        "pick a new --out directory")
    return options.out


def _freeze(path: Path) -> None:
    """Make every file read-only (directories stay writable so an admin can still delete a snapshot)."""
    for p in path.rglob("*"):
        if p.is_file():
            p.chmod(0o444)


def export_snapshot(store, layout: StorageLayout, options: ExportOptions, identity: Identity, *,
                    count_tokens: TokenCounter | None = None, tokenizer_note: str | None = None,
                    now: datetime | None = None) -> ExportResult:
    """Write a new snapshot of the current data; see the module invariants."""
    require(identity, "export")
    rows, excluded = select_rows(store, options)
    if not rows:
        left = ", ".join(f"{v} {k}" for k, v in excluded.items() if v) or "no votes at all"
        raise UserError(f"nothing to export: no comparison has an a/b verdict yet ({left}); vote on some pairs or "
                        "import data first")
    train_idx, test_idx = split_indices(len(rows), options.test_size, options.seed)
    splits = {"train": [rows[i] for i in train_idx], "test": [rows[i] for i in test_idx]}
    sha = rows_sha256(splits)
    created = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    path = _target(layout, options, f"{created:%Y%m%d-%H%M%S}-{sha[:8]}")
    manifest = _manifest(store, path.name, created, sha, splits, excluded, options)
    if options.max_length and count_tokens:
        manifest["truncation"] = count_tokens([_messages(r) for r in rows], [_reply(r["chosen"]) for r in rows],
                                              [_reply(r["rejected"]) for r in rows], options.max_length)
    elif options.max_length:
        manifest["truncation"] = {"max_length": options.max_length,
                                  "skipped": tokenizer_note or "no tokenizer was available"}
    tmp = path.parent / f".{path.name}.tmp-{new_id()}"
    tmp.mkdir(parents=True)
    _write_files(tmp, splits, options)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
    (tmp / README).write_text(render_card(manifest))
    if path.exists():
        path.rmdir()  # an empty --out directory: replaced by the finished snapshot
    os.replace(tmp, path)
    _freeze(path)
    store.record_snapshot(manifest, str(path))
    return ExportResult(SnapshotRef(path.name, path, manifest))


def _messages(row: dict[str, Any]) -> list[dict[str, str]]:
    prompt = row["prompt"]
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt


def _reply(value: Any) -> str:
    return value if isinstance(value, str) else value[0]["content"]


def _manifest(store, snapshot_id: str, created: datetime, sha: str, splits: dict, excluded: dict,
              options: ExportOptions) -> dict[str, Any]:
    rows = splits["train"] + splits["test"]
    histogram = store.verdict_histogram(options.kinds, options.sources or None)
    return {
        "id": snapshot_id, "created_at": created.isoformat(), "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "db_schema_version": store.version, "format": "plain" if options.plain else "conversational",
        "rows": len(rows), "train_rows": len(splits["train"]), "test_rows": len(splits["test"]),
        "test_size": options.test_size, "seed": options.seed, "sha256": sha,
        "filters": {"kinds": list(options.kinds), "include_arena": options.include_arena,
                    "sources": list(options.sources) or None, "verdicts": list(PAIR_VERDICTS),
                    "deleted": "excluded", "policy": options.policy,
                    "min_agreement": options.min_agreement if options.policy == "drop_low_agreement" else None},
        "excluded": excluded, "verdicts": {k: v for k, v in histogram.items() if k != "deleted"},
        "sources": dict(Counter(r["source"] for r in rows).most_common()),
        "files": [DATASET_DIR, MANIFEST, README] + ({"parquet": ["data.parquet"], "jsonl": ["data.jsonl"]}
                                                    .get(options.format, [])),
        "columns": list(rows[0]), "options": {k: str(v) if isinstance(v, Path) else v
                                               for k, v in asdict(options).items()},
    }


def push_export(ref: SnapshotRef, repo: str, identity: Identity, *, token: str | None = None,
                private: bool = True) -> str:
    """Push a written snapshot to a hub dataset repo (private by default); returns the repo URL."""
    from alignui.datasets_io.hub import push_snapshot

    require(identity, "push")
    return push_snapshot(ref, repo, card=render_card(ref.manifest, hub_repo=repo), token=token, private=private)
