"""What a round is made of, and the parent run it continues, checked before anything is written.

Owns: `RoundOptions` (validated), `ParentRun` (a finished run directory with an adapter, its round number
and lineage), the round's comparison `source`, the round number of a run (`run_round`), and the lineage
labels the Runs table and the leaderboard show ("round 2 <- dpo-...").

Round numbers: a run trained on ordinary votes is round 1; a run trained on the snapshot of a round made
from run R's adapter is round(R) + 1. The number is written into the snapshot manifest's `lineage` and the
run's lineage.json; labels for runs without it (older runs) follow `parent_run` links instead.

Invariants: reads run directories only (no database, no torch); every refusal is a UserError that says
what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignui.db.rounds import ROUND_PREFIX
from alignui.errors import NotFoundError, UserError, quoted
from alignui.paths import StorageLayout, UnsafeNameError
from alignui.runs import RunDir

SIDES = ("seeds", "base")
JUDGES = ("", "oracle-closer")
# the methods whose job can start from an existing adapter (training.config.AdapterStart), also in words
ROUND_METHODS = ("dpo", "kto", "orpo", "simpo")
ROUND_METHOD_NAMES = "DPO, KTO, ORPO or SimPO"


@dataclass(frozen=True)
class RoundOptions:
    """How a round's pairs are made, judged and exported."""

    prompts: int = field(default=64, metadata={"help": "pool prompts to generate pairs for (held-out excluded)"})
    sides: str = field(default="seeds", metadata={"help": "seeds: both sides from the adapter, different samples; "
                                                          "base: the adapter against the base model"})
    mix_old: float = field(default=0.0, metadata={"help": "share (0-1) of the parent snapshot's train rows mixed "
                                                          "into the round's snapshot"})
    judge: str = field(default="", metadata={"help": "'' = annotators vote in Annotate; oracle-closer = the "
                                                     "synthetic demo property decides (tests and demos only)"})
    seed: int = field(default=0, metadata={"help": "seed of the prompt draw, side order and sampling"})
    max_new_tokens: int = field(default=128, metadata={"help": "longest response per side, in tokens"})
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature of both sides"})
    test_size: float = field(default=0.1, metadata={"help": "share of the round's pairs in the test split"})

    def __post_init__(self):
        if type(self.prompts) is not int or self.prompts < 1:
            raise UserError(f"--prompts must be a whole number of at least 1, got {quoted(self.prompts)}")
        if self.sides not in SIDES:
            raise UserError(f"--sides must be one of {', '.join(SIDES)}, got {quoted(self.sides)}")
        if not 0 <= self.mix_old <= 1:
            raise UserError(f"--mix-old is a share from 0 to 1 of the parent snapshot's rows, got {self.mix_old}")
        if self.judge not in JUDGES:
            raise UserError(f"--judge must be oracle-closer or left out (annotators vote), got {quoted(self.judge)}")
        if not 1 <= self.max_new_tokens <= 8192:
            raise UserError(f"--max-new-tokens must be between 1 and 8192, got {self.max_new_tokens}")


@dataclass(frozen=True)
class ParentRun:
    """A finished run whose adapter the next round starts from."""

    id: str
    run: RunDir
    round: int
    lineage: dict[str, Any]

    @property
    def next_round(self) -> int:
        return self.round + 1

    @property
    def source(self) -> str:
        return round_source(self.id)

    @property
    def snapshot_path(self) -> Path | None:
        path = self.lineage.get("snapshot_path")
        return Path(path) if path and Path(path).is_dir() else None


def round_source(parent_run: str) -> str:
    """The `source` of the comparisons of the round made from `parent_run`'s adapter."""
    return f"{ROUND_PREFIX}{parent_run}"


def run_round(lineage: Mapping[str, Any]) -> int:
    """The round number recorded for a run (1 when it was trained on ordinary votes)."""
    value = lineage.get("round")
    return int(value) if isinstance(value, int) and value >= 1 else 1


def parent_run(layout: StorageLayout, run_id: str) -> ParentRun:
    """The finished run `run_id` with its adapter; a UserError (with what to do) for anything else."""
    run_id = (run_id or "").strip()
    if not run_id:
        raise UserError(f"--parent needs a run id: a finished {ROUND_METHOD_NAMES} run (python -m alignui train dpo; "
                        "the Runs table)")
    try:
        run = RunDir.open(layout, run_id)
    except (NotFoundError, UnsafeNameError):
        raise UserError(f"no run {quoted(run_id)} under {layout.root / 'runs'}: give the id of a finished run "
                        "(the Runs table in the Train tab, or the 'run' of `train`'s summary)") from None
    state = run.read_status().get("state")
    if state != "done":
        raise UserError(f"run {run_id} is {state or 'not started'}, not finished: wait for it (or resume it in the "
                        "Train tab), then start the next round")
    if not run.has_adapter:
        raise UserError(f"run {run_id} holds no adapter (no {run.adapter_dir.name}/adapter_config.json): a round "
                        f"starts from a policy adapter, so give a finished {ROUND_METHOD_NAMES} run")
    lineage = run.read_lineage()
    return ParentRun(id=run_id, run=run, round=run_round(lineage), lineage=lineage)


def snapshot_lineage(parent: ParentRun, options: RoundOptions, *, mixed_rows: int = 0) -> dict[str, Any]:
    """The `lineage` of a round's snapshot manifest (read by the training job into the run's lineage)."""
    return {"parent_run": parent.id, "round": parent.next_round, "parent_snapshot": parent.lineage.get("snapshot"),
            "sides": options.sides, "judge": options.judge or "annotators", "mix_old": options.mix_old,
            "mixed_rows": mixed_rows}
