"""Errors a user can cause, each with a message that says what was wrong and what to do.

Owns: the small exception hierarchy shared by the core, the CLI (one-line
error, non-zero exit) and the UI (shown as a warning, nothing else changes).
"""


class UserError(ValueError):
    """Bad input or a refused action; `str(err)` is the message to show, as is."""


class NotFoundError(UserError):
    """An id that does not exist (unknown pair, battle, snapshot or run)."""


class ConflictError(UserError):
    """The action contradicts what is already saved (e.g. a second vote on a decided pair)."""


class StorageBusyError(UserError):
    """Another process holds the database file (DuckDB allows one writer process)."""
