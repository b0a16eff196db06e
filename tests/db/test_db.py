import gc
import subprocess
import sys
import threading
import time

import duckdb
import pytest

from alignui.db import NewGeneration, Store
from alignui.db.schema import LATEST_VERSION, MIGRATIONS
from alignui.errors import ConflictError, NotFoundError, StorageBusyError, UserError

MSGS = [{"role": "user", "content": "What color is the sky?"}]


def pair(store, **kw):
    return store.save_pair(MSGS, NewGeneration("base", "Blue.", {"temperature": 0.8}, 2, 10.0),
                           NewGeneration("base", "The sky is blue. Hope this helps!", {"temperature": 0.8}, 9, 12.0),
                           **kw)


def test_migrations_from_an_empty_file_and_reopen(tmp_path):
    path = tmp_path / "a.duckdb"
    with Store(path) as s:
        assert s.version == LATEST_VERSION
        tables = {r[0] for r in s.query("SELECT table_name FROM information_schema.tables")}
        assert {"prompts", "generations", "comparisons", "snapshots", "runs", "users", "settings",
                "schema_version"} <= tables
    with Store(path) as s:  # re-open applies nothing twice
        assert s.migrate() == 0
        assert s.query("SELECT count(*) FROM schema_version")[0][0] == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "a.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version (version, description) VALUES (999, 'future')")
    con.close()
    with pytest.raises(RuntimeError, match="newer than this alignui"):
        Store(path)


def test_vote_survives_restart(tmp_path):
    path = tmp_path / "a.duckdb"
    with Store(path) as s:
        c = pair(s, annotator="ann")
        s.decide(c.id, "b", annotator="ann", duration_ms=1234)
    with Store(path) as s:
        got = s.get_comparison(c.id)
    assert (got.verdict, got.annotator, got.duration_ms) == ("b", "ann", 1234)
    assert got.text_b == "The sky is blue. Hope this helps!" and got.chosen_text == got.text_b
    assert got.messages == MSGS and got.decided_at is not None


def test_a_saved_pair_or_single_is_returned_as_it_reads_back_on_each_way_of_naming_its_prompt(tmp_path):
    """save_pair builds what it returns from what it wrote (no join read back): it must equal the stored row,
    whether the prompt is new, found by its content, or named by id."""
    with Store(tmp_path / "a.duckdb") as s:
        fresh = pair(s, annotator="ann", meta={"mode": "x"})
        found = pair(s, annotator="ann", prompt_source="pool", prompt_meta={"parent_pair": "p1"})
        named = pair(s, kind="arena", annotator=None, prompt_id=fresh.prompt_id)
        for c in (fresh, found, named):
            assert c == s.get_comparison(c.id)
        assert found.prompt_id == fresh.prompt_id  # found by content: the oldest prompt with these messages
        other = s.save_pair([{"role": "user", "content": "New one?"}], NewGeneration("base", "A.", {}, 1, 1.0),
                            NewGeneration("base", "B.", {}, 1, 1.0), prompt_source="pool", prompt_meta={"k": 1})
        assert s.query("SELECT source, meta FROM prompts WHERE id = ?", [other.prompt_id]) == [("pool", '{"k": 1}')]
        gen = NewGeneration("base", "Blue.", {}, 1, 1.0)
        singles = [s.save_single(MSGS, gen, annotator="ann"), s.save_single(MSGS, gen, annotator="ann", prompt_source="x"),
                   s.save_single(MSGS, gen, annotator=None, prompt_id=other.prompt_id)]
        for r in singles:
            assert r == s.get_rating(r.id)
        assert singles[1].prompt_id == fresh.prompt_id and singles[2].messages == other.messages


def test_a_pair_or_a_single_on_an_unknown_prompt_id_is_refused_and_stores_nothing(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        with pytest.raises(NotFoundError, match="no prompt with id 'nope'"):
            pair(s, prompt_id="nope")
        with pytest.raises(NotFoundError, match="no prompt with id 'nope'"):
            s.save_single(MSGS, NewGeneration("base", "Blue.", {}, 1, 1.0), annotator="ann", prompt_id="nope")
        assert [s.query(f"SELECT count(*) FROM {t}")[0][0]
                for t in ("prompts", "generations", "comparisons", "ratings")] == [0, 0, 0, 0]


def test_second_vote_unknown_id_and_bad_verdict_change_nothing(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        c = pair(s)
        s.decide(c.id, "a")
        with pytest.raises(ConflictError, match="already decided"):
            s.decide(c.id, "b")
        with pytest.raises(NotFoundError, match="no pair with id"):
            s.decide("nope", "a")
        with pytest.raises(UserError, match="verdict must be one of"):
            s.decide(pair(s).id, "maybe")
        assert s.get_comparison(c.id).verdict == "a"
        assert s.vote_counts() == {"a": 1, "b": 0, "tie": 0, "both_bad": 0, "skip": 0, "pending": 1, "total": 1}


def test_edit_needs_a_winner_and_is_kept_beside_the_original(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        c = pair(s)
        with pytest.raises(UserError, match="needs a winner"):
            s.decide(c.id, "tie", edited_chosen="x")
        got = s.decide(c.id, "a", edited_chosen="Blue, mostly.")
        assert got.text_a == "Blue." and got.chosen_text == "Blue, mostly."


def test_undo_reopens_only_for_the_same_annotator(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        c = pair(s)
        s.decide(c.id, "a", annotator="ann")
        with pytest.raises(ConflictError, match="decided by ann"):
            s.undo(c.id, annotator="bob")
        assert s.undo(c.id, annotator="ann").verdict is None
        with pytest.raises(ConflictError, match="no verdict to undo"):
            s.undo(c.id)
        assert s.decide(c.id, "b").verdict == "b"


def test_concurrent_votes_on_one_pair_exactly_one_wins(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        c = pair(s)
        outcomes: list[str] = []

        def vote(v):
            try:
                s.decide(c.id, v, annotator=v)
                outcomes.append("ok")
            except ConflictError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=vote, args=(v,)) for v in ("a", "b", "tie", "both_bad") * 3]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert outcomes.count("ok") == 1 and outcomes.count("conflict") == 11
        assert s.get_comparison(c.id).verdict is not None


def test_many_threads_write_distinct_pairs(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        ids = [pair(s).id for _ in range(40)]
        errors = []

        def vote(i):
            try:
                s.decide(ids[i], "a", annotator=f"u{i % 5}")
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=vote, args=(i,)) for i in range(40)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert not errors and s.vote_counts()["a"] == 40


def test_file_held_by_another_process_gives_a_clear_error(tmp_path):
    path = tmp_path / "a.duckdb"
    Store(path).close()
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); "
                               "print('ready', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StorageBusyError, match="open in another process"):
            Store(path)
    finally:
        holder.kill()
        holder.wait()


def test_close_waits_for_a_query_running_in_another_thread(tmp_path):
    s = Store(tmp_path / "a.duckdb")
    started = threading.Event()

    outcome = []

    def long_query():
        cur = s.cursor()
        started.set()
        try:
            outcome.append(cur.execute("SELECT count(*) FROM range(300000000)").fetchall()[0][0])
        except duckdb.ConnectionException:  # close() won the race: the query is refused, nothing breaks
            outcome.append("refused")

    t = threading.Thread(target=long_query)
    t.start()
    started.wait()
    time.sleep(0.1)
    s.close()  # must not raise "connection is busy"
    t.join()
    assert outcome in ([300000000], ["refused"])
    with pytest.raises(RuntimeError, match="closed"):
        s.cursor()


def test_an_arena_battle_cannot_be_voted_as_an_annotation_pair_nor_the_reverse(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        battle = pair(s, kind="arena")
        with pytest.raises(NotFoundError, match="is an arena battle.*/arena_vote"):
            s.decide(battle.id, "skip")
        annotated = pair(s)
        with pytest.raises(NotFoundError, match="is an annotate pair.*/submit_vote"):
            s.decide(annotated.id, "a", kind="arena")
        assert s.decide(battle.id, "a", kind="arena").verdict == "a"
        assert s.get_comparison(annotated.id).verdict is None


def duckdb_connections_referenced() -> int:
    gc.collect()
    return sum(isinstance(r, duckdb.DuckDBPyConnection) for o in gc.get_objects() for r in gc.get_referents(o))


def test_a_closed_store_holds_no_duckdb_object(tmp_path):
    """Whatever keeps a closed Store alive (FastAPI's cache keeps an old Gradio app) must not keep its connection or
    a thread's cursor alive to interpreter exit, where nanobind reports them as leaked."""
    before = duckdb_connections_referenced()
    s = Store(tmp_path / "a.duckdb")
    used, stop = threading.Event(), threading.Event()

    def worker():  # a long-lived thread (like a Gradio worker) that made its own cursor
        s.vote_counts()
        used.set()
        stop.wait()

    t = threading.Thread(target=worker)
    t.start()
    try:
        used.wait()
        s.vote_counts()
        assert duckdb_connections_referenced() > before
        s.close()
        assert duckdb_connections_referenced() == before
    finally:
        stop.set()
        t.join()
