"""`python -m alignui stats [--battles FILE] [--bootstrap N]`: a battles file, else the database's arena votes."""

from __future__ import annotations

import argparse

from alignui.data.commands import stats_command


def cmd_stats(args: argparse.Namespace) -> dict:
    """The contract's stats summary: from --battles when given, else from the arena votes in the database."""
    if args.battles:
        return stats_command(None, None, battles=args.battles, bootstrap=args.bootstrap)
    from alignui.cli.data import command_fields, store_layout
    from alignui.cli.main import open_store

    with open_store(args) as store:
        return stats_command(store, store_layout(args), **command_fields(args))
