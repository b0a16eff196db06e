"""Where backups go: the one thin interface to the hub (BackupRemote), and its two implementations.

Owns: HubRemote (a private hub dataset, through huggingface_hub's HfApi.create_commit / list_repo_commits /
snapshot_download) and LocalDirRemote (a folder laid out exactly like that dataset repo: the data root's
backed-up files at the same relative paths, plus a commit log `.commits.jsonl`, the stand-in for the repo's
git history). ALIGNUI_BACKUP_REPO=file:/some/folder picks the folder: a mounted disk, and what the tests use.
Everything above this interface (alignui.team.backup) is the production path for both.

Invariants:
- `upload` is one commit: all of `files` or, on failure, a UserError saying why and what to do.
- `latest()` is None when nothing was backed up yet; `download` fetches that newest commit's files only.
- The token never appears in a message or a log line.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from alignui.errors import UserError

LOCAL_PREFIX = "file:"
COMMITS = ".commits.jsonl"


@dataclass(frozen=True)
class BackupCommit:
    id: str
    created_at: datetime
    url: str | None = None


class BackupRemote(Protocol):
    name: str  # what messages call it: the repo id, or file:<folder>

    def upload(self, folder: Path, files: list[str], message: str) -> BackupCommit: ...

    def latest(self) -> BackupCommit | None: ...

    def download(self, commit: BackupCommit, dest: Path, patterns: list[str]) -> Path: ...


def _hub_failure(exc: Exception, name: str, doing: str = "back up to") -> UserError:
    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return UserError(f"could not {doing} {name}: {reason}. Check the network, that HF_TOKEN may write to "
                     "that repo, and try again; nothing under the data root was changed")


def _hub_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import HfHubHTTPError

    return (HfHubHTTPError, OSError, ValueError)  # OfflineModeIsEnabled and connection errors are OSErrors


class HubRemote:
    """A private hub dataset repo (HfApi); `api` may be a recorder in tests."""

    def __init__(self, repo_id: str, token: str | None, api: Any = None):
        from huggingface_hub import HfApi

        self.name, self.token = repo_id, token
        self.api = api if api is not None else HfApi(token=token)

    def _call(self, doing: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            # httpx transport errors are not OSErrors; anything else is our bug and keeps its traceback
            if isinstance(exc, _hub_errors()) or type(exc).__module__.startswith(("httpx", "httpcore")):
                raise _hub_failure(exc, self.name, doing) from exc
            raise

    def upload(self, folder: Path, files: list[str], message: str) -> BackupCommit:
        from huggingface_hub import CommitOperationAdd

        # one commit holding exactly these files (upload_folder would match the same patterns, but may split)
        operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(Path(folder) / f)) for f in files]
        self._call("back up to", self.api.create_repo, self.name, repo_type="dataset", private=True, exist_ok=True)
        info = self._call("back up to", self.api.create_commit, repo_id=self.name, repo_type="dataset",
                          operations=operations, commit_message=message)
        return BackupCommit(getattr(info, "oid", "") or "", datetime.now(timezone.utc),
                            getattr(info, "commit_url", None))

    def latest(self) -> BackupCommit | None:
        from huggingface_hub.errors import RepositoryNotFoundError

        def commits_or_none():
            try:
                return self.api.list_repo_commits(self.name, repo_type="dataset")
            except RepositoryNotFoundError:
                return None

        commits = self._call("read the backups of", commits_or_none) or []
        backups = [c for c in commits if c.title.startswith("alignui backup")]
        return BackupCommit(backups[0].commit_id, backups[0].created_at) if backups else None

    def download(self, commit: BackupCommit, dest: Path, patterns: list[str]) -> Path:
        from huggingface_hub import snapshot_download

        return Path(self._call("restore from", snapshot_download, self.name, repo_type="dataset",
                               revision=commit.id, local_dir=dest, token=self.token, allow_patterns=patterns))


class LocalDirRemote:
    """A folder laid out like the backup repo: files at their repo paths, commits in `.commits.jsonl`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.name = f"{LOCAL_PREFIX}{self.root}"

    def commits(self) -> list[dict]:
        log = self.root / COMMITS
        return [json.loads(line) for line in log.read_text().splitlines() if line] if log.exists() else []

    def upload(self, folder: Path, files: list[str], message: str) -> BackupCommit:
        try:
            for f in files:
                target = self.root / f
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
                shutil.copyfile(Path(folder) / f, tmp)
                tmp.replace(target)  # a reader sees the old file or the new one
            commit = BackupCommit(uuid.uuid4().hex, datetime.now(timezone.utc))
            with (self.root / COMMITS).open("a", encoding="utf-8") as log:
                log.write(json.dumps({"id": commit.id, "created_at": commit.created_at.isoformat(),
                                      "message": message, "files": len(files)}) + "\n")
        except OSError as exc:
            raise UserError(f"could not back up to {self.name}: {exc.strerror or exc}; check that folder "
                            "and its permissions") from exc
        return commit

    def latest(self) -> BackupCommit | None:
        commits = self.commits()
        if not commits:
            return None
        return BackupCommit(commits[-1]["id"], datetime.fromisoformat(commits[-1]["created_at"]))

    def download(self, commit: BackupCommit, dest: Path, patterns: list[str]) -> Path:
        from huggingface_hub.utils import filter_repo_objects

        paths = [p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()]
        for f in filter_repo_objects(paths, allow_patterns=patterns):
            (Path(dest) / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.root / f, Path(dest) / f)
        return Path(dest)
