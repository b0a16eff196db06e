"""The on-disk format of a dataset snapshot, and reading one back (no database involved).

A snapshot is an immutable directory, storage/snapshots/<id>/:

    manifest.json     {"id", "rows", "test_rows", "sha256", "filters", "created_at", "schema_version",
                       "format": "conversational"|"plain", "excluded": {...}, ...}
    dataset/          a datasets.DatasetDict (save_to_disk) with splits "train" and "test";
                      columns prompt, chosen, rejected (conversational: lists of {role, content};
                      plain: strings), plus optional metadata columns; or, for thumbs up/down
                      feedback, TRL's unpaired columns prompt, completion, label (bool: desirable)
    unpaired/         (exports since KTO) the same rows in TRL's unpaired format for KTO-style trainers:
                      prompt, completion, label (chosen -> true, rejected -> false), id; same splits;
                      then the thumbs up/down ratings (manifest "ratings": how many)
    README.md         a dataset card
    data.parquet / data.jsonl (optional, when asked for)

Owns: resolving "an id, a path, or the newest" to a snapshot and loading its
DatasetDict, and the snapshot's content hash (`tables_sha256` / `dataset_sha256`):
sha256 over the canonical content (split by split, column by column, values
as JSON with sorted keys), never over file bytes or timestamps, so the same
data gives the same hash on every export and the hash can be re-checked from
the saved dataset (`verify_snapshot`). Training jobs use this module only: they read snapshots
from disk and never open the live database (DuckDB allows one process per file).
Writing snapshots lives in alignui/data/export.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignui.errors import NotFoundError, UserError
from alignui.paths import StorageLayout, UnsafeNameError

MANIFEST = "manifest.json"
DATASET_DIR = "dataset"
UNPAIRED_DIR = "unpaired"
README = "README.md"
#: Version of the snapshot layout and manifest keys (bump when either changes incompatibly).
SNAPSHOT_SCHEMA_VERSION = 1
#: The columns of an unpaired (thumbs up/down) snapshot: TRL's unpaired preference format.
UNPAIRED_COLUMNS = {"prompt", "completion", "label"}


def tables_sha256(tables: Mapping[str, Any]) -> str:
    """sha256 of the canonical content of Arrow tables by split: for each split (sorted by name) its row count,
    then for each column (sorted by name) the name and all its values as one JSON list (sorted keys, UTF-8).
    Column-wise, so 100k rows cost one encoder call per column instead of one per row."""
    encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode
    digest = hashlib.sha256()
    for split in sorted(tables):
        table = tables[split]
        digest.update(f"split {split} rows {table.num_rows}\n".encode())
        for name in sorted(table.column_names):
            digest.update(f"column {name}\n".encode())
            digest.update(encode(table.column(name).to_pylist()).encode())
            digest.update(b"\n")
    return digest.hexdigest()


def dataset_sha256(data) -> str:
    """tables_sha256 of a loaded DatasetDict (what a snapshot's manifest sha256 must equal)."""
    return tables_sha256({split: data[split].with_format("arrow")[:] for split in data})


@dataclass(frozen=True)
class SnapshotRef:
    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def dataset_path(self) -> Path:
        return self.path / DATASET_DIR if (self.path / DATASET_DIR).is_dir() else self.path

    @property
    def sha256(self) -> str | None:
        return self.manifest.get("sha256")


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path / MANIFEST} is unreadable ({exc}); re-export the snapshot") from exc


def list_snapshots(storage: Path) -> list[SnapshotRef]:
    """Snapshots under the data root, newest first (by manifest created_at, then id)."""
    root = StorageLayout(storage).snapshots_dir
    refs = [SnapshotRef(p.name, p, _read_manifest(p)) for p in root.iterdir()
            if p.is_dir() and (p / MANIFEST).is_file()] if root.is_dir() else []
    return sorted(refs, key=lambda r: (str(r.manifest.get("created_at", "")), r.id), reverse=True)


def resolve_snapshot(storage: Path, id_or_path: str | None = None, *, allow_paths: bool = True) -> SnapshotRef:
    """A snapshot by id (under the data root), by path (a snapshot or a saved DatasetDict), or the newest.

    `allow_paths=False` (anything that comes from the web) accepts ids only, so a name cannot leave
    the data root.
    """
    if not id_or_path:
        found = list_snapshots(storage)
        if not found:
            raise NotFoundError("there is no snapshot yet: export one first (python -m alignui export, or the "
                                "Export button in the Data tab)")
        return found[0]
    candidate = Path(id_or_path).expanduser()
    if allow_paths and candidate.is_dir():
        return SnapshotRef(candidate.name, candidate, _read_manifest(candidate))
    try:
        path = StorageLayout(storage).snapshot_dir(id_or_path)
    except UnsafeNameError as exc:
        raise NotFoundError(f"no snapshot {id_or_path!r}: {exc}") from exc
    if not path.is_dir():
        known = ", ".join(r.id for r in list_snapshots(storage)[:5]) or "none yet"
        raise NotFoundError(f"no snapshot {id_or_path!r} under {path.parent} (newest: {known})")
    return SnapshotRef(path.name, path, _read_manifest(path))


def load_snapshot(ref: SnapshotRef):
    """The snapshot's DatasetDict (splits train and test), with a clear error when it is not one."""
    from datasets import DatasetDict, load_from_disk

    try:
        data = load_from_disk(str(ref.dataset_path))
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(f"{ref.dataset_path} is not a saved Hugging Face dataset ({exc})") from exc
    if not isinstance(data, DatasetDict):
        data = DatasetDict({"train": data})
    columns = set(data["train"].column_names)
    missing = {"prompt", "chosen", "rejected"} - columns
    if missing and not UNPAIRED_COLUMNS <= columns:
        raise UserError(f"snapshot {ref.id} lacks the columns {sorted(missing)}; a preference snapshot needs "
                        "prompt, chosen and rejected (or prompt, completion, label for unpaired feedback)")
    return data


def load_unpaired(ref: SnapshotRef):
    """The snapshot's unpaired/ DatasetDict (pairs split into desirable/undesirable, then the thumbs ratings)."""
    from datasets import load_from_disk

    try:
        return load_from_disk(str(ref.path / UNPAIRED_DIR))
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(f"{ref.path / UNPAIRED_DIR} is not a saved Hugging Face dataset ({exc}); re-export the "
                        "snapshot") from exc


def verify_snapshot(ref: SnapshotRef) -> bool:
    """True when the saved dataset (and, for a snapshot with thumbs ratings, its unpaired/ splits) still hashes
    to the manifest's sha256."""
    if not ref.sha256:
        return False
    tables = {split: t.with_format("arrow")[:] for split, t in load_snapshot(ref).items()}
    if ref.manifest.get("ratings"):
        tables.update({f"{UNPAIRED_DIR}/{split}": t.with_format("arrow")[:] for split, t in load_unpaired(ref).items()})
    return tables_sha256(tables) == ref.sha256
