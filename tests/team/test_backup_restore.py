"""A Space that restarts loses nothing (issue 12): votes -> backup -> wipe the data root -> start -> restored.

The remote is a local folder laid out like the backup dataset repo (ALIGNUI_BACKUP_REPO=file:<folder>), so
everything above alignui.team.backup_remote is the production path; the app is really started."""

import json
import shutil
import threading
from dataclasses import replace

from gradio_client import Client

from alignui.data.commands import export_command
from alignui.db import NewGeneration, Store
from alignui.db.backup import import_database, saved_votes
from alignui.runs import RunDir
from alignui.team.backup import BackupScheduler, backup_now
from alignui.team.backup_remote import LocalDirRemote
from alignui.team.restore import restore_on_start
from conftest import served, wait_for


def vote(store, n, annotator="ann"):
    for i in range(n):
        pair = store.save_pair([{"role": "user", "content": f"q{i}?"}], NewGeneration("base", f"a{i}"),
                               NewGeneration("base", f"b{i}"), annotator=annotator)
        store.decide(pair.id, "ab"[i % 2], annotator=annotator)


def comparisons(store):
    return sorted(store.query("SELECT id, verdict, annotator FROM comparisons WHERE verdict IS NOT NULL"))


def add_run(layout, store):
    run = RunDir.create(layout, "dpo-restore-1")
    run.write_config("dpo", {"beta": 0.1})
    run.update_status(state="done", step=10, max_steps=10)
    (run.path / "adapter").mkdir()
    (run.path / "adapter" / "adapter_config.json").write_text('{"r": 8}')
    (run.path / "checkpoints").mkdir()
    (run.path / "checkpoints" / "big.bin").write_bytes(b"x" * 100)
    store.upsert_run("dpo-restore-1", method="dpo", status="done", adapter_path=str(run.path / "adapter"))


def test_votes_backup_wipe_start_restores_votes_snapshots_and_runs(config, tmp_path):
    remote = tmp_path / "backup-repo"
    config = replace(config, backup_repo=f"file:{remote}", backup_every_votes=3)
    with served(config) as app:
        client = Client(app.url, verbose=False)
        for i in range(4):
            _, _, pair_id = client.predict(f"question {i}?", api_name="/generate_pair")
            client.predict(pair_id, "a", api_name="/submit_vote")
        wait_for(lambda: LocalDirRemote(remote).commits(), "the backup after 3 votes")
        snapshot = export_command(app.ctx.store, app.ctx.layout, max_length=0)["snapshot"]
        add_run(app.ctx.layout, app.ctx.store)
        votes, runs = comparisons(app.ctx.store), app.ctx.store.query("SELECT id, status FROM runs")
    assert len(votes) == 4 and len(LocalDirRemote(remote).commits()) == 2  # after 3 votes, and on the clean stop

    shutil.rmtree(config.storage)  # the container is wiped
    with served(config) as app:
        assert app.ctx.restore.restored and comparisons(app.ctx.store) == votes
        assert app.ctx.store.query("SELECT id, status FROM runs") == runs
        manifest = config.storage / "snapshots" / snapshot / "manifest.json"
        assert json.loads(manifest.read_text())["rows"] == 4
        run = config.storage / "runs" / "dpo-restore-1"
        assert (run / "adapter" / "adapter_config.json").is_file() and (run / "config.yaml").is_file()
        assert not (run / "checkpoints").exists()  # checkpoints are not backed up
        from alignui.ui.app import header_markdown

        header = header_markdown(app.ctx)
        assert f"Restored from backup file:{remote} of " in header and ": 4 votes, 1 snapshot, 1 run" in header
        _, _, pair_id = Client(app.url, verbose=False).predict("after the restore?", api_name="/generate_pair")


def test_the_vote_trigger_fires_after_every_n_votes(layout, tmp_path):
    remote = LocalDirRemote(tmp_path / "repo")
    with Store(layout.db_path) as store:
        scheduler = BackupScheduler(store, layout.root, remote, every_votes=5, every_minutes=0, log=print,
                                    poll_s=3600)  # the test polls itself: poll_once
        try:
            vote(store, 4, annotator="a")
            assert scheduler.poll_once() is None and remote.commits() == []
            vote(store, 1, annotator="b")
            assert scheduler.poll_once().votes == 5 and len(remote.commits()) == 1
            vote(store, 4, annotator="c")
            assert scheduler.poll_once() is None and len(remote.commits()) == 1
            vote(store, 1, annotator="d")
            assert scheduler.poll_once().votes == 10 and len(remote.commits()) == scheduler.commits == 2
        finally:
            scheduler.stop()
        assert len(remote.commits()) == 2  # nothing new to back up on stop



def test_a_clean_stop_backs_up_a_run_made_after_the_last_backup_without_a_new_vote(layout, tmp_path, config):
    """Votes are not all a backup holds: a run (or snapshot) written after the last backup, with no vote since,
    is backed up by the clean stop (before, the stop looked at the vote count alone and the run was lost)."""
    remote = LocalDirRemote(tmp_path / "repo")
    with Store(layout.db_path) as store:
        scheduler = BackupScheduler(store, layout.root, remote, every_votes=2, every_minutes=0, log=print,
                                    poll_s=3600)
        try:
            vote(store, 2)
            assert scheduler.poll_once().votes == 2 and len(remote.commits()) == 1
            add_run(layout, store)
        finally:
            scheduler.stop()
        assert len(remote.commits()) == 2
    shutil.rmtree(layout.root)
    restored = restore_on_start(replace(config, storage=layout.root, backup_repo=remote.name), log=print)
    assert restored.restored and (layout.root / "runs" / "dpo-restore-1" / "adapter" / "adapter_config.json").is_file()

def test_restore_never_touches_a_data_root_that_holds_data(layout, tmp_path, config):
    remote = LocalDirRemote(tmp_path / "repo")
    with Store(layout.db_path) as store:
        vote(store, 2)
        backup_now(store, layout.root, remote)
    other = tmp_path / "other"
    (other / "snapshots" / "mine").mkdir(parents=True)  # no database, but a snapshot: not empty
    lines = []
    for root in (layout.root, other):
        before = sorted(p.relative_to(root) for p in root.rglob("*"))
        cfg = replace(config, storage=root, backup_repo=remote.name)
        assert restore_on_start(cfg, log=lines.append) is None
        assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert all("already holds data" in line for line in lines) and len(lines) == 2


def test_a_backup_that_cannot_be_read_leaves_the_root_empty_and_backups_off(tmp_path, config):
    remote = LocalDirRemote(tmp_path / "repo")
    (tmp_path / "repo").mkdir()
    remote.upload(tmp_path, [], "alignui backup: a commit without a database copy")
    cfg = replace(config, backup_repo=remote.name)
    with served(cfg) as app:
        assert app.ctx.restore.failed and "no database copy" in app.ctx.restore.message
        assert app.ctx.closers == [app.ctx.closers[0]]  # the handoff file only: no backup scheduler
        assert saved_votes(app.ctx.store) == 0


def test_a_database_copy_taken_while_votes_land_is_whole(layout, tmp_path):
    """EXPORT DATABASE is one transaction: each copy rebuilds into a database holding at least the votes
    counted before it, with no half-written pair."""
    stop = threading.Event()
    with Store(layout.db_path) as store:
        def voter(name):
            while not stop.is_set():
                vote(store, 1, annotator=name)
        threads = [threading.Thread(target=voter, args=(f"v{i}",)) for i in range(3)]
        for t in threads:
            t.start()
        try:
            for k in range(3):
                result = backup_now(store, layout.root, LocalDirRemote(tmp_path / f"repo{k}"))
                import_database(tmp_path / f"repo{k}" / "backup" / "database", tmp_path / f"copy{k}.duckdb")
                with Store(tmp_path / f"copy{k}.duckdb") as copy:
                    assert saved_votes(copy) >= result.votes
                    orphans = copy.query("SELECT count(*) FROM comparisons c LEFT JOIN generations g "
                                         "ON g.id = c.gen_a WHERE g.id IS NULL")[0][0]
                    assert orphans == 0
        finally:
            stop.set()
            for t in threads:
                t.join()


def test_an_admin_cannot_type_a_backup_folder_on_the_server(store, layout, tmp_path, config):
    import pytest

    from alignui.team import admin
    from alignui.errors import UserError
    from alignui.team.identity import LOCAL_OPERATOR

    target = tmp_path / "anywhere"
    with pytest.raises(UserError, match="can only be set with ALIGNUI_BACKUP_REPO"):
        admin.backup(store, replace(config, storage=layout.root), LOCAL_OPERATOR, f"file:{target}")
    assert not target.exists()
    allowed = replace(config, storage=layout.root, backup_repo=f"file:{target}")
    assert "Backed up" in admin.backup(store, allowed, LOCAL_OPERATOR, "")
    assert len(LocalDirRemote(target).commits()) == 1
