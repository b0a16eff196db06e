"""The CLI's side of the handoff: a command that finds the database held by the running app is sent to it.

Owns: deciding which commands may be handed over (export, import, stats), making their paths absolute (the
app runs in another working directory), calling the app's API-only endpoint /cli_handoff with the token
from the handoff file (alignui.team.handoff), and turning every way that can fail into one UserError line.

Invariants:
- The summary printed is the app's answer, which is what the same command prints without the app
  (both run alignui.data.commands).
- With no handoff file, or an app that does not answer, the command refuses in one line naming the
  process that holds the lock (when DuckDB's message says) and writes nothing.
"""

from __future__ import annotations

import argparse
import html
import json
import re
from pathlib import Path

from alignui.errors import StorageBusyError, UserError, quoted
from alignui.team.handoff import HANDOFF_FILE, HANDOFF_USER, read_handoff

HANDED = ("export", "import", "stats")
_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


def lock_holder(busy: StorageBusyError) -> str:
    """Who holds the database, as DuckDB's lock message says ('process 123 (/usr/bin/python3)')."""
    match = _HOLDER.search(str(busy.__cause__ or busy))
    return f"process {match['pid']} ({match['exe']})" if match else "another process"


def handed_fields(args: argparse.Namespace) -> dict:
    """The command's options with local paths made absolute (the app does not share our working directory)."""
    from alignui.cli.data import command_fields

    fields = command_fields(args)
    for name in ("out", "battles", "source"):
        value = fields.get(name)
        if isinstance(value, str) and value and (name != "source" or Path(value).exists()):
            fields[name] = str(Path(value).expanduser().resolve())
    return fields


def _connect(info: dict, holder: str):
    from gradio_client import Client

    auth = (HANDOFF_USER, info["token"]) if info.get("login") else None
    try:
        return Client(info["url"], auth=auth, verbose=False, download_files=False)
    except Exception as exc:  # noqa: BLE001 - connection refused, timeouts, a stale file: one line, not a traceback
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise UserError(f"the database is held by {holder}, and the app named in {HANDOFF_FILE} "
                        f"({quoted(info['url'])}) did not answer ({reason}); stop that process, or start the "
                        "app again, and retry") from None


def hand_off(args: argparse.Namespace, busy: StorageBusyError, root: Path) -> dict:
    """Run args' command in the app holding the database under `root`; its summary, or a UserError."""
    from gradio_client.exceptions import AppError

    holder = lock_holder(busy)
    info = read_handoff(root)
    if info is None:
        raise UserError(f"the database {root / 'alignui.duckdb'} is held by {holder}, and no running alignui app "
                        f"offers to take the command ({HANDOFF_FILE} is missing in {root}); stop that process "
                        "and retry") from None
    client = _connect(info, holder)
    try:
        answer = client.predict(args.command, json.dumps(handed_fields(args)), info["token"],
                                api_name="/cli_handoff")
    except AppError as exc:  # a refusal or a UserError inside the app: its one line
        raise UserError(html.unescape(str(exc))) from None
    except Exception as exc:  # noqa: BLE001 - the app went away mid-call
        raise UserError(f"the app at {quoted(info['url'])} failed to run {args.command} "
                        f"({type(exc).__name__}); retry, or stop the app and run it again") from None
    return json.loads(answer)
