"""Who is acting, and what they may do.

Owns: the Identity record (name, role, where the name came from), the one
permission check, `require(identity, action)`, that every privileged action
calls on the server side (UI callbacks and API endpoints alike, so hiding a
button is never the only protection), and parsing the account and admin
settings (ALIGNUI_USERS, ALIGNUI_ADMINS) with the login check Gradio's auth calls.

Where names come from, in order: Hugging Face OAuth profile (on a Space),
Gradio auth login (ALIGNUI_USERS), else the name typed in the browser.

Invariants:
- With no admins configured at all (a single-user local install) everyone is an admin.
- With admins configured, only a *signed-in* name (OAuth or login) can be an admin:
  a typed name is never trusted with the admin role, so typing "root" gains nothing.
- Passwords are compared in constant time and never printed (AppConfig.describe hides them).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alignui.errors import UserError

#: Actions only admins may take.
ADMIN_ACTIONS = ("train", "export", "push", "delete", "edit_guidelines", "change_model", "fix_verdict", "import",
                 "manage_users", "configure")
ROLES = ("annotator", "admin")
ANONYMOUS = "anonymous"
SIGNED_IN = ("oauth", "login", "cli")
_NAME = re.compile(r"^[\w .@+-]{1,64}$")


class PermissionDenied(UserError):
    """The current user's role does not allow the action."""


@dataclass(frozen=True)
class Identity:
    name: str
    role: str = "annotator"  # 'annotator' | 'admin'
    source: str = "typed"  # 'oauth' | 'login' | 'typed' | 'anonymous' | 'api' | 'cli'

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def signed_in(self) -> bool:
        return self.source in SIGNED_IN

    def describe(self) -> str:
        how = {"oauth": "signed in with Hugging Face", "login": "signed in", "typed": "name typed in this browser",
               "anonymous": "not signed in", "cli": "on the command line"}.get(self.source, self.source)
        return f"{self.name} ({self.role}, {how})"


#: Whoever runs `python -m alignui ...` on the machine already holds the data root's files.
LOCAL_OPERATOR = Identity("local", "admin", "cli")


def clean_name(name: str | None) -> str | None:
    """A typed annotator name, trimmed; None when empty; UserError when it holds odd characters."""
    name = (name or "").strip()
    if not name:
        return None
    if not _NAME.match(name):
        raise UserError("a name may hold letters, digits, spaces and . @ + - _ (at most 64 characters)")
    return name


def resolve(*, oauth_name: str | None = None, login_name: str | None = None, typed_name: str | None = None,
            admins: frozenset[str] = frozenset()) -> Identity:
    """The identity for one request, from the strongest source available."""
    for name, source in ((oauth_name, "oauth"), (login_name, "login")):
        if name:
            return Identity(name, _role(name, admins, signed_in=True), source)
    typed = clean_name(typed_name)
    if typed:
        return Identity(typed, _role(typed, admins, signed_in=False), "typed")
    return Identity(ANONYMOUS, _role(None, admins, signed_in=False), "anonymous")


def _role(name: str | None, admins: frozenset[str], *, signed_in: bool) -> str:
    if not admins:  # nobody configured as admin: a local single-user install, everyone may do everything
        return "admin"
    return "admin" if signed_in and name in admins else "annotator"


def refusal(identity: Identity, what: str) -> str:
    """Why `identity` may not do `what` (words, e.g. "export"), and how to get the right."""
    how = "" if identity.signed_in else "sign in with an admin account, or "
    return f"{identity.name} may not {what}: only admins can ({how}ask an admin to add you to ALIGNUI_ADMINS)"


def require(identity: Identity, action: str) -> None:
    """Raise PermissionDenied unless `identity` may take `action`."""
    if action in ADMIN_ACTIONS and not identity.is_admin:
        raise PermissionDenied(refusal(identity, action.replace("_", " ")))


# -- settings: accounts and admins ---------------------------------------------------------------
def parse_accounts(text: str | None) -> tuple[tuple[str, str], ...]:
    """ALIGNUI_USERS: 'ann:pw,bob:pw' (commas or newlines), or the path of a file with one name:password a line
    (there a password may hold commas). Blank lines and lines starting with '#' are ignored; a name may appear once.
    """
    text = (text or "").strip()
    if not text:
        return ()
    where, separators = "ALIGNUI_USERS", r"[,\n]"
    if ":" not in text or Path(text).is_file():
        path = Path(text).expanduser()
        if not path.is_file():
            raise UserError(f"ALIGNUI_USERS is neither name:password pairs nor a readable file: {text!r}")
        text, where, separators = path.read_text(encoding="utf-8"), str(path), r"\n"
    accounts: dict[str, str] = {}
    for n, entry in enumerate(re.split(separators, text), 1):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        name, sep, password = entry.partition(":")
        name = name.strip()
        if not sep or not name or not password:
            raise UserError(f"{where}: entry {n} is not name:password (got {name or entry[:20]!r}); "
                            "write e.g. ann:secret1,bob:secret2")
        if not _NAME.match(name):
            raise UserError(f"{where}: the name {name!r} may hold only letters, digits, spaces and . @ + - _")
        if name in accounts:
            raise UserError(f"{where}: the name {name!r} appears twice; keep one password per name")
        accounts[name] = password
    return tuple(accounts.items())


def parse_admins(text: str | None, *, space_author: str | None = None) -> frozenset[str]:
    """ALIGNUI_ADMINS as a set of names; unset on a Space: the Space's owner (SPACE_AUTHOR_NAME)."""
    if text is None:
        return frozenset({space_author}) if space_author else frozenset()
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise UserError(f"ALIGNUI_ADMINS holds names that cannot sign in: {bad}; use comma-separated user names")
    return frozenset(names)


def login_checker(accounts: tuple[tuple[str, str], ...]) -> Callable[[str, str], bool] | None:
    """Gradio's `auth=` callable for these accounts (None: no accounts, no login page)."""
    if not accounts:
        return None
    table = {name: password.encode() for name, password in accounts}

    def check(name: str, password: str) -> bool:
        expected = table.get(name)
        # compare even for unknown names, so the time taken does not say which names exist
        ok = hmac.compare_digest(expected or b"\0" * 16, (password or "").encode())
        return expected is not None and ok

    return check
