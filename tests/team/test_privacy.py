"""Who sees and touches what, tried as an attacker would: a signed-in annotator (ann) calling the events the
browser can call (raw queue calls, as tests/team/test_roles.py does) and the named API (gradio_client).

- the arena is blind: nobody (admins included) lists or opens a pending battle, and no answer names its models;
- a pending pair belongs to its annotator: a vote by anyone else is refused and changes nothing;
- an annotator's Data view shows their own comparisons only; admins see all;
- gold answers reach admins only.
"""

import json

import pytest

from alignui.db import NewGeneration
from team.test_roles import refusal, call_event, fn_by_trigger, logged_in_http, login, team_server  # noqa: F401

SECRET_MODEL = "dpo-secret-run"
USER = [{"role": "user", "content": "Which is the tallest mountain?"}]


def pending_battle(store, annotator="bob"):
    return store.save_pair(USER, NewGeneration("base", "Everest."), NewGeneration(SECRET_MODEL, "K2."), kind="arena",
                           annotator=annotator)


def pair_for(store, annotator, text="Q?"):
    return store.save_pair([{"role": "user", "content": text}], NewGeneration("base", f"{text} one"),
                           NewGeneration("base", f"{text} two"), annotator=annotator)


def fn_named(server, elem_id: str, name: str, event: str = "click") -> int:
    """The event function called `name` that a component with `elem_id` triggers."""
    ids = {bid for bid, block in server.demo.blocks.items() if getattr(block, "elem_id", None) == elem_id}
    found = [i for i, fn in server.demo.fns.items()
             if fn.name == name and any(t[0] in ids and t[1] == event for t in fn.targets)]
    assert len(found) == 1, f"{elem_id}.{event} -> {name}: {found}"
    return found[0]


def browse(http, server, name="", text=""):
    """The Data tab's Search click with the filters untouched (everything), as the browser sends it."""
    answer = call_event(http, fn_named(server, "browse-search", "ui_browse"),
                        ["any", "any", "any", "", "", text, True, 1, name])
    assert answer["success"] is True, answer
    return json.dumps(answer["output"]["data"])


def open_detail(http, server, cid):
    return call_event(http, fn_by_trigger(server, "detail-id", "change"), [cid, ""])


def counts(http, server):
    answer = call_event(http, fn_named(server, "counts-refresh", "ui_counts"), [""])
    assert answer["success"] is True, answer
    return json.dumps(answer["output"]["data"])


def test_nobody_lists_or_opens_a_pending_arena_battle(team_server):
    store = team_server.ctx.store
    battle = pending_battle(store, annotator="ann")
    for name in ("ann", "boss"):  # its own player and an admin alike
        http = logged_in_http(team_server, name)
        listed = browse(http, team_server) + browse(http, team_server, text="mountain") + counts(http, team_server)
        assert battle.id not in listed and SECRET_MODEL not in listed, name
        opened = open_detail(http, team_server, battle.id)
        assert "waiting for its vote" in refusal(opened), opened
        assert SECRET_MODEL not in json.dumps(opened)
    boss = logged_in_http(team_server, "boss")
    fixed = call_event(boss, fn_by_trigger(team_server, "fix-run"), [battle.id, "a", ""])
    assert refusal(fixed) and SECRET_MODEL not in json.dumps(fixed)
    assert store.get_comparison(battle.id).verdict is None

    revealed = login(team_server, "ann").predict(battle.id, "B ", api_name="/arena_vote")  # "B " is "b"
    assert revealed == f"base vs {SECRET_MODEL}"
    assert battle.id in browse(boss, team_server) and open_detail(boss, team_server, battle.id)["success"]


def test_a_vote_on_someone_elses_pending_pair_or_battle_is_refused(team_server):
    store = team_server.ctx.store
    bobs_pair, bobs_battle = pair_for(store, "bob"), pending_battle(store, "bob")
    ann = login(team_server, "ann")
    with pytest.raises(Exception, match=f"pair {bobs_pair.id} was handed to another annotator, so ann cannot vote"):
        ann.predict(bobs_pair.id, "a", api_name="/submit_vote")
    with pytest.raises(Exception, match="was handed to another annotator") as refused:
        ann.predict(bobs_battle.id, "a", api_name="/arena_vote")
    assert SECRET_MODEL not in str(refused.value)
    boss = login(team_server, "boss")  # admins correct verdicts in the Data tab; they do not vote for others
    with pytest.raises(Exception, match="was handed to another annotator"):
        boss.predict(bobs_pair.id, "b", api_name="/submit_vote")
    assert store.get_comparison(bobs_pair.id).verdict is None and store.get_comparison(bobs_battle.id).verdict is None

    shared = store.claim_shared_pair("ann", 2)  # the overlap assignment hands ann a copy of bob's pair: hers to vote
    assert shared is not None and shared.gen_a == bobs_pair.gen_a
    assert ann.predict(shared.id, "A", api_name="/submit_vote").startswith("Saved: A is better")
    assert login(team_server, "bob").predict(bobs_pair.id, "b", api_name="/submit_vote").startswith("Saved")


def test_an_annotator_sees_only_their_own_comparisons_and_an_admin_sees_all(team_server):
    store = team_server.ctx.store
    mine, theirs = pair_for(store, "ann", "mine?"), pair_for(store, "bob", "theirs?")
    store.decide(theirs.id, "a")
    ann = logged_in_http(team_server, "ann")
    seen = browse(ann, team_server) + browse(ann, team_server, text="theirs") + counts(ann, team_server)
    assert mine.id in seen and theirs.id not in seen and "theirs?" not in seen and "bob" not in seen
    typed = browse(ann, team_server, name="bob")  # typing another name changes nothing for a signed-in user
    assert theirs.id not in typed
    opened = open_detail(ann, team_server, theirs.id)
    assert "among yours" in refusal(opened)
    assert "theirs?" not in json.dumps(opened)
    assert open_detail(ann, team_server, mine.id)["success"] is True

    boss = logged_in_http(team_server, "boss")
    everything = browse(boss, team_server)
    assert mine.id in everything and theirs.id in everything
    assert "theirs?" in json.dumps(open_detail(boss, team_server, theirs.id))


def admin_page_load(server) -> int:
    """The Admin tab's page-load event (the one that fills the gold table)."""
    gold = {bid for bid, block in server.demo.blocks.items() if getattr(block, "elem_id", None) == "admin-gold"}
    found = [i for i, fn in server.demo.fns.items()
             if any(b._id in gold for b in fn.outputs) and any(t[1] == "load" for t in fn.targets)]
    assert len(found) == 1, found
    return found[0]


def test_gold_answers_reach_admins_only(team_server):
    store = team_server.ctx.store
    gold_pair = pair_for(store, "boss", "attention?")
    store.add_gold(gold_pair.id, "b", by="boss", note="B cites a source")
    ann = logged_in_http(team_server, "ann")
    loaded = call_event(ann, admin_page_load(team_server), [])
    assert loaded["success"] is True and "B cites a source" not in json.dumps(loaded)
    assert gold_pair.gen_a not in json.dumps(loaded)
    boss = logged_in_http(team_server, "boss")
    assert "B cites a source" in json.dumps(call_event(boss, admin_page_load(team_server), []))

    with pytest.raises(Exception, match="ann may not review everyones votes: only admins can"):
        login(team_server, "ann").predict(0.6, api_name="/agreement")  # every annotator's votes and pair ids

    copy = store.claim_shared_pair("ann", 1, gold=True)  # ann's own copy of the gold pair: hers, not marked gold
    assert copy is not None
    assert gold_pair.id not in browse(ann, team_server)
    detail = open_detail(ann, team_server, copy.id)
    assert detail["success"] is True and "gold" not in json.dumps(detail["output"]["data"])
    assert "gold" in json.dumps(open_detail(boss, team_server, copy.id)["output"]["data"])


def test_an_annotator_cannot_start_the_judge_which_generates_past_the_rate_limit(team_server):
    from team.test_roles import initial_inputs

    ann = logged_in_http(team_server, "ann")
    for button in ("lb-judge-batch", "lb-judge-voted"):
        index = fn_named(team_server, button, "ui_judge")
        answer = call_event(ann, index, initial_inputs(team_server, index))
        assert "ann may not run judges: only admins can" in refusal(answer)
    assert team_server.ctx.store.table_counts()["generations"] == 0 and team_server.ctx.store.judges() == []
