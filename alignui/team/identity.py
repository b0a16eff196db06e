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
from collections.abc import Callable
from dataclasses import dataclass

from alignui.errors import UserError
from alignui.config import NAME_PATTERN
from alignui.vocab import ANONYMOUS

#: Actions only admins may take.
ADMIN_ACTIONS = ("train", "export", "push", "delete", "edit_guidelines", "change_model", "fix_verdict", "import",
                 "manage_users", "configure", "review_everyones_votes", "run_judges")
ROLES = ("annotator", "admin")
SIGNED_IN = ("oauth", "login", "cli")


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
    if not NAME_PATTERN.match(name):
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


def require_name(identity: Identity) -> Identity:
    """`identity`, or a UserError when nobody is signed in and no name was typed: the browser asks for a name
    before the first vote instead of saving it as 'anonymous' (API callers without a name still may)."""
    if identity.source == "anonymous":
        raise UserError("type your name in the 'Your name' box first (it is remembered in this browser), then "
                        "vote again: each verdict is saved under the name of who gave it")
    return identity


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
