"""Backups of the data root to a BackupRemote (alignui.team.backup_remote), and restoring the newest on start.

Owns: what a backup holds (every snapshot, a consistent copy of the database, and each run's registry
files and final adapter; not checkpoints), one backup (`backup_now`), the BackupScheduler (a backup once
`every_votes` votes were saved since the last one, or every `every_minutes`, whichever comes first, and a
last one on a clean stop), and `restore_on_start` (an empty data root + ALIGNUI_BACKUP_REPO: the newest
backup is put in place before the app opens the database).

Invariants:
- The database copy is DuckDB's EXPORT DATABASE (one transaction: never a torn file), staged in
  <root>/backup/database under a file lock, so two backups (timer and Admin button) never interleave.
- A backup changes nothing under the data root but its staging folder; a failure is one log line or a
  UserError, and never stops the app.
- A restore never touches a data root that holds a database, a snapshot or a run; it builds everything
  beside the root's contents and renames the database into place last.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alignui.errors import UserError
from alignui.team.backup_remote import LOCAL_PREFIX, BackupCommit, BackupRemote, HubRemote, LocalDirRemote

DATABASE_COPY = "backup/database"
RUN_FILES = ("config.yaml", "lineage.json", "status.json", "metrics.jsonl", "log.txt", "preflight.json",
             "samples.jsonl", "tracking.json")
RESTORE_PATTERNS = ["snapshots/**", f"{DATABASE_COPY}/**", "runs/**"]


def remote_for(repo: str | None, config) -> BackupRemote:
    """The remote ALIGNUI_BACKUP_REPO (or an admin's typed repo id) names: file:<folder> or a hub dataset."""
    from alignui.team.spaces import check_repo_id, require_token

    repo = (repo or "").strip()
    if repo.startswith(LOCAL_PREFIX):
        if repo != (config.backup_repo or ""):  # a typed folder would let an admin write anywhere on the server
            raise UserError("a backup folder (file:...) can only be set with ALIGNUI_BACKUP_REPO; type a hub "
                            "dataset id such as my-name/alignui-backup")
        return LocalDirRemote(Path(repo[len(LOCAL_PREFIX):]).expanduser())
    repo = check_repo_id(repo)
    return HubRemote(repo, require_token(config))


@contextmanager
def _staging_lock(root: Path):
    """One backup at a time per data root (flock: across threads and processes alike)."""
    lock_path = Path(root) / "backup" / ".lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def stage_database(store: Any, root: Path) -> Path:
    """A fresh consistent copy of every table under <root>/backup/database (replacing the previous one)."""
    target = Path(root) / DATABASE_COPY
    if target.exists():
        shutil.rmtree(target)
    return store.export_tables(target)


def backup_files(root: Path) -> list[str]:
    """What a backup uploads, relative to `root`: snapshots, the staged database, runs' registry and adapter."""
    root = Path(root)
    files = [p for d in ("snapshots", DATABASE_COPY) if (root / d).is_dir() for p in (root / d).rglob("*")]
    for run in sorted(p for p in (root / "runs").glob("*") if p.is_dir()):
        files += [run / name for name in RUN_FILES]
        files += list((run / "adapter").rglob("*"))
    return sorted(p.relative_to(root).as_posix() for p in files if p.is_file() and not p.name.startswith("."))


@dataclass(frozen=True)
class BackupResult:
    repo_id: str
    files: int
    commit_url: str | None
    votes: int = 0

    def describe(self) -> str:
        return f"Backed up {self.files} files ({self.votes} votes) to the private dataset {self.repo_id}."


def backup_now(store: Any, root: Path, remote: BackupRemote) -> BackupResult:
    """One backup: stage the database copy, then upload it with every snapshot and run as one commit."""
    from alignui.db.backup import saved_votes

    root = Path(root)
    with _staging_lock(root):
        votes = saved_votes(store)  # counted before the copy: the copy holds at least these
        stage_database(store, root)
        files = backup_files(root)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        commit = remote.upload(root, files, f"alignui backup {stamp}: {votes} votes")
    return BackupResult(remote.name, len(files), commit.url, votes)


class BackupScheduler:
    """A thread that backs up once `every_votes` votes were saved since the last backup or `every_minutes`
    passed, whichever comes first (polling the vote count every `poll_s`); `commits` counts the backups."""

    def __init__(self, store: Any, root: Path, remote: BackupRemote, *, every_votes: int, every_minutes: int,
                 log: Callable[[str], None] = print, poll_s: float = 2.0, retry_s: float = 60.0):
        from alignui.db.backup import saved_votes

        self.store, self.root, self.remote, self.log = store, Path(root), remote, log
        self.every_votes, self.every_s, self.poll_s, self.retry_s = every_votes, every_minutes * 60, poll_s, retry_s
        self._votes_at, self._files_at = saved_votes(store), self._newest_file()
        self._last, self._retry_at, self.commits = time.monotonic(), 0.0, 0
        self._stop, self._wake = threading.Event(), threading.Event()
        self._asked: list[Future] = []
        self._lock, self._poll_lock = threading.Lock(), threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="alignui-backup")
        self._thread.start()

    def _due(self) -> str | None:
        from alignui.db.backup import saved_votes

        if time.monotonic() < self._retry_at:
            return None
        new = saved_votes(self.store) - self._votes_at
        if self.every_votes and new >= self.every_votes:
            return f"{new} new votes"
        if self.every_s and time.monotonic() - self._last >= self.every_s:
            return "timer"
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            with self._lock:
                asked, self._asked = self._asked, []
            if self._stop.is_set():
                break
            self.poll_once(asked)

    def poll_once(self, asked: list[Future] = ()) -> BackupResult | None:
        """One look at the triggers (what the thread does every poll_s): back up when due or asked."""
        with self._poll_lock:
            return self._backup(list(asked)) if asked or self._due() else None

    def _newest_file(self) -> float:
        """The newest modification time under snapshots/ and runs/ (0 when empty): what a backup holds beside the
        votes, so a clean stop also saves a snapshot or run made since the last backup without a new vote."""
        newest = 0.0
        for sub in ("snapshots", "runs"):
            for path in (self.root / sub).rglob("*") if (self.root / sub).is_dir() else ():
                try:
                    newest = max(newest, path.stat().st_mtime)
                except OSError:  # removed while we looked
                    continue
        return newest

    def _backup(self, asked: list[Future]) -> BackupResult | None:
        files = self._newest_file()  # taken before the copy: what changes during the upload counts as new
        try:
            result = backup_now(self.store, self.root, self.remote)
        except Exception as exc:  # noqa: BLE001 - a backup problem is logged, never fatal
            self._retry_at = time.monotonic() + self.retry_s
            self.log(f"alignui: backup to {self.remote.name} failed: {str(exc).splitlines()[0][:300]}")
            for future in asked:
                future.set_exception(exc)
            return None
        self._votes_at, self._files_at = result.votes, files
        self._last, self.commits = time.monotonic(), self.commits + 1
        for future in asked:
            future.set_result(result)
        return result

    def trigger(self) -> Future:
        """Back up now (on the scheduler's thread); the Future holds the BackupResult."""
        future: Future = Future()
        with self._lock:
            self._asked.append(future)
        self._wake.set()
        return future

    def stop(self) -> None:
        """Stop the thread; a clean stop (SIGTERM on a Space restart) backs up what is not backed up yet (votes,
        and snapshots or runs written since the last backup)."""
        from alignui.db.backup import saved_votes

        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=600)
        if saved_votes(self.store) != self._votes_at or self._newest_file() > self._files_at:
            self._backup([])


def start_periodic_backup(config, store: Any, *, log: Callable[[str], None] = print,
                          remote: BackupRemote | None = None, poll_s: float = 2.0) -> BackupScheduler | None:
    """The BackupScheduler ALIGNUI_BACKUP_REPO / _EVERY / _EVERY_VOTES ask for, or None (not configured, or
    no token: the app starts anyway and says why)."""
    if not config.backup_repo or not (config.backup_every_minutes or config.backup_every_votes):
        return None
    try:
        remote = remote or remote_for(config.backup_repo, config)
    except UserError as exc:
        log(f"alignui: periodic backup is OFF: {exc}")
        return None
    log(f"alignui: backing up to {remote.name} every {config.backup_every_votes or '-'} votes or "
        f"{config.backup_every_minutes or '-'} minutes, whichever comes first")
    return BackupScheduler(store, config.storage, remote, every_votes=config.backup_every_votes,
                           every_minutes=config.backup_every_minutes, log=log, poll_s=poll_s)
