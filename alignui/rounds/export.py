"""A round's snapshot: the voted pairs of the round, with the parent run and round number in its manifest.

Owns: `export_round` (alignui.data.export with the round's `source` as the only source and `lineage` in
the manifest) and, when asked (`mix_old` > 0), a derived snapshot that adds that share of the parent
run's snapshot train rows to the round's train split (prompt, chosen, rejected columns; the test split
stays the round's own, so held-out accuracy measures the new data). Mixing in past rounds' data is the
usual guard against forgetting in iterative DPO.

Invariants: snapshots are immutable and appear whole (written in a hidden sibling, renamed into place,
files read-only); the mixed snapshot's sha256 is the snapshot format's content hash of what it holds.
"""

from __future__ import annotations

import json
import os
import random
import shutil

from alignui.data.export import ExportOptions, export_snapshot, _freeze
from alignui.data.snapshot import DATASET_DIR, MANIFEST, SnapshotRef, dataset_sha256, load_snapshot
from alignui.db import Store
from alignui.db.core import new_id
from alignui.errors import UserError
from alignui.paths import StorageLayout
from alignui.rounds.plan import ParentRun, RoundOptions, snapshot_lineage
from alignui.team.identity import Identity

PAIR_COLUMNS = ["prompt", "chosen", "rejected"]


def export_round(store: Store, layout: StorageLayout, parent: ParentRun, options: RoundOptions,
                 identity: Identity) -> SnapshotRef:
    """The round's snapshot (mixed with the parent's snapshot when options.mix_old > 0)."""
    counts = store.round_counts(parent.source)
    if not counts["pairs_ab"]:
        raise UserError(f"nothing to export for round {parent.next_round} of {parent.id}: {counts['pairs']} pairs, "
                        f"{counts['pending']} still waiting for a vote, none with an A/B verdict; vote on them in "
                        "Annotate (or pass --judge oracle-closer on the demo model), then export again")
    lineage = snapshot_lineage(parent, options)
    export = ExportOptions(sources=(parent.source,), test_size=options.test_size, seed=options.seed, max_length=None,
                           lineage=lineage)
    ref = export_snapshot(store, layout, export, identity).ref
    if options.mix_old <= 0:
        return ref
    old = parent.snapshot_path
    if old is None:
        raise UserError(f"--mix-old {options.mix_old}: the parent run's snapshot "
                        f"({parent.lineage.get('snapshot') or 'unknown'}) is gone; the round's own snapshot "
                        f"{ref.id} was written, train on it or restore the parent snapshot")
    mixed = mix_snapshots(layout, ref, SnapshotRef(old.name, old, {}), options.mix_old, options.seed)
    store.record_snapshot(mixed.manifest, str(mixed.path))
    return mixed


def _mixed_train(new, old, share: float, seed: int):
    from datasets import Dataset, concatenate_datasets

    if isinstance(new[0]["prompt"], str) != isinstance(old[0]["prompt"], str):
        raise UserError("the round's snapshot and the parent's differ in format (plain vs conversational); "
                        "export the round in the parent snapshot's format or pass --mix-old 0")
    k = round(share * len(old))
    picked = sorted(random.Random(seed).sample(range(len(old)), k))
    ours = new.select_columns(PAIR_COLUMNS)
    theirs = Dataset.from_list(old.select(picked).select_columns(PAIR_COLUMNS).to_list(), features=ours.features)
    return concatenate_datasets([ours, theirs]), k


def mix_snapshots(layout: StorageLayout, new: SnapshotRef, old: SnapshotRef, share: float, seed: int) -> SnapshotRef:
    """A new snapshot: `new`'s splits (pair columns) with `share` of `old`'s train rows added to train."""
    from datasets import DatasetDict

    fresh, past = load_snapshot(new), load_snapshot(old)
    if "chosen" not in past["train"].column_names:
        raise UserError(f"the parent snapshot {old.id} holds unpaired rows, not pairs: pass --mix-old 0")
    train, k = _mixed_train(fresh["train"], past["train"], share, seed)
    data = DatasetDict({"train": train, "test": fresh["test"].select_columns(PAIR_COLUMNS)})
    snapshot_id = f"{new.id}-mix{round(share * 100)}"
    manifest = {**new.manifest, "id": snapshot_id, "sha256": dataset_sha256(data), "train_rows": len(train),
                "rows": len(train) + len(data["test"]), "columns": PAIR_COLUMNS,
                "lineage": {**new.manifest["lineage"], "mixed_rows": k, "round_snapshot": new.id,
                            "parent_snapshot": old.id}}
    path = layout.snapshot_dir(snapshot_id)
    tmp = path.parent / f".{snapshot_id}.tmp-{new_id()}"
    try:
        data.save_to_disk(str(tmp / DATASET_DIR))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write the mixed snapshot {path} ({exc.strerror or exc}); nothing was written") \
            from None
    _freeze(path)
    return SnapshotRef(snapshot_id, path, manifest)
