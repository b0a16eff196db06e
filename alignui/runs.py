"""The on-disk runs registry: storage/runs/<run_id>/, one directory per training run.

    config.yaml     method + every resolved setting (what `--config` reproduces the run from)
    lineage.json    snapshot id and sha256, base model, parent run, who started it, when
    status.json     state (queued|running|done|failed|cancelled), phase, step/max_steps, ETA, pid,
                    error, summary; rewritten atomically
    metrics.jsonl   one JSON object per logged step (TRL's metrics + step, epoch, time)
    log.txt         the job's stdout/stderr and our progress lines
    preflight.json  the pre-flight report the run started with
    samples.jsonl   base vs adapter samples on held-out prompts (degenerate-sample check)
    checkpoints/    Trainer checkpoints (checkpoint-<step>/), resume starts from the last
    adapter/        the final standard PEFT adapter (adapter_config.json + adapter_model.safetensors)
    tracking.json   where the metrics went (report_to: none | tensorboard | trackio | wandb)
    tensorboard/    TensorBoard event files (report_to=tensorboard)
    ranks/<k>/      a multi-process run's rank k > 0: its own status/metrics/stdout, never read by the app
                    (rank 0 writes everything above; alignui.training.ranks)

Owns: this layout and reading/writing each file safely. The run directory is the source of truth; the app
copies its state into the database index (alignui.training.app.runner). Pure file IO: no torch, no database.
Also owns the lineage of training in rounds (alignui.rounds): the round fields of a run's lineage.json
(`run_lineage`) and the chain labels the Runs table and the leaderboard show (`lineage_label`).

Invariants:
- status.json is replaced atomically (write to a temp file, then os.replace): a reader never sees half.
- metrics.jsonl is append-only except `truncate_metrics`, used on resume to drop steps after the checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Iterable, Mapping
from typing import Any

from alignui.errors import NotFoundError, quoted
from alignui.paths import StorageLayout, UnsafeNameError

ACTIVE_STATES = ("queued", "running")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id(method: str, when: datetime | None = None) -> str:
    """`<method>-<UTC yyyymmdd-hhmmss>-<8 hex>`: sorts by time, a safe directory name.

    Random, so two ids drawn in one second may (rarely: 1 in 4e9 a pair) coincide; `RunDir.create_new`
    draws again until the directory is new, which is what makes a run's id unique.
    """
    when = when or datetime.now(timezone.utc)
    return f"{method}-{when:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=str)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; other tools (and people) read these files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    # -- layout ---------------------------------------------------------------------------------------------
    config_path = property(lambda self: self.path / "config.yaml")
    lineage_path = property(lambda self: self.path / "lineage.json")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    log_path = property(lambda self: self.path / "log.txt")
    preflight_path = property(lambda self: self.path / "preflight.json")
    samples_path = property(lambda self: self.path / "samples.jsonl")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    adapter_dir = property(lambda self: self.path / "adapter")

    @classmethod
    def create(cls, layout: StorageLayout, run_id: str) -> "RunDir":
        path = layout.run_dir(run_id)
        path.mkdir(parents=True, exist_ok=False)
        return cls(path)

    @classmethod
    def create_new(cls, layout: StorageLayout, method: str) -> "RunDir":
        """A run directory under a fresh id of `method`; mkdir's exclusivity settles a clash, even across processes."""
        while True:
            try:
                return cls.create(layout, new_run_id(method))
            except FileExistsError:
                continue

    @classmethod
    def open(cls, layout: StorageLayout, run_id: str) -> "RunDir":
        try:
            path = layout.run_dir(run_id)
        except UnsafeNameError as exc:
            raise NotFoundError(f"no run {quoted(run_id)}: {exc}") from exc
        if not path.is_dir():
            raise NotFoundError(f"no run {quoted(run_id)} under {path.parent}")
        return cls(path)

    # -- config and lineage ----------------------------------------------------------------------------------
    def write_config(self, method: str, settings: dict[str, Any]) -> None:
        import yaml

        text = yaml.safe_dump({"method": method, **settings}, sort_keys=False)
        self.config_path.write_text(f"# alignui run {self.id}: python -m alignui train {method} --config "
                                    f"{self.config_path.name}\n" + text)

    def read_config(self) -> tuple[str | None, dict[str, Any]]:
        """(method, settings) as written by `write_config` (method None when the file is missing)."""
        import yaml

        try:
            data = yaml.safe_load(self.config_path.read_text()) or {}
        except FileNotFoundError:
            return None, {}
        return data.pop("method", None), data

    def write_lineage(self, lineage: dict[str, Any]) -> None:
        write_json_atomic(self.lineage_path, lineage)

    def read_lineage(self) -> dict[str, Any]:
        return read_json(self.lineage_path, {}) or {}

    # -- status ---------------------------------------------------------------------------------------------
    def read_status(self) -> dict[str, Any]:
        return read_json(self.status_path, {}) or {}

    def update_status(self, **changes: Any) -> dict[str, Any]:
        """Merge `changes` into status.json (atomically) and return the new status."""
        status = {**self.read_status(), **changes, "run_id": self.id, "updated_at": now_iso()}
        write_json_atomic(self.status_path, status)
        return status

    @property
    def state(self) -> str | None:
        return self.read_status().get("state")

    # -- metrics --------------------------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps(record, default=float) + "\n")
            fh.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete line of metrics.jsonl (a line being written right now is skipped)."""
        try:
            lines = self.metrics_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records logged after `after_step` (they are re-logged when a resumed run replays them)."""
        kept = [r for r in self.read_metrics() if int(r.get("step", 0)) <= after_step]
        tmp = self.metrics_path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        os.replace(tmp, self.metrics_path)

    # -- log, samples, checkpoints ------------------------------------------------------------------------
    def log_tail(self, lines: int = 20) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 64_000))
                text = fh.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])

    def read_samples(self) -> list[dict[str, Any]]:
        try:
            return [json.loads(line) for line in self.samples_path.read_text().splitlines() if line.strip()]
        except (FileNotFoundError, json.JSONDecodeError):
            return []

    def checkpoints(self) -> list[Path]:
        """Checkpoint directories, oldest first."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoints_dir.iterdir()
                 if p.is_dir() and (m := _CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()]
        return [p for _, p in sorted(found)]

    def last_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    @property
    def has_adapter(self) -> bool:
        return (self.adapter_dir / "adapter_config.json").is_file()


def list_run_dirs(layout: StorageLayout) -> list[RunDir]:
    """Every run directory under the data root, newest first (ids sort by time)."""
    root = layout.runs_dir
    if not root.is_dir():
        return []
    return sorted((RunDir(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda r: r.id.split("-", 1)[-1], reverse=True)


def format_eta(seconds: float | None) -> str:
    """h:mm:ss or m:ss for a progress line; '?' when unknown (here, not in training.metrics: the web app
    shows it without importing transformers)."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


# -- lineage of training in rounds (alignui.rounds) ----------------------------------------------------
def run_lineage(manifest: Mapping[str, Any], parent: str | None, init_adapter: str = "") -> dict[str, Any]:
    """The round fields of a new run's lineage.json: the parent run (the config's `parent_run`, else the run
    id the adapter starts from, else the snapshot manifest's) and the round number (from the manifest; a run
    without parent is round 1; otherwise the parent link tells, see round_numbers)."""
    lineage = manifest.get("lineage") if isinstance(manifest.get("lineage"), dict) else {}
    init = (init_adapter or "").strip()
    init_run = init if init and "/" not in init and not init.startswith(".") else None  # an id, not a path
    out: dict[str, Any] = {"parent_run": parent or init_run or lineage.get("parent_run")}
    if lineage.get("round"):
        out["round"] = int(lineage["round"])
    elif not out["parent_run"]:
        out["round"] = 1
    return out


def round_numbers(runs: Iterable[Any]) -> dict[str, int]:
    """Run id -> round for `runs` (anything with .id and .parent_run): a parent's round + 1, else 1."""
    parents = {r.id: r.parent_run for r in runs}
    out: dict[str, int] = {}

    def number(run_id: str, seen: frozenset = frozenset()) -> int:
        if run_id not in out:
            parent = parents.get(run_id)
            seen = seen | {run_id}  # a loop of parent links (a hand-edited lineage) ends the chain
            out[run_id] = 1 if not parent or parent not in parents or parent in seen else number(parent, seen) + 1
        return out[run_id]

    for run_id in parents:
        number(run_id)
    return out


def lineage_label(run_id: str, runs: Iterable[Any]) -> str:
    """'base' for the base model, 'round N <- parent' or 'round 1' for a run, '' for anything else."""
    if run_id == "base":
        return "base"
    runs = list(runs)
    numbers = round_numbers(runs)
    if run_id not in numbers:
        return ""
    parent = next((r.parent_run for r in runs if r.id == run_id), None)
    return f"round {numbers[run_id]}" + (f" ← {parent}" if parent else " ← base")
