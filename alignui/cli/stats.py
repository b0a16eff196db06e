"""`python -m alignui stats [--battles FILE] [--bootstrap N]`: a battles file, else the database's arena votes."""

from __future__ import annotations

import argparse

from alignui.arena.battle_files import arena_summary, read_battles, stats_summary


def cmd_stats(args: argparse.Namespace) -> dict:
    """The contract's stats summary: from --battles when given, else from the arena votes in the database."""
    if args.battles:
        return stats_summary(read_battles(args.battles), bootstrap=args.bootstrap)
    from alignui.cli.main import open_store

    with open_store(args) as store:
        return arena_summary(store, bootstrap=args.bootstrap)
