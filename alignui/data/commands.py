"""The `export`, `import` and `stats` commands as functions of an open Store: one code path for the CLI and
for the running app the CLI hands a command to.

Owns: turning a command's fields (the names of its command-line options, e.g. include_arena, push_to_hub)
into ExportOptions / ImportOptions and one core call, and the JSON summary; the tokenizer for the export's
truncation report (the configured model's, else the demo model's, no weights loaded); `run_handed`, which
checks the handoff token first and then runs one of these commands in the app. The caller acts as
identity.LOCAL_OPERATOR: whoever runs the CLI or holds the token already holds the data root's files.

Invariants:
- The summary is the same dict whichever process runs the command.
- `run_handed` runs nothing, and reads none of the fields, before the token has been checked.
- A failed push leaves the written snapshot in place and says where it is.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from functools import partial
from typing import Any

from alignui.config import config_from
from alignui.errors import UserError, os_error_message, quoted
from alignui.paths import StorageLayout
from alignui.team.handoff import Handoff
from alignui.team.identity import LOCAL_OPERATOR


def _token_counter(max_length: int | None, model: str | None):
    """(count_tokens, None) with the current model's tokenizer, or (None, why not)."""
    if not max_length:
        return None, None
    from alignui.serving.truncation import load_tokenizer, truncation_report

    app = config_from(None, team=False)
    tokenizer, why = load_tokenizer(model or app.model, app.demo_model_dir, offline=app.offline)
    if tokenizer is None:
        return None, why
    return partial(truncation_report, tokenizer), None


def export_command(store, layout: StorageLayout, *, format: str = "hf", out: str | None = None,
                   plain: bool = False, include_arena: bool = False, test_size: float = 0.1,
                   push_to_hub: str | None = None, seed: int = 42, max_length: int = 1024,
                   model: str | None = None, policy: str = "keep_all", source: list | tuple = (),
                   public: bool = False) -> dict:
    """`export`: a new snapshot of the votes; {"snapshot", "path", "rows", "test_rows", ...}."""
    from alignui.data.export import ExportOptions, export_snapshot, push_export

    options = ExportOptions(format=format, plain=plain, include_arena=include_arena, test_size=test_size,
                            seed=seed, out=out, max_length=max_length or None, policy=policy,
                            sources=tuple(source or ()))
    count_tokens, note = _token_counter(max_length, model)
    result = export_snapshot(store, layout, options, LOCAL_OPERATOR, count_tokens=count_tokens,
                             tokenizer_note=note)
    summary = result.summary()
    if push_to_hub:
        summary["pushed"] = push_export(result.ref, push_to_hub, LOCAL_OPERATOR, private=not public)
    return summary


def import_command(store, layout: StorageLayout, *, source: str, format: str = "auto", split: str | None = None,
                   map: str | None = None) -> dict:
    """`import`: {"imported", "skipped", "reasons"}."""
    from alignui.data import ImportOptions, import_source

    options = ImportOptions(format=format, split=split, mapping=map)
    return import_source(store, source, options, LOCAL_OPERATOR).as_dict()


def stats_command(store, layout: StorageLayout, *, bootstrap: int = 1000, battles: str | None = None) -> dict:
    """`stats` on the database's arena votes (a --battles file never needs the database)."""
    from alignui.arena.battle_files import arena_summary, read_battles, stats_summary

    if battles:
        return stats_summary(read_battles(battles), bootstrap=bootstrap)
    return arena_summary(store, bootstrap=bootstrap)


COMMANDS: dict[str, Callable[..., dict]] = {"export": export_command, "import": import_command,
                                            "stats": stats_command}


def run_handed(handoff: Handoff, store, layout: StorageLayout, command: Any, fields: Any, token: Any) -> dict:
    """Run a command the CLI handed to this app: the token first, then `fields` (JSON text of the command's
    options) for COMMANDS[command]; returns its summary. Every refusal is a UserError."""
    handoff.check(token)
    if command not in COMMANDS:
        raise UserError(f"{quoted(command)} cannot be handed to the app; use one of {', '.join(COMMANDS)}")
    try:
        values = json.loads(fields) if isinstance(fields, str) else None
    except ValueError:
        values = None
    if not isinstance(values, dict):
        raise UserError("the handed command's options must be a JSON object; run the CLI of the same alignui")
    known = set(inspect.signature(COMMANDS[command]).parameters) - {"store", "layout"}
    if unknown := sorted(set(values) - known):  # a CLI of another version
        raise UserError(f"the app does not know the option(s) {quoted(', '.join(unknown))}; run the CLI of the "
                        "same alignui as the app")
    try:
        return COMMANDS[command](store, layout, **values)
    except OSError as exc:
        raise UserError(os_error_message(exc)) from exc
