"""Exporting votes as an immutable dataset snapshot, and pushing one to the hub.

Owns: ExportOptions (validated), choosing the rows (decided comparisons of
the chosen kinds, not deleted, under an export policy of alignui.arena.agreement),
shaping them (conversational messages by default, plain strings with
`plain`), the seeded train/test split, the content hash, writing
<storage>/snapshots/<id>/ (layout: alignui/data/snapshot.py), indexing it
in the `snapshots` table, and the push.

Invariants:
- A snapshot directory appears complete or not at all (it is written in a
  hidden sibling and renamed into place); its files are read-only afterwards.
- Same rows and options -> same sha256 (over canonical rows, never file bytes).
- Only verdicts a and b become pairs (chosen = the winner, or the annotator's
  edit of it); ties, both-bad, skips, pending and deleted comparisons are counted.
- Beside the pairs (dataset/), unpaired/ holds the same rows in TRL's unpaired
  format (prompt, completion, label) for KTO-style trainers: each pair gives its
  chosen response as desirable and its rejected one as undesirable, same splits;
  then the thumbs ratings (up = desirable, down = undesirable; skips, pending,
  deleted and held-out ones are left out), split with the same seed on their own.
  The pair format ignores thumbs. A snapshot of thumbs alone has the unpaired
  rows in dataset/ too (only KTO trains on it). With thumbs, sha256 covers the
  unpaired splits as well ("unpaired/train", "unpaired/test").
- Export and push are privileged: require(identity, "export"/"push") first.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from alignui.arena.agreement import EXPORT_POLICIES, apply_export_policy
from alignui.data.card import render_card
from alignui.db.core import new_id
from alignui.errors import UserError, quoted
from alignui.team.identity import Identity, require
from alignui.paths import StorageLayout
from alignui.data.snapshot import (DATASET_DIR, MANIFEST, README, SNAPSHOT_SCHEMA_VERSION, UNPAIRED_DIR,
                                   SnapshotRef, tables_sha256)

EXPORT_FORMATS = ("hf", "parquet", "jsonl")
PAIR_VERDICTS = ("a", "b")
_SPEAKER = {"system": "System", "user": "Human", "assistant": "Assistant"}
TokenCounter = Callable[[list, list, list, int], dict]
META_COLUMNS = ("id", "source", "kind", "annotator", "chosen_model", "rejected_model", "edited", "decided_at", "meta")


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
    lineage: dict | None = field(default=None, metadata={"help": "training in rounds: the parent run and round "
                                                                 "number, written to the manifest (alignui.rounds)"})

    def __post_init__(self):
        if self.format not in EXPORT_FORMATS:
            raise UserError(f"export format must be one of {', '.join(EXPORT_FORMATS)}; got {self.format!r}")
        if not isinstance(self.test_size, (int, float)) or not 0 <= self.test_size < 1:
            raise UserError(f"test size is a share from 0 to below 1 (e.g. 0.1); got {self.test_size!r}")
        if self.max_length is not None and (not isinstance(self.max_length, int) or self.max_length < 1):
            raise UserError(f"max_length must be a positive number of tokens; got {self.max_length!r}")
        if type(self.seed) is not int or self.seed < 0:
            raise UserError(f"the seed must be a whole number from 0 up (e.g. 42); got {quoted(self.seed)}")
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
               "train_rows": m["train_rows"], "sha256": m["sha256"], "excluded": m["excluded"],
               "ratings": m.get("ratings", 0)}
        trunc = m.get("truncation") or {}
        if "over" in trunc:
            out["over_max_length"] = trunc["over"]
        return out


def plain_prompt(messages: list[dict[str, str]]) -> str:
    """One user turn -> its text; several turns -> an hh-rlhf style transcript ending in "Assistant:"."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "".join(f"\n\n{_SPEAKER[m['role']]}: {m['content']}" for m in messages) + "\n\nAssistant:"


def _take(table, indices: list[int]):
    import pyarrow as pa

    return table.take(pa.array(indices, pa.int64()))  # typed: an empty list would be Arrow's null type


def _replies(texts) -> Any:
    """One-message assistant conversations, built column-wise in Arrow: [{"role": "assistant", "content": t}]."""
    import pyarrow as pa

    n = len(texts)
    messages = pa.StructArray.from_arrays([pa.array(["assistant"] * n, pa.string()), texts.combine_chunks()],
                                          names=["role", "content"])
    return pa.ListArray.from_arrays(pa.array(range(n + 1), pa.int32()), messages)


def shape(table, plain: bool):
    """The snapshot's columns, in order: prompt, chosen, rejected, then the metadata columns."""
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    if plain:
        prompt = pa.array([plain_prompt(m) for m in table.column("prompt").to_pylist()], pa.string())
        chosen, rejected = table.column("chosen"), table.column("rejected")
    else:
        prompt = table.column("prompt").cast(pa.list_(message))
        chosen, rejected = _replies(table.column("chosen")), _replies(table.column("rejected"))
    meta = [table.column(name) for name in META_COLUMNS]
    return pa.table([prompt, chosen, rejected, *meta], names=["prompt", "chosen", "rejected", *META_COLUMNS])


def select_rows(store, options: ExportOptions):
    """The pair rows as an Arrow table (ordered by comparison id) and the counts of what was left out."""
    table = store.export_table(options.kinds, options.sources or None)
    verdicts = table.column("verdict").to_pylist()
    kept = range(len(verdicts))
    if options.policy != "keep_all":
        light = [SimpleNamespace(i=i, verdict=v, gen_a=a, gen_b=b) for i, (v, a, b) in enumerate(
            zip(verdicts, table.column("gen_a").to_pylist(), table.column("gen_b").to_pylist()))]
        kept = sorted(c.i for c in apply_export_policy(light, options.policy, options.min_agreement))
    counts = Counter(verdicts[i] for i in kept)
    histogram = store.verdict_histogram(options.kinds, options.sources or None)
    excluded = {v: counts.get(v, 0) for v in ("tie", "both_bad", "skip")}
    excluded.update(pending=histogram["pending"], deleted=histogram["deleted"], by_policy=len(verdicts) - len(kept))
    if not options.include_arena:
        excluded["arena"] = store.count_kind("arena")
    pairs = [i for i in kept if verdicts[i] in PAIR_VERDICTS]
    return shape(_take(table, pairs), options.plain), excluded


def select_ratings(store, options: ExportOptions):
    """The thumbs ratings in TRL's unpaired columns (prompt, completion, label, id), shaped like unpair()'s rows."""
    import pyarrow as pa

    table = store.ratings_export_table(list(options.sources) or None)
    if options.plain:
        prompt = pa.array([plain_prompt(m) for m in table.column("prompt").to_pylist()], pa.string())
        completion = table.column("completion")
    else:
        prompt, completion = table.column("prompt"), _replies(table.column("completion"))
    return pa.table([prompt, completion, table.column("label"), table.column("id")],
                    names=["prompt", "completion", "label", "id"])


def split_indices(n: int, test_size: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded shuffle into train/test; everything goes to train when a split is impossible.

    A numpy permutation rather than sklearn's train_test_split (same result shape): importing
    scikit-learn alone took 2-5 s of a 100k-pair export here."""
    if n < 2 or test_size <= 0:
        return list(range(n)), []
    import numpy as np

    n_test = max(1, min(n - 1, round(n * test_size)))
    order = np.random.default_rng(seed).permutation(n).tolist()
    return order[n_test:], order[:n_test]


def unpair(table):
    """Pairs -> TRL's unpaired rows: (prompt, chosen, label true) then (prompt, rejected, label false), with ids."""
    import pyarrow as pa

    n = table.num_rows
    halves = [pa.table([table.column("prompt"), table.column(side), pa.array([side == "chosen"] * n, pa.bool_()),
                        table.column("id")], names=["prompt", "completion", "label", "id"])
              for side in ("chosen", "rejected")]
    return pa.concat_tables(halves)


def _write_files(tmp: Path, splits: dict[str, Any], options: ExportOptions, unpaired: dict[str, Any]) -> None:
    """dataset/ and unpaired/ (save_to_disk) plus data.parquet or data.jsonl, all from the same Arrow tables."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset, DatasetDict
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # a progress bar per split would flood the CLI's stdout
    empty = {name: 1 for name, t in splits.items() if t.num_rows == 0}  # 0 shards would not load back
    # Datasets wrap the Arrow tables as they are: train_test_split's indices mapping made saving 25x slower.
    DatasetDict({name: Dataset(t) for name, t in splits.items()}).save_to_disk(str(tmp / DATASET_DIR),
                                                                               num_shards=empty or None)
    empty = {name: 1 for name, t in unpaired.items() if t.num_rows == 0}
    DatasetDict({name: Dataset(t) for name, t in unpaired.items()}).save_to_disk(str(tmp / UNPAIRED_DIR),
                                                                                 num_shards=empty or None)
    if options.format == "parquet":
        both = pa.concat_tables([t.append_column("split", pa.array([name] * t.num_rows, pa.string()))
                                 for name, t in splits.items()])
        pq.write_table(both, tmp / "data.parquet")
    elif options.format == "jsonl":
        with (tmp / "data.jsonl").open("w", encoding="utf-8") as f:
            for name, table in splits.items():
                for row in table.to_pylist():
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
    table, excluded = select_rows(store, options)
    ratings = select_ratings(store, options)
    if not table.num_rows and not ratings.num_rows:
        raise UserError(_nothing_to_export(store, options, excluded))
    splits, unpaired = _split(table, ratings, options)
    sha = tables_sha256({**splits, **{f"{UNPAIRED_DIR}/{k}": t for k, t in unpaired.items()}} if ratings.num_rows
                        else splits)
    created = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    path = _target(layout, options, f"{created:%Y%m%d-%H%M%S}-{sha[:8]}")
    manifest = _manifest(store, path.name, created, sha, splits, excluded, options)
    manifest.update(ratings=ratings.num_rows, unpaired_rows={k: t.num_rows for k, t in unpaired.items()},
                    labels={"desirable": sum(t.column("label").to_pylist().count(True) for t in unpaired.values()),
                            "undesirable": sum(t.column("label").to_pylist().count(False) for t in unpaired.values())})
    if not table.num_rows:
        manifest["format_note"] = "thumbs only: dataset/ holds unpaired (prompt, completion, label) rows"
    if options.max_length and count_tokens:
        manifest["truncation"] = count_tokens(*_token_inputs(table), options.max_length)
    elif options.max_length:
        manifest["truncation"] = {"max_length": options.max_length,
                                  "skipped": tokenizer_note or "no tokenizer was available"}
    _write_snapshot(path, splits, manifest, options, unpaired)
    store.record_snapshot(manifest, str(path))
    return ExportResult(SnapshotRef(path.name, path, manifest))


def _nothing_to_export(store, options: ExportOptions, excluded: dict[str, int]) -> str:
    """Why an export found no pair: an unknown --source is named as such (with the sources there are)."""
    if options.sources:
        known = store.filter_choices()["source"]
        unknown = [s for s in options.sources if s not in known]
        if unknown:
            return (f"nothing to export: no comparison comes from source {', '.join(quoted(s) for s in unknown)}; "
                    f"the sources are {', '.join(known) or 'none yet'} (or leave out --source for all)")
    scope = f" from {', '.join(options.sources)}" if options.sources else ""
    left = ", ".join(f"{v} {k}" for k, v in excluded.items() if v) or f"no votes{scope or ' at all'}"
    return (f"nothing to export{scope}: no comparison has an a/b verdict yet ({left}) and no "
            "response a thumb up or down; vote on some pairs, rate some responses (Thumbs tab) or import data first")


def _split(table, ratings, options: ExportOptions) -> tuple[dict, dict]:
    """(pair splits, unpaired splits): pairs and thumbs are each split with the options' seed; the unpaired
    splits are a split's pairs unpaired, then its thumbs. Without pairs, the pair splits are the unpaired ones."""
    import pyarrow as pa

    pair_idx = split_indices(table.num_rows, options.test_size, options.seed)
    rating_idx = split_indices(ratings.num_rows, options.test_size, options.seed)
    splits = {name: _take(table, idx) for name, idx in zip(("train", "test"), pair_idx)}
    unpaired = {name: pa.concat_tables([unpair(splits[name]), _take(ratings, idx)])
                for name, idx in zip(("train", "test"), rating_idx)} if ratings.num_rows else \
        {name: unpair(t) for name, t in splits.items()}
    return (splits if table.num_rows else unpaired), unpaired


def _write_snapshot(path: Path, splits: dict, manifest: dict, options: ExportOptions, unpaired: dict) -> None:
    """Write into a hidden sibling, then rename it into place: all or nothing. A folder that cannot be written
    is a UserError, and nothing is left behind."""
    tmp = path.parent / f".{path.name}.tmp-{new_id()}"
    try:
        tmp.mkdir(parents=True)
        _write_files(tmp, splits, options, unpaired)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
        (tmp / README).write_text(render_card(manifest))
        if path.exists():
            path.rmdir()  # an empty --out directory: replaced by the finished snapshot
        os.replace(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write the snapshot to {quoted(str(path))} ({exc.strerror or exc}); choose a folder "
                        "you can write to (--out DIR), nothing was written") from None
    _freeze(path)


def _token_inputs(table) -> tuple[list, list, list]:
    """(prompt conversations, chosen texts, rejected texts) for the truncation report."""
    prompts = [[{"role": "user", "content": p}] if isinstance(p, str) else p
               for p in table.column("prompt").to_pylist()]
    replies = [[r if isinstance(r, str) else r[0]["content"] for r in table.column(name).to_pylist()]
               for name in ("chosen", "rejected")]
    return prompts, replies[0], replies[1]


def _manifest(store, snapshot_id: str, created: datetime, sha: str, splits: dict, excluded: dict,
              options: ExportOptions) -> dict[str, Any]:
    n_train, n_test = splits["train"].num_rows, splits["test"].num_rows
    sources = Counter(splits["train"].column("source").to_pylist() + splits["test"].column("source").to_pylist()) \
        if "source" in splits["train"].column_names else Counter({"thumbs": n_train + n_test})
    histogram = store.verdict_histogram(options.kinds, options.sources or None)
    return {
        "id": snapshot_id, "created_at": created.isoformat(), "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "db_schema_version": store.version, "format": "plain" if options.plain else "conversational",
        "rows": n_train + n_test, "train_rows": n_train, "test_rows": n_test,
        "test_size": options.test_size, "seed": options.seed, "sha256": sha,
        "filters": {"kinds": list(options.kinds), "include_arena": options.include_arena,
                    "sources": list(options.sources) or None, "verdicts": list(PAIR_VERDICTS),
                    "deleted": "excluded", "policy": options.policy,
                    "min_agreement": options.min_agreement if options.policy == "drop_low_agreement" else None},
        "excluded": excluded, "verdicts": {k: v for k, v in histogram.items() if k != "deleted"},
        "sources": dict(sources.most_common()),
        "files": [DATASET_DIR, UNPAIRED_DIR, MANIFEST, README] + ({"parquet": ["data.parquet"],
                                                                  "jsonl": ["data.jsonl"]}.get(options.format, [])),
        "columns": splits["train"].column_names, "options": {k: str(v) if isinstance(v, Path) else v
                                               for k, v in asdict(options).items() if k != "lineage"},
        **({"lineage": options.lineage} if options.lineage else {}),
    }


def push_export(ref: SnapshotRef, repo: str, identity: Identity, *, token: str | None = None,
                private: bool = True) -> str:
    """Push a written snapshot to a hub dataset repo (private by default); returns the repo URL."""
    from alignui.data.hub_datasets import push_snapshot

    require(identity, "push")
    return push_snapshot(ref, repo, card=render_card(ref.manifest, hub_repo=repo), token=token, private=private)


def export_and_push(store, layout: StorageLayout, options: ExportOptions, identity: Identity, *,
                    count_tokens: TokenCounter | None = None, push_to: str | None = None, token: str | None = None,
                    private: bool = True) -> dict[str, Any]:
    """Export, then push when `push_to` names a repo; for the UI, a failed push is reported in the summary
    ("push_error") next to the snapshot that stands, instead of hiding the export behind an error."""
    from alignui.data.hub_datasets import PushError

    result = export_snapshot(store, layout, options, identity, count_tokens=count_tokens)
    summary = result.summary()
    if push_to and push_to.strip():
        try:
            summary["pushed"] = push_export(result.ref, push_to.strip(), identity, token=token, private=private)
        except PushError as exc:
            summary["push_error"] = str(exc)
    return summary
