"""The Train tab's "Next round" actions as typed functions (the UI callbacks call exactly one each).

Owns: the permission check of every action (generating a round, exporting it and starting its run are the
operator's: `train` and `export`), the parents a round can start from (finished DPO, KTO, ORPO or SimPO runs
with an adapter), the round's status line, and the run of the next round: the parent's method with its own
settings, `init_adapter` = the parent (its adapter is loaded as the trainable LoRA) and `parent_run` = the parent.

Invariants: generation uses the app's one loaded model with the parent adapter hot-swapped in (the same
AdapterServer the arena uses); nothing here imports gradio.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from alignui.db import Store
from alignui.errors import UserError
from alignui.paths import StorageLayout
from alignui.rounds.export import export_round
from alignui.rounds.generate import draw_prompts, queue_round
from alignui.rounds.plan import ROUND_METHOD_NAMES, ROUND_METHODS, RoundOptions, parent_run
from alignui.serving.adapters import adapter_server
from alignui.serving.loading import ModelHandle
from alignui.team.identity import Identity, require


def parent_choices(store: Store) -> list[str]:
    """Finished runs a round can start from, newest first."""
    return [r.id for r in store.list_adapters() if r.method in ROUND_METHODS]


def round_status(store: Store, layout: StorageLayout, parent_id: str | None) -> str:
    """One line: the round's number and its pairs (queued, waiting for a vote, voted)."""
    if not parent_id:
        return f"Pick a finished {ROUND_METHOD_NAMES} run: its adapter writes the next round's pairs."
    parent = parent_run(layout, parent_id)
    c = store.round_counts(parent.source)
    if not c["pairs"]:
        return f"Round {parent.next_round} from `{parent.id}`: no pairs yet. Generate them, then vote in Annotate."
    return (f"Round {parent.next_round} from `{parent.id}`: **{c['pairs']}** pairs · **{c['queued']}** queued · "
            f"**{c['pending']}** waiting for a vote · **{c['pairs_ab']}** A/B verdicts (become training pairs)")


def generate_round(store: Store, model: ModelHandle, layout: StorageLayout, parent_id: str, options: RoundOptions,
                   rng: random.Random, identity: Identity, progress: Callable[[int, int], None] | None = None) -> str:
    """Queue the round's pairs for annotation; returns what happened, in words."""
    require(identity, "train")
    parent = parent_run(layout, parent_id)
    prompts = draw_prompts(store, parent, options.prompts, rng)
    queued = queue_round(store, adapter_server(model), parent, store.get_run(parent.id), prompts, options, rng,
                         progress=progress)
    return (f"Queued {len(queued.pair_ids)} pairs of round {queued.round} from `{parent.id}`: annotators get them "
            "first when they press Next in Annotate.")


def export_next_round(store: Store, layout: StorageLayout, parent_id: str, options: RoundOptions,
                      identity: Identity) -> tuple[str, str]:
    """(snapshot id, message) of the round's snapshot."""
    require(identity, "export")
    ref = export_round(store, layout, parent_run(layout, parent_id), options, identity)
    lineage = ref.manifest.get("lineage") or {}
    return ref.id, (f"Exported snapshot `{ref.id}` ({ref.manifest['rows']} rows, "
                    f"{lineage.get('mixed_rows', 0)} from the parent's snapshot), round {lineage.get('round')}.")


def next_round_config(layout: StorageLayout, parent_id: str):
    """(method, config) of the next round: the parent's method and settings, starting from its adapter."""
    from alignui.training.methods import get_method

    parent = parent_run(layout, parent_id)
    method, settings = parent.run.read_config()
    method = method or "dpo"
    if method not in ROUND_METHODS:
        raise UserError(f"run {parent.id} is a {method} run; rounds continue {ROUND_METHOD_NAMES} runs (their "
                        "adapter is the policy)")
    settings = {k: v for k, v in settings.items() if k not in ("init_adapter", "parent_run")}
    return method, get_method(method).config_class().from_mapping({**settings, "init_adapter": parent.id,
                                                                   "parent_run": parent.id})


def start_next_round(runner, layout: StorageLayout, parent_id: str, snapshot_id: str, identity: Identity) -> str:
    """Start the round's run (the parent's method; queued behind a running job); returns its run id."""
    require(identity, "train")
    if not snapshot_id:
        raise UserError("export the round's snapshot first (Export round snapshot), then train on it")
    method, config = next_round_config(layout, parent_id)
    return runner.start(method, snapshot_id, config, identity).id
