"""The handoff between `python -m alignui export|stats|import` and the app that holds the database.

Owns: the handoff file in the data root (<root>/.alignui-admin.json: the app's local URL, a random token,
its pid, whether Gradio's login page is on), the token check, and the login account a CLI caller uses
when the app has a login page. DuckDB lets one process hold the file, so while the app runs the CLI hands
its command to the app (alignui.cli.handoff) and the app runs it (alignui.data.commands.run_handed).

Invariants:
- The file is created with mode 0600 (only the owner of the data root may read the token) and appears
  complete or not at all (written beside, then renamed into place).
- The token is 256 random bits, compared with hmac.compare_digest; a wrong or missing token runs nothing.
- `withdraw()` removes the file only while it still holds this app's token (a newer app's file stays).
- The token never appears in a message or a log line.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from alignui.errors import UserError

HANDOFF_FILE = ".alignui-admin.json"
#: The login name a CLI caller signs in with (its password is the token). ':' cannot occur in an
#: ALIGNUI_USERS name (name:password), so no annotator account can be this one.
HANDOFF_USER = "alignui:cli"


def handoff_path(root: Path) -> Path:
    return Path(root) / HANDOFF_FILE


def read_handoff(root: Path) -> dict | None:
    """What the running app wrote (url, token, pid, login), or None when there is no readable handoff file."""
    try:
        data = json.loads(handoff_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str) or not isinstance(data.get("token"), str):
        return None
    return data


@dataclass
class Handoff:
    """One app's handoff: its token, and (once published) the file that tells the CLI where the app is."""

    root: Path
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    published: bool = False

    def check(self, given: object) -> None:
        """Refuse (UserError) unless `given` is this app's token; nothing else happens before this passes."""
        ok = isinstance(given, str) and hmac.compare_digest(given.encode("utf-8", "replace"),
                                                            self.token.encode())
        if not ok:
            raise UserError("refused: this endpoint runs only for the command line on the app's own machine "
                            f"(it reads the token in {HANDOFF_FILE} in the data root)")

    def login(self, accounts: Callable[[str, str], bool] | None) -> Callable[[str, str], bool] | None:
        """Gradio's auth= callable: the app's accounts, plus HANDOFF_USER with the token as password."""
        if accounts is None:
            return None

        def check(name: str, password: str) -> bool:
            if name == HANDOFF_USER:
                return hmac.compare_digest((password or "").encode("utf-8", "replace"), self.token.encode())
            return accounts(name, password)

        return check

    def publish(self, url: str, *, login: bool) -> Path:
        """Write the handoff file (mode 0600, atomically) saying where this app answers."""
        path = handoff_path(self.root)
        tmp = path.with_name(f"{HANDOFF_FILE}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"url": url, "token": self.token, "pid": os.getpid(), "login": login}, fh)
        os.replace(tmp, path)
        self.published = True
        return path

    def withdraw(self) -> None:
        """Remove the handoff file if it is still this app's (on a clean close)."""
        if not self.published:
            return
        self.published = False
        current = read_handoff(self.root)
        if current is not None and hmac.compare_digest(current["token"].encode(), self.token.encode()):
            handoff_path(self.root).unlink(missing_ok=True)
