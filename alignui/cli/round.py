"""`python -m alignui round --parent RUN ...`: the next round of training in rounds, from the command line.

Owns: the round subcommand's flags and the order of its steps (alignui.rounds does the work):

    python -m alignui round --parent RUN [--prompts N] [--sides seeds|base] [--mix-old F]
                            [--judge oracle-closer] [--export] [--seed S] [--max-new-tokens T] [--storage DIR]

1. check the parent run (exists, finished, has an adapter) and the pool (a prompt to use): a refusal is one
   line and exit 2 with nothing written;
2. without --export: generate one pair per prompt from the parent's adapter and queue them for annotation
   (annotators vote on them in Annotate); with --judge oracle-closer the synthetic oracle votes instead
   (tests and demos; labelled as such) and the round is exported at once;
3. --export (after the votes): write the round's snapshot, lineage naming the parent run and the round.

The summary (last stdout line): {"round", "parent_run", "source", "queued", "pairs", "judged", "snapshot",
"rows", "next"}; "next" is the command that trains the round from the parent adapter.
"""

from __future__ import annotations

import argparse
import random

from alignui.team.identity import LOCAL_OPERATOR


def add_parser(sub) -> None:
    from alignui.rounds.plan import JUDGES, SIDES, RoundOptions

    help_of = {f: RoundOptions.__dataclass_fields__[f].metadata["help"] for f in RoundOptions.__dataclass_fields__}
    p = sub.add_parser("round", help="training in rounds: pairs from a run's adapter, voted, exported for its "
                                     "next run")
    p.add_argument("--parent", required=True, help="the finished run whose adapter the round starts from")
    p.add_argument("--prompts", type=int, default=64, help=help_of["prompts"])
    p.add_argument("--sides", default="seeds", choices=SIDES, help=help_of["sides"])
    p.add_argument("--mix-old", type=float, default=0.0, help=help_of["mix_old"])
    p.add_argument("--judge", default="", choices=JUDGES, help=help_of["judge"] + " (the data root's operator only)")
    p.add_argument("--export", action="store_true", help="export the round's voted pairs (after annotation)")
    p.add_argument("--seed", type=int, default=0, help=help_of["seed"])
    p.add_argument("--max-new-tokens", type=int, default=128, help=help_of["max_new_tokens"])
    p.add_argument("--temperature", type=float, default=0.8, help=help_of["temperature"])
    p.add_argument("--test-size", type=float, default=0.1, help=help_of["test_size"])
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads for generation; 0 = torch's default")
    p.set_defaults(handler=cmd_round)


def _options(args: argparse.Namespace):
    from alignui.rounds.plan import RoundOptions

    return RoundOptions(prompts=args.prompts, sides=args.sides, mix_old=args.mix_old, judge=args.judge,
                        seed=args.seed, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                        test_size=args.test_size)


def _handle(parent, threads: int):
    """The parent's base model, loaded once on this machine, as the serving layer's ModelHandle."""
    import torch

    from alignui.serving.loading import ModelHandle, load_pretrained, pick_device, skip_bitsandbytes_without_cuda
    from alignui.errors import UserError

    skip_bitsandbytes_without_cuda()
    if threads:
        torch.set_num_threads(threads)
    base = parent.lineage.get("base_model_path") or parent.lineage.get("base_model")
    if not base:
        raise UserError(f"run {parent.id} does not record its base model (lineage.json); retrain it with this version")
    device = pick_device("auto")
    model, tokenizer, dtype = load_pretrained(base, device)
    return ModelHandle(model, tokenizer, str(base), device, dtype)


def _index_runs(store, layout) -> None:
    from alignui.runs import list_run_dirs
    from alignui.training.app.runner import index_row

    for run in list_run_dirs(layout):
        store.upsert_run(run.id, **index_row(run))


def _next_command(parent, snapshot: str | None) -> str:
    method = parent.lineage.get("method") or "dpo"
    snap = snapshot or "<the round's snapshot: python -m alignui round --parent %s --export>" % parent.id
    return (f"python -m alignui train {method} --snapshot {snap} --set init_adapter={parent.id} "
            f"--set parent_run={parent.id}")


def cmd_round(args: argparse.Namespace) -> dict:
    from alignui.cli.main import open_store, storage_of
    from alignui.errors import UserError
    from alignui.paths import StorageLayout
    from alignui.rounds.plan import parent_run

    options = _options(args)
    layout = StorageLayout(storage_of(args))
    parent = parent_run(layout, args.parent)  # refused before the database is opened: nothing written
    if not layout.db_path.is_file():
        raise UserError(f"no prompts for the round: {layout.root} has no database yet; add pool prompts first "
                        "(python -m alignui import FILE --format prompts)")
    with open_store(args) as store:
        return _round(store, layout, parent, options, args)


def _round(store, layout, parent, options, args) -> dict:
    from alignui.rounds.export import export_round
    from alignui.rounds.generate import draw_prompts, queue_round
    from alignui.rounds.oracle import judge_with_oracle

    summary = {"round": parent.next_round, "parent_run": parent.id, "source": parent.source, "queued": 0,
               "judged": None, "snapshot": None, "rows": None}
    if not args.export:
        prompts = draw_prompts(store, parent, options.prompts, random.Random(options.seed))  # no prompt: refused
        _index_runs(store, layout)  # the CLI-trained runs join the index (the app does this on start)
        handle = _handle(parent, args.threads)
        try:
            from alignui.serving.adapters import adapter_server  # the handle's one server: batching finds the base

            queued = queue_round(store, adapter_server(handle), parent, store.get_run(parent.id), prompts, options,
                                 random.Random(options.seed + 1))
        finally:
            handle.close()
        summary["queued"] = len(queued.pair_ids)
        if options.judge:
            summary["judged"] = judge_with_oracle(store, parent.source, LOCAL_OPERATOR)
    summary["pairs"] = store.round_counts(parent.source)
    if args.export or options.judge:
        ref = export_round(store, layout, parent, options, LOCAL_OPERATOR)
        summary.update(snapshot=ref.id, rows=ref.manifest["rows"], lineage=ref.manifest.get("lineage"))
    summary["next"] = _next_command(parent, summary["snapshot"])
    return summary
