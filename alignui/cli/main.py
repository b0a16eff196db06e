"""`python -m alignui ...`: the command-line contract of DESIGN.md.

Owns: argument parsing and the output protocol. Every subcommand prints a JSON
summary as the last line of stdout on success; on failure it prints one line
`error: ...` to stderr and exits non-zero. Handlers return the summary dict;
the work itself lives in the library modules.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from alignui.cli.flags import add_app_arguments
from alignui.config import ConfigError, config_from, default_storage
from alignui.cli.data import add_export_arguments, cmd_export, cmd_import
from alignui.errors import StorageBusyError, UserError, os_error_message
from alignui.cli import train as train_command

Handler = Callable[[argparse.Namespace], dict]


def storage_of(args: argparse.Namespace) -> Path:
    """The data root a command works on: --storage, else the same default as the app."""
    return Path(args.storage) if getattr(args, "storage", None) else default_storage(os.environ)


def open_store(args: argparse.Namespace):
    """The Store under the command's data root (StorageBusyError if the app holds the file)."""
    from alignui.db import Store
    from alignui.paths import StorageLayout

    return Store(StorageLayout(storage_of(args)).ensure().db_path)


def cmd_serve(args: argparse.Namespace) -> dict:
    config = config_from(args)  # a bad flag is reported before any heavy library is imported
    from alignui.ui.app import launch  # gradio is only needed for serving

    launch(config, block=True)
    return {"served": f"http://{config.host}:{config.port}"}


def _stats(args: argparse.Namespace) -> dict:
    from alignui.cli.stats import cmd_stats  # pandas/scipy only when asked

    return cmd_stats(args)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (`error: ...`, exit 2), not the whole usage text; --help still
    prints the usage. Subcommand parsers are of this class too (argparse makes them with type(parent))."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog.removeprefix('python -m alignui ')}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m alignui", description="alignui: collect, export, train, compare")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="start the web app")
    add_app_arguments(p)
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("import", help="import preference data or prompts into the database")
    p.add_argument("source", help="a local .jsonl/.json/.csv/.parquet file or directory, or a hub dataset id")
    p.add_argument("--format", default="auto",
                   choices=["auto", "trl", "hh-rlhf", "ultrafeedback", "oasst", "unpaired", "prompts"])
    p.add_argument("--split", help="split of a dataset directory or hub dataset to read; for prompt lists, "
                   "'heldout' puts the prompts in the arena's held-out pool (default pool: train)")
    p.add_argument("--map", help="column mapping new=old,... e.g. prompt=question,chosen=good,rejected=bad")
    p.set_defaults(handler=cmd_import)

    p = sub.add_parser("export", help="export votes as an immutable dataset snapshot")
    p.add_argument("--format", default="hf", choices=["hf", "parquet", "jsonl"])
    p.add_argument("--out", help="directory to write the snapshot to (default: <storage>/snapshots/<id>)")
    p.add_argument("--plain", action="store_true", help="prompt/chosen/rejected as strings, not messages")
    p.add_argument("--include-arena", action="store_true", help="also export arena votes as pairs")
    p.add_argument("--test-size", type=float, default=0.1, help="fraction of rows in the test split")
    p.add_argument("--push-to-hub", metavar="REPO", help="also push to a (private) hub dataset repo")
    add_export_arguments(p)
    p.set_defaults(handler=cmd_export)

    from alignui.training.methods import METHODS  # the registry: no torch/trl import

    p = sub.add_parser("train", help="train on a snapshot: " + ", ".join(m.name for m in METHODS),
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="methods:\n" + "\n".join(f"  {m.name:<7} {m.help}" for m in METHODS))
    p.add_argument("method", choices=[m.name for m in METHODS])
    p.add_argument("--snapshot", help="snapshot id or path (default: the newest)")
    p.add_argument("--config", help="YAML preset (see configs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    train_command.add_arguments(p)
    p.set_defaults(handler=train_command.cmd_train)

    p = sub.add_parser("stats", help="win rates and Bradley-Terry ratings from arena votes or a battles file")
    p.add_argument("--battles", help="Chatbot Arena battles file (.csv or .jsonl)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds for the intervals")
    p.set_defaults(handler=_stats)

    from alignui.cli import round as round_command  # training in rounds (alignui.rounds)

    round_command.add_parser(sub)

    for name, sp in sub.choices.items():
        if name != "serve":
            sp.add_argument("--storage", help="data root (env ALIGNUI_STORAGE; default ./storage)")
    return parser


def run(args: argparse.Namespace) -> dict:
    """The command's summary; export/import/stats go to the running app when it holds the database."""
    try:
        return args.handler(args)
    except StorageBusyError as busy:
        from alignui.cli.handoff import HANDED, hand_off

        if args.command == "round":  # generation needs the app's model: the app's own section does the same
            raise StorageBusyError(f"{busy}: in the app, the Train tab's Next round section does the same steps "
                                   "(Generate round pairs, Export round snapshot, Train next round)") from busy
        if args.command not in HANDED:
            raise
        return hand_off(args, busy, storage_of(args))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except (UserError, ConfigError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or folder the command could not use: the OS says which and why
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(summary, default=str))
    return 0
