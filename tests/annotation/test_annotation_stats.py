"""Live counters, the per-annotator history and the guidelines (settings table), on a real DuckDB file."""

import pytest

from alignui.annotation import stats
from alignui.annotation import guidelines
from alignui.db import NewGeneration, Store
from alignui.team.identity import Identity, PermissionDenied

MSGS = [{"role": "user", "content": "What color is the sky?"}]


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        yield s


def vote(store, verdict, annotator, edited=None, meta=None, messages=MSGS):
    c = store.save_pair(messages, NewGeneration("base", "Blue."), NewGeneration("base", "Grey."), annotator=annotator,
                        meta=meta)
    return store.decide(c.id, verdict, annotator=annotator, edited_chosen=edited)


def test_empty_counters_and_plots_are_well_formed(store):
    assert stats.summary_markdown(store).startswith("No pairs collected yet")
    assert list(stats.by_verdict(store)["votes"]) == [0, 0, 0, 0, 0]
    assert stats.by_annotator(store).empty and stats.over_time(store).empty
    assert list(stats.history(store, "ann").columns) == stats.HISTORY_COLUMNS


def test_counters_by_verdict_annotator_and_time(store):
    for verdict, who in [("a", "ann"), ("b", "ann"), ("a", "bob"), ("skip", "ann")]:
        vote(store, verdict, who)
    store.save_pair(MSGS, NewGeneration("base", "x"), NewGeneration("base", "y"))  # pending: not collected
    frame = stats.by_verdict(store)
    assert dict(zip(frame["verdict"], frame["votes"])) == {"A better": 2, "B better": 1, "tie": 0, "both bad": 0,
                                                           "skip": 1}
    assert stats.by_annotator(store).values.tolist() == [["ann", 3], ["bob", 1]]
    timeline = stats.over_time(store)
    assert timeline["pairs"].tolist() == [0, 1, 2, 3, 4] and timeline["time"].is_monotonic_increasing
    summary = stats.summary_markdown(store)
    assert summary.startswith("**4** pairs collected") and "2 annotators" in summary and "1 waiting" in summary


def test_history_is_the_annotators_own_newest_first_with_edits_and_turns(store):
    first = vote(store, "a", "ann", edited="Blue, mostly.")
    for i in range(22):
        vote(store, "b", "bob")
    turn2 = vote(store, "tie", "ann", meta={"parent_pair": first.id, "turn": 2},
                 messages=MSGS + [{"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Why?"}])
    mine = stats.history(store, "ann")
    assert mine["pair"].tolist() == [turn2.id, first.id]
    assert mine.iloc[0][["prompt", "verdict", "edited", "turn"]].tolist() == ["Why?", "tie", "", 2]
    assert mine.iloc[1][["verdict", "edited", "turn"]].tolist() == ["A better", "yes", 1]
    assert len(stats.history(store, "bob")) == 20


def test_guidelines_default_edit_and_permission(store):
    assert guidelines.load(store) == guidelines.DEFAULT_GUIDELINES
    admin, annotator = Identity("op", "admin", "login"), Identity("ann", "annotator", "typed")
    with pytest.raises(PermissionDenied, match="ann may not edit guidelines"):
        guidelines.save(store, annotator, "# mine")
    assert guidelines.save(store, admin, "  # House rules\nBe kind.  ") == "# House rules\nBe kind."
    assert guidelines.load(store) == "# House rules\nBe kind."
    with pytest.raises(Exception, match="keep them under"):
        guidelines.save(store, admin, "x" * (guidelines.MAX_CHARS + 1))
    assert guidelines.save(store, admin, "") == guidelines.DEFAULT_GUIDELINES  # empty restores the default
