"""Restoring the newest backup into an empty data root before the app opens it (a Space that restarts).

Owns: deciding whether a data root is empty (no database, no snapshot, no run), fetching the newest backup
commit of the BackupRemote into a staging folder inside the root, rebuilding the database from its copy,
moving snapshots and runs into place, and the one line the header and the log show.

Invariants:
- A data root that holds a database, a snapshot or a run is never written to.
- The database file appears last (built beside, renamed): until then the root still reads as empty, and a
  start that died half-way restores again. Snapshots and runs are moved in only after the database
  copy was rebuilt successfully.
- A failure leaves the root as it was (the staging folder is removed) and says why in one line; the app
  then starts with backups OFF, so an empty database never replaces the backup it could not read.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alignui.errors import UserError
from alignui.team.backup import DATABASE_COPY, RESTORE_PATTERNS, remote_for
from alignui.team.backup_remote import BackupRemote

STAGING = ".restore"


@dataclass(frozen=True)
class RestoreOutcome:
    message: str  # what the header and the log say
    restored: bool
    failed: bool = False  # the backup exists (or may) but could not be read: keep backups off
    votes: int = 0


def _entries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.startswith(".")] if folder.is_dir() else []


def data_root_is_empty(root: Path) -> bool:
    """No database, no snapshot, no run (models/, the handoff file and staging folders do not count)."""
    root = Path(root)
    return not (root / "alignui.duckdb").exists() and not _entries(root / "snapshots") and not _entries(root / "runs")


def _put_in_place(stage: Path, root: Path) -> tuple[int, int]:
    """Rebuild the database from the staged copy, then move the staged snapshots and runs into the root."""
    from alignui.db.backup import import_database

    dump = stage / DATABASE_COPY
    if not (dump / "schema.sql").is_file():
        raise UserError(f"the backup has no database copy ({DATABASE_COPY}/schema.sql is missing)")
    import_database(dump, stage / "alignui.duckdb")
    moved = {}
    for name in ("snapshots", "runs"):
        (root / name).mkdir(parents=True, exist_ok=True)
        entries = _entries(stage / name)
        for entry in entries:
            os.replace(entry, root / name / entry.name)
        moved[name] = len(entries)
    os.replace(stage / "alignui.duckdb", root / "alignui.duckdb")  # last: the root is no longer empty
    return moved["snapshots"], moved["runs"]


def _restore(remote: BackupRemote, root: Path) -> RestoreOutcome:
    from alignui.db import Store
    from alignui.db.backup import saved_votes

    commit = remote.latest()
    if commit is None:
        return RestoreOutcome(f"no backup in {remote.name} yet: starting with an empty data root", False)
    stage = root / STAGING
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        remote.download(commit, stage, RESTORE_PATTERNS)
        snapshots, runs = _put_in_place(stage, root)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    with Store(root / "alignui.duckdb") as store:
        votes = saved_votes(store)
    when = commit.created_at.strftime("%Y-%m-%d %H:%M UTC")
    counts = ", ".join(f"{n} {what}{'' if n == 1 else 's'}" for n, what in
                       ((votes, "vote"), (snapshots, "snapshot"), (runs, "run")))
    return RestoreOutcome(f"restored from backup {remote.name} of {when}: {counts}", True, votes=votes)


def restore_on_start(config, *, log: Callable[[str], None] = print,
                     remote: BackupRemote | None = None) -> RestoreOutcome | None:
    """With ALIGNUI_BACKUP_REPO set and an empty data root, put the newest backup in place; None otherwise."""
    if not config.backup_repo:
        return None
    root = Path(config.storage)
    if not data_root_is_empty(root):
        log(f"alignui: not restoring from {config.backup_repo}: the data root {root} already holds data")
        return None
    try:
        outcome = _restore(remote or remote_for(config.backup_repo, config), root)
    except Exception as exc:  # noqa: BLE001 - the app starts anyway, and says why in the header
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        outcome = RestoreOutcome(f"could not restore from backup {config.backup_repo}: {reason}. Backups are OFF "
                                 "until a restart restores it (an empty database must not replace it)", False,
                                 failed=True)
    log(f"alignui: {outcome.message}")
    return outcome
