"""Running as a Hugging Face Space: persistence check, the hub token, and backups to a private dataset.

Owns: whether the data root survives a restart (a Space's own disk is
ephemeral; a mounted volume - persistent storage or a storage bucket at /data -
is not), the loud warning the UI shows when it does not, the HF_TOKEN check
for pushing, and backups of the data root (every snapshot plus a parquet copy
of the database) to a private hub dataset, on demand or every N minutes.

Invariants:
- A backup never deletes or changes anything under the data root except its
  own staging folder (<root>/backup/); a failed upload says why and what to do.
- The token never appears in a message or a log line.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alignui.errors import UserError

EPHEMERAL_FS = {"overlay", "tmpfs", "ramfs", "aufs", "squashfs"}
BACKUP_PATTERNS = ["snapshots/**", "backup/database/**"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


@dataclass(frozen=True)
class StorageStatus:
    persistent: bool
    on_space: bool
    root: Path
    mount: str  # mount point and file system type, e.g. "/data (ext4)"
    message: str | None  # what the UI shows, loudly, when data would vanish on restart


def read_mounts(text: str | None = None) -> list[tuple[str, str]]:
    """(mount point, file system type) pairs from /proc/mounts (or `text` in its format)."""
    if text is None:
        try:
            text = Path("/proc/mounts").read_text()
        except OSError:
            return []
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            mounts.append((parts[1].replace("\\040", " "), parts[2]))
    return mounts


def mount_of(path: Path, mounts: list[tuple[str, str]]) -> tuple[str, str]:
    """The mount (point, type) that holds `path`: the longest mount point that is a prefix of it."""
    path = str(Path(path).resolve())
    best = ("/", "unknown")
    for point, fstype in mounts:
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fstype)
    return best


def storage_status(config, mounts: list[tuple[str, str]] | None = None) -> StorageStatus:
    """Is the data root persistent? Off a Space we assume so (a normal disk); on a Space only a mounted
    volume that is not the container's own overlay or a RAM disk survives a restart."""
    root = Path(config.storage).resolve()
    point, fstype = mount_of(root, read_mounts() if mounts is None else mounts)
    on_space = bool(config.space_id)
    persistent = not on_space or (point != "/" and fstype not in EPHEMERAL_FS)
    message = None
    if not persistent:
        message = (f"This Space keeps its data in {root} on its temporary disk: every vote, snapshot and adapter "
                   "is lost when the Space restarts or sleeps. Attach persistent storage (a storage bucket "
                   "mounted at /data) in the Space's settings and restart, or set ALIGNUI_STORAGE to the mount "
                   "path; until then, back up from the Admin tab (ALIGNUI_BACKUP_REPO + HF_TOKEN).")
    return StorageStatus(persistent, on_space, root, f"{point} ({fstype})", message)


def require_token(config) -> str:
    """The HF token for pushing, or a UserError that says where to put one."""
    if not config.hf_token:
        where = ("in this Space's settings (Variables and secrets -> New secret HF_TOKEN)" if config.space_id
                 else "in the environment (export HF_TOKEN=hf_...)")
        raise UserError(f"pushing to the hub needs a token with write access: set HF_TOKEN {where}")
    return config.hf_token


def check_repo_id(repo_id: str | None) -> str:
    repo_id = (repo_id or "").strip()
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise UserError(f"{repo_id!r} is not a hub dataset id; write owner/name, e.g. my-name/alignui-backup")
    return repo_id


@dataclass(frozen=True)
class BackupResult:
    repo_id: str
    files: int
    commit_url: str | None

    def describe(self) -> str:
        return f"Backed up {self.files} files to the private dataset {self.repo_id}."


def stage_database(store: Any, root: Path) -> Path:
    """A fresh parquet copy of every table under <root>/backup/database (replacing the previous one)."""
    target = Path(root) / "backup" / "database"
    if target.exists():
        shutil.rmtree(target)
    return store.export_tables(target)


def backup_files(root: Path) -> list[str]:
    """The files under `root` a backup uploads, matched exactly as huggingface_hub's upload_folder matches."""
    from huggingface_hub.utils import filter_repo_objects

    paths = [p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file()]
    return sorted(filter_repo_objects(paths, allow_patterns=BACKUP_PATTERNS))


def _hub_failure(exc: Exception, repo_id: str) -> UserError:
    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return UserError(f"could not back up to {repo_id}: {reason}. Check the network, that HF_TOKEN may write to "
                     "that repo, and try again; nothing under the data root was changed")


def backup_now(store: Any, root: Path, repo_id: str, token: str, *, api: Any = None) -> BackupResult:
    """Upload every snapshot and a parquet copy of the database to the private dataset `repo_id`."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    repo_id = check_repo_id(repo_id)
    root = Path(root)
    stage_database(store, root)
    files = backup_files(root)
    api = api if api is not None else HfApi(token=token)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    # one commit holding exactly these files (upload_folder would match the same patterns, but in several commits)
    operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(root / f)) for f in files]
    try:
        api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True)
        info = api.create_commit(repo_id=repo_id, repo_type="dataset", operations=operations,
                                 commit_message=f"alignui backup {stamp}")
    except (HfHubHTTPError, OSError, ValueError) as exc:  # OfflineModeIsEnabled and connection errors are OSErrors
        raise _hub_failure(exc, repo_id) from exc
    except Exception as exc:  # httpx transport errors, which are not OSErrors
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise _hub_failure(exc, repo_id) from exc
        raise
    return BackupResult(repo_id, len(files), getattr(info, "commit_url", None))


def start_periodic_backup(config, store: Any, *, log: Callable[[str], None] = print, api: Any = None):
    """Every config.backup_every_minutes, push new snapshots and a fresh database copy (huggingface_hub's
    CommitScheduler, which uploads only changed files). None when not configured or the hub is unreachable
    (the app starts anyway and says why)."""
    if not config.backup_every_minutes:
        return None
    from huggingface_hub import CommitScheduler

    class DatabaseAndSnapshots(CommitScheduler):
        def push_to_hub(self):
            stage_database(store, config.storage)
            return super().push_to_hub()

    try:
        token = require_token(config)
        return DatabaseAndSnapshots(repo_id=check_repo_id(config.backup_repo), repo_type="dataset",
                                    folder_path=config.storage, every=config.backup_every_minutes, private=True,
                                    token=token, allow_patterns=BACKUP_PATTERNS, hf_api=api)
    except Exception as exc:  # noqa: BLE001 - a backup problem must never stop the app from starting
        log(f"alignui: periodic backup is OFF: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        return None

