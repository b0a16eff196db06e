"""Store methods for the runs registry index (training runs and the adapters they produced).

Owns: the `runs` table, which indexes storage/runs/<run_id>/. The run directory
is the source of truth while a job runs (the job is a subprocess and never
opens the database); the app copies its state here, so the UI and the arena
can list runs and adapters with one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


from alignui.db.core import from_json, to_json
from alignui.errors import NotFoundError, quoted

RUN_STATUSES = ("queued", "running", "done", "failed", "cancelled")
#: Methods whose output is a policy adapter (arena-servable); the training registry's `produces_adapter`
#: (alignui.training.methods) must agree, which tests/training/test_train_methods.py checks.
ADAPTER_METHODS = ("dpo", "rlhf", "sft", "orpo", "simpo", "kto")

_COLUMNS = ("id, method, status, config, metrics, adapter_path, snapshot_id, snapshot_sha256, base_model, "
            "parent_run, error, created_at, finished_at")


@dataclass(frozen=True)
class Run:
    id: str
    method: str
    status: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    adapter_path: str | None
    snapshot_id: str | None
    snapshot_sha256: str | None
    base_model: str | None
    parent_run: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


def _run(row: tuple) -> Run:
    values = list(row)
    values[3], values[4] = from_json(values[3]) or {}, from_json(values[4]) or {}
    return Run(*values)


class RunsMixin:
    """Mixed into Store; relies on Database.tx / query."""

    def upsert_run(self, run_id: str, *, method: str, status: str, config: dict | None = None,
                   metrics: dict | None = None, adapter_path: str | None = None, snapshot_id: str | None = None,
                   snapshot_sha256: str | None = None, base_model: str | None = None,
                   parent_run: str | None = None, error: str | None = None,
                   finished_at: datetime | None = None, created_at: datetime | None = None) -> Run:
        """Insert or replace the index row of one run (the run directory stays the source of truth).

        `created_at` defaults to the existing row's (a status update does not reorder the runs), else now.
        """
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, got {status!r}")
        values = [run_id, method, status, to_json(config or {}), to_json(metrics or {}), adapter_path, snapshot_id,
                  snapshot_sha256, base_model, parent_run, error, finished_at]

        def work(cur):
            cur.execute("INSERT INTO runs (id, method, status, config, metrics, adapter_path, snapshot_id, "
                        "snapshot_sha256, base_model, parent_run, error, finished_at, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, coalesce(?, current_timestamp)) "
                        "ON CONFLICT (id) DO UPDATE SET method = excluded.method, status = excluded.status, "
                        "config = excluded.config, metrics = excluded.metrics, adapter_path = excluded.adapter_path, "
                        "snapshot_id = excluded.snapshot_id, snapshot_sha256 = excluded.snapshot_sha256, "
                        "base_model = excluded.base_model, parent_run = excluded.parent_run, error = excluded.error, "
                        "finished_at = excluded.finished_at, created_at = coalesce(?, runs.created_at)",
                        values + [created_at, created_at])

        import duckdb  # not at the top: see alignui.db.core

        try:
            self.tx(work)
        except duckdb.ConstraintException:  # another thread inserted the same new id first: now it is an update
            self.tx(work)
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        rows = self.query(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", [run_id])
        if not rows:
            raise NotFoundError(f"no run with id {quoted(run_id)}")
        return _run(rows[0])

    def list_runs(self, *, status: str | None = None, method: str | None = None) -> list[Run]:
        rows = self.query(f"SELECT {_COLUMNS} FROM runs WHERE (? IS NULL OR status = ?) AND (? IS NULL OR method = ?)"
                          " ORDER BY created_at DESC, id", [status, status, method, method])
        return [_run(r) for r in rows]

    def list_adapters(self) -> list[Run]:
        """Finished runs whose adapter the arena can serve, newest first."""
        return [r for r in self.list_runs(status="done") if r.method in ADAPTER_METHODS and r.adapter_path]
