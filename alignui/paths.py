"""The data root's layout, and the one safe way to turn a user-given name into a path.

Owns: where the database, snapshots, runs and models live under the data root
(see DESIGN.md, "Data root"), and `safe_child`, which refuses names that would
leave their parent directory (path separators, '..', absolute paths, NUL).

Invariant: every path built from user input goes through `safe_child`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from alignui.errors import UserError, quoted

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class UnsafeNameError(UserError):
    """A name would escape its directory or is not a plain file name (a UserError: someone typed it)."""


def safe_child(parent: Path, name: str) -> Path:
    """`parent / name`, refusing anything but a plain name of letters, digits, '.', '_' and '-'."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or name in {".", ".."} or ".." in name:
        raise UnsafeNameError(
            f"{quoted(name)} is not a valid name: use letters, digits, '.', '_' or '-' (no '/', '\\' or '..')")
    parent = Path(parent).resolve()
    child = (parent / name).resolve()
    if child.parent != parent:
        raise UnsafeNameError(f"{quoted(name)} would leave {parent}")
    return child


@dataclass(frozen=True)
class StorageLayout:
    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / "alignui.duckdb"

    @property
    def snapshots_dir(self) -> Path:
        return self.root / "snapshots"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def demo_model_dir(self) -> Path:
        return self.models_dir / "demo"

    def snapshot_dir(self, snapshot_id: str) -> Path:
        return safe_child(self.snapshots_dir, snapshot_id)

    def run_dir(self, run_id: str) -> Path:
        return safe_child(self.runs_dir, run_id)

    def ensure(self) -> "StorageLayout":
        """Create the directories; raise PermissionError with a clear message if the root is not writable."""
        try:
            for d in (self.root, self.snapshots_dir, self.runs_dir, self.models_dir):
                d.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise PermissionError(
                f"cannot write to the data root {self.root} ({exc.strerror or exc}); "
                "pass --storage DIR (or set ALIGNUI_STORAGE) to a writable directory") from exc
        return self
