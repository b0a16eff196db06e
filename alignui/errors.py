"""Errors a user can cause, each with a message that says what was wrong and what to do.

Owns: the small exception hierarchy shared by the core, the CLI (one-line
error, non-zero exit) and the UI (shown as a warning, nothing else changes),
and the two input helpers every entry point uses: `text_arg` (is it text that
can be stored?) and `quoted` (at most ~80 characters of an input in a message).
"""


class UserError(ValueError):
    """Bad input or a refused action; `str(err)` is the message to show, as is."""


class NotFoundError(UserError):
    """An id that does not exist (unknown pair, battle, snapshot or run)."""


class ConflictError(UserError):
    """The action contradicts what is already saved (e.g. a second vote on a decided pair)."""


class StorageBusyError(UserError):
    """Another process holds the database file (DuckDB allows one writer process)."""


#: The most characters of a user's input that an error message quotes (a 1 MB id must not make a 1 MB message).
QUOTE_CHARS = 80


def quoted(value: object, limit: int = QUOTE_CHARS) -> str:
    """`value` as repr() for a message, cut to about `limit` characters (with '…' and the full length)."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value):,} characters)"
    shown = repr(value)
    return shown if len(shown) <= limit + 2 else f"{shown[:limit]}… ({type(value).__name__})"


def text_arg(value: object, what: str, *, allow_none: bool = False) -> str:
    """`value` when it is text that can be stored (UTF-8: no lone surrogates); else a UserError naming `what`.
    None is '' when `allow_none`. Every entry point (API, UI, CLI) checks what a user typed with this."""
    if value is None and allow_none:
        return ""
    if not isinstance(value, str):
        raise UserError(f"the {what} must be text, got {type(value).__name__} {quoted(value)}: send a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = f"U+{ord(value[exc.start]):04X}"
        raise UserError(f"the {what} holds a character that is not valid text (a lone surrogate {char} at position "
                        f"{exc.start}): remove it and send it again") from None
    return value


def os_error_message(exc: OSError) -> str:
    """An OSError as one line (what the OS said, which file, what to do): the CLI's, and a handed command's."""
    return f"{exc.strerror or exc}: {quoted(exc.filename or '')}; check the path and its permissions"
