"""The `import` and `export` subcommands: parsed arguments -> one alignui.data.commands call -> the summary.

Owns: the options of `export` beyond the contract's, and opening the Store for the command. The work is
alignui.data.commands (the same function the running app calls when the CLI hands the command over).
"""

from __future__ import annotations

import argparse


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `export` beyond the contract's (all optional)."""
    p.add_argument("--seed", type=int, default=42, help="seed of the train/test shuffle")
    p.add_argument("--max-length", type=int, default=1024,
                   help="report pairs longer than this many tokens for the current model (0: no report)")
    p.add_argument("--model", help="model whose tokenizer counts tokens (env ALIGNUI_MODEL; default: the app's)")
    p.add_argument("--policy", default="keep_all", choices=["keep_all", "majority", "drop_low_agreement"],
                   help="how votes of several annotators on one pair become rows")
    p.add_argument("--source", action="append", default=[], metavar="SOURCE", help="only export this source")
    p.add_argument("--public", action="store_true", help="with --push-to-hub: make the repo public")


def command_fields(args: argparse.Namespace) -> dict:
    """The command's own options, by name (what alignui.data.commands takes, and what is handed to the app)."""
    return {k: v for k, v in vars(args).items() if k not in {"handler", "command", "storage"}}


def cmd_import(args: argparse.Namespace) -> dict:
    from alignui.cli.main import open_store
    from alignui.data.commands import import_command  # pandas/duckdb only when asked

    with open_store(args) as store:
        return import_command(store, store_layout(args), **command_fields(args))


def store_layout(args: argparse.Namespace):
    from alignui.cli.main import storage_of
    from alignui.paths import StorageLayout

    return StorageLayout(storage_of(args)).ensure()


def cmd_export(args: argparse.Namespace) -> dict:
    from alignui.cli.main import open_store
    from alignui.data.commands import export_command

    layout = store_layout(args)
    with open_store(args) as store:
        return export_command(store, layout, **command_fields(args))
