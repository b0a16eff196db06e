"""Thumbs up/down tried as an attacker would: a signed-in annotator (ann) calling the named API (gradio_client) and
the Thumbs tab's events as the browser sends them (raw queue calls), plus the shared per-person rate limit.

- a pending response belongs to the annotator it was generated for: a thumb by anyone else (an admin included) is
  refused and changes nothing, whatever name is typed;
- an annotator's thumbs history shows their own ratings only;
- /generate_single draws on the same per-person generation budget as /generate_pair and the arena.
"""

import json

import pytest
from gradio_client import Client

from alignui.db import NewGeneration
from conftest import served
from team.test_privacy import fn_named
from team.test_roles import call_event, logged_in_http, login, refusal, team_server  # noqa: F401


def bobs_item(store, text="Bob's secret answer."):
    return store.save_single([{"role": "user", "content": "Bob's question?"}], NewGeneration("base", text),
                             annotator="bob")


def test_a_thumb_on_someone_elses_response_is_refused_and_changes_nothing(team_server):
    store = team_server.ctx.store
    item = bobs_item(store)
    for name in ("ann", "boss"):
        with pytest.raises(Exception, match=f"response {item.id} was generated for another annotator, so {name} "
                                            "cannot rate it"):
            login(team_server, name).predict(item.id, "down", api_name="/submit_thumb")
    ann = logged_in_http(team_server, "ann")
    for button in ("thumb-up", "thumb-down", "thumb-skip"):  # the browser's own events, with bob's name typed in
        answer = call_event(ann, fn_named(team_server, button, "ui_thumb"), [None, "bob"])
        assert "no response to rate yet" in refusal(answer), answer
    assert store.get_rating(item.id).label is None
    assert login(team_server, "bob").predict(item.id, "up", api_name="/submit_thumb").startswith("Saved: 👍")
    with pytest.raises(Exception, match="already rated"):
        login(team_server, "bob").predict(item.id, "down", api_name="/submit_thumb")
    assert store.get_rating(item.id).label == "up"


def test_an_annotator_sees_only_their_own_thumbs(team_server):
    store = team_server.ctx.store
    item = bobs_item(store)
    store.rate(item.id, "down", annotator="bob")
    ann = login(team_server, "ann")
    text, mine = ann.predict("Say hi.", api_name="/generate_single")
    assert text and mine and store.get_rating(mine).annotator == "ann"
    assert ann.predict(mine, "UP ", api_name="/submit_thumb").startswith("Saved: 👍 thumbs up")
    http = logged_in_http(team_server, "ann")
    answer = call_event(http, _counts_fn(team_server), ["bob"])  # typing bob's name changes nothing
    assert answer["success"] is True, answer
    seen = json.dumps(answer["output"]["data"])
    assert mine in seen and item.id not in seen and "Bob's secret answer." not in seen


def _counts_fn(server) -> int:
    """An event that refreshes the Thumbs tab's counts and history (one runs after each thumb button, one when the
    name box loses focus)."""
    counts = {bid for bid, block in server.demo.blocks.items() if getattr(block, "elem_id", None) == "thumb-counts"}
    found = [i for i, fn in server.demo.fns.items()
             if fn.name == "ui_counts" and any(b._id in counts for b in fn.outputs)]
    assert len(found) == 4, found
    return found[0]


@pytest.fixture
def limited_server(config):
    with served(config, rate_limit_per_minute=2) as app:
        yield app.url, app.ctx


def test_single_responses_count_against_the_per_person_rate_limit(limited_server):
    url, ctx = limited_server
    client = Client(url, verbose=False)
    client.predict("What color is grass?", api_name="/generate_pair")
    _, item = client.predict("What color is grass?", api_name="/generate_single")
    with pytest.raises(Exception, match=r"limit per person; try again in \d+ s"):
        client.predict("What color is the sky?", api_name="/generate_single")
    assert ctx.store.rating_counts()["pending"] == 1
    assert client.predict(item, "-", api_name="/submit_thumb").startswith("Saved: 👎")  # rating is never limited


@pytest.fixture
def limited_team_server(config):
    from team.test_roles import ACCOUNTS, ADMINS

    with served(config, users=ACCOUNTS, admins=ADMINS, rate_limit_per_minute=2) as app:
        yield app


def test_next_over_raw_http_is_charged_only_when_it_generates_and_refused_past_the_limit(limited_team_server):
    """ann, signed in, presses the Thumbs tab's Next as the browser sends it: on an empty pool it generates nothing
    and costs nothing (it used to cost a generation); past the limit it is refused and nothing is generated."""
    from team.test_roles import fn_by_trigger

    server, store = limited_team_server, limited_team_server.ctx.store
    ann, nxt = logged_in_http(server, "ann"), fn_by_trigger(limited_team_server, "thumb-next")
    for _ in range(3):  # empty pool: three presses, none charged
        empty = call_event(ann, nxt, [None, None, ""])
        assert empty["success"] is True and not refusal(empty)
    store.add_prompts_bulk([[{"role": "user", "content": f"Pool prompt {i}."}] for i in range(3)], source="pool")
    for _ in range(2):
        assert call_event(ann, nxt, [None, None, ""])["success"] is True
    assert store.rating_counts()["pending"] == 2
    refused = call_event(ann, nxt, [None, None, ""])
    assert "limit per person" in refusal(refused), refused
    assert store.rating_counts()["pending"] == 2
