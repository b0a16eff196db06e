import pytest

from alignui.db import Store
from alignui.errors import NotFoundError


def test_runs_index_upserts_lists_and_exposes_adapters(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        s.upsert_run("r1", method="dpo", status="running", config={"beta": 0.1}, base_model="demo",
                     snapshot_id="s1", snapshot_sha256="abc")
        assert s.list_adapters() == []
        s.upsert_run("r1", method="dpo", status="done", config={"beta": 0.1}, metrics={"eval_acc": 0.8},
                     adapter_path="/x/adapter", base_model="demo", snapshot_id="s1", snapshot_sha256="abc")
        s.upsert_run("r2", method="reward", status="done", adapter_path="/x/rm")
        s.upsert_run("r3", method="dpo", status="failed", error="OOM")
        assert [r.id for r in s.list_adapters()] == ["r1"]
        run = s.get_run("r1")
        assert run.metrics == {"eval_acc": 0.8} and run.config == {"beta": 0.1} and run.snapshot_sha256 == "abc"
        assert {r.id for r in s.list_runs()} == {"r1", "r2", "r3"}
        with pytest.raises(NotFoundError):
            s.get_run("nope")
        with pytest.raises(ValueError, match="run status"):
            s.upsert_run("r4", method="dpo", status="weird")


def test_migration_merged_out_of_order_is_still_applied(tmp_path, monkeypatch):
    from alignui.db import core, schema

    path = tmp_path / "a.duckdb"
    Store(path).close()
    late = (50, "a late migration with a lower number than one already applied", ["CREATE TABLE late_table (x INTEGER)"])
    monkeypatch.setattr(core, "MIGRATIONS", [*schema.MIGRATIONS, (99, "later", ["CREATE TABLE t99 (x INTEGER)"])])
    monkeypatch.setattr(core, "LATEST_VERSION", 99)
    Store(path).close()
    monkeypatch.setattr(core, "MIGRATIONS", [*schema.MIGRATIONS, late, (99, "later", ["CREATE TABLE t99 (x INTEGER)"])])
    with Store(path) as s:
        assert s.query("SELECT count(*) FROM late_table")[0][0] == 0
