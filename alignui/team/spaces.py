"""Running as a Hugging Face Space: persistence check, the hub token, and the backup repo's id.

Owns: whether the data root survives a restart (a Space's own disk is
ephemeral; a mounted volume - persistent storage or a storage bucket at /data -
is not), the loud warning the UI shows when it does not, the HF_TOKEN check
for pushing, and checking a hub dataset id. Backups and restores live in
alignui.team.backup and alignui.team.restore.

Invariant: the token never appears in a message or a log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from alignui.errors import UserError

EPHEMERAL_FS = {"overlay", "tmpfs", "ramfs", "aufs", "squashfs"}
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
