"""Who is acting, and what they may do.

Owns: the Identity record (name, role, where the name came from) and the one
permission check, `require(identity, action)`, that every privileged action
calls on the server side (UI callbacks and API endpoints alike), so hiding a
button is never the only protection.

Where names come from, in order: Hugging Face OAuth profile (on a Space),
Gradio auth login (ALIGNUI_USERS), else the name typed in the browser
(remembered there). Roles: names listed in the admins set are admins; with no
admins configured at all (a single-user local install) everyone is an admin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alignui.errors import UserError

#: Actions only admins may take.
ADMIN_ACTIONS = ("train", "export", "push", "delete", "edit_guidelines", "change_model", "fix_verdict", "import")
ANONYMOUS = "anonymous"
_NAME = re.compile(r"^[\w .@+-]{1,64}$")


class PermissionDenied(UserError):
    """The current user's role does not allow the action."""


@dataclass(frozen=True)
class Identity:
    name: str
    role: str = "annotator"  # 'annotator' | 'admin'
    source: str = "typed"  # 'oauth' | 'login' | 'typed' | 'anonymous' | 'api'

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


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
            return Identity(name, _role(name, admins), source)
    typed = clean_name(typed_name)
    if typed:
        return Identity(typed, _role(typed, admins), "typed")
    return Identity(ANONYMOUS, _role(None, admins), "anonymous")


def _role(name: str | None, admins: frozenset[str]) -> str:
    if not admins:  # nobody configured as admin: a local single-user install, everyone may do everything
        return "admin"
    return "admin" if name in admins else "annotator"


def require(identity: Identity, action: str) -> None:
    """Raise PermissionDenied unless `identity` may take `action`."""
    if action in ADMIN_ACTIONS and not identity.is_admin:
        raise PermissionDenied(f"{identity.name} may not {action.replace('_', ' ')}: only admins can "
                               "(ask an admin to add you to ALIGNUI_ADMINS)")
