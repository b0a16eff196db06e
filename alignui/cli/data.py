"""The `import` and `export` subcommands: parsed arguments -> options -> one core call -> the JSON summary.

Owns: mapping the command line onto ImportOptions / ExportOptions, finding a
tokenizer for the export's truncation report without loading any weights
(the configured model's, else the demo model's when the app would fall back
to it), and the push after a successful export. The command line acts as
identity.LOCAL_OPERATOR: whoever runs it already holds the data root's files.

Invariant: a failed push leaves the written snapshot in place and exits
non-zero with one line that says where the snapshot is.
"""

from __future__ import annotations

import argparse
from functools import partial

from alignui.config import config_from
from alignui.team.identity import LOCAL_OPERATOR


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


def cmd_import(args: argparse.Namespace) -> dict:
    from alignui.cli.main import open_store
    from alignui.data import ImportOptions, import_source

    options = ImportOptions(format=args.format, split=args.split, mapping=args.map)
    with open_store(args) as store:
        return import_source(store, args.source, options, LOCAL_OPERATOR).as_dict()


def _token_counter(args: argparse.Namespace, layout):
    """(count_tokens, None) with the current model's tokenizer, or (None, why not)."""
    if not args.max_length:
        return None, None
    from alignui.serving.truncation import load_tokenizer, truncation_report

    app = config_from(None, team=False)
    model = getattr(args, "model", None) or app.model
    tokenizer, why = load_tokenizer(model, app.demo_model_dir, offline=app.offline)
    if tokenizer is None:
        return None, why
    return partial(truncation_report, tokenizer), None


def cmd_export(args: argparse.Namespace) -> dict:
    from alignui.cli.main import open_store, storage_of
    from alignui.data.export import ExportOptions, export_snapshot, push_export
    from alignui.paths import StorageLayout

    options = ExportOptions(format=args.format, plain=args.plain, include_arena=args.include_arena,
                            test_size=args.test_size, seed=args.seed, out=args.out,
                            max_length=args.max_length or None, policy=args.policy, sources=tuple(args.source))
    layout = StorageLayout(storage_of(args)).ensure()
    with open_store(args) as store:
        count_tokens, note = _token_counter(args, layout)
        result = export_snapshot(store, layout, options, LOCAL_OPERATOR, count_tokens=count_tokens,
                                 tokenizer_note=note)
    summary = result.summary()
    if args.push_to_hub:
        summary["pushed"] = push_export(result.ref, args.push_to_hub, LOCAL_OPERATOR, private=not args.public)
    return summary
