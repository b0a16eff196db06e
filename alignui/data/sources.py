"""Where an import started from the web app may read: an uploaded file, a folder the operator listed, a hub id.

Owns: `web_source`, the one check between what a browser (or anyone calling the
app's events) sends as an import or "Read columns" source and the file system.

Invariants:
- An uploaded file is read where Gradio stored it (Gradio refuses a file input
  that points outside its upload folder before any callback runs).
- A typed path is read only when it resolves (symlinks and `..` included) inside
  one of AppConfig.import_dirs (ALIGNUI_IMPORT_DIRS); anything else is refused
  with the same message whether or not it exists, so the check says nothing
  about the server's files.
- A typed hub dataset id (owner/name, and no such local path) is allowed.
- The command line is not confined: whoever runs it already holds the machine.
"""

from __future__ import annotations

from pathlib import Path

from alignui.data.readers import HUB_ID
from alignui.errors import UserError, quoted, text_arg


class OutsideImportDirs(UserError):
    """A typed server path outside the folders the operator opened to web imports."""


def _inside(path: Path, folders: tuple[Path, ...]) -> bool:
    return any(path == folder or folder in path.parents for folder in folders)


def web_source(upload: str | None, typed: object, import_dirs: tuple[Path, ...]) -> str:
    """The source a web import reads: the uploaded file, else the typed path (inside `import_dirs`) or hub id."""
    if upload:
        return str(upload)
    typed = text_arg(typed, "path or dataset id", allow_none=True).strip()
    if not typed:
        raise UserError("Upload a file, or type a path on the server or a hub dataset id, first (a file still "
                        "uploading is not there yet: wait until its size shows beside its name).")
    path = Path(typed).expanduser()
    local = path.is_absolute() or typed.startswith((".", "~")) or path.exists()
    if not local and HUB_ID.match(typed):
        return typed
    resolved = path.resolve()
    if not _inside(resolved, import_dirs):
        listed = ", ".join(str(d) for d in import_dirs) or "none yet"
        raise OutsideImportDirs(f"{quoted(typed)} is not inside a folder the web app may import from ({listed}): "
                                "upload the file instead, or ask the operator to add its folder to "
                                "ALIGNUI_IMPORT_DIRS")
    return str(resolved)
