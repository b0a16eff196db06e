"""The Data tab's thumbs ratings: an admin browses everyone's and soft-deletes one (gone from counts and
exports, kept in the file, listed again with 'Show deleted'); an annotator sees only their own, and a hand-made
delete event from a signed-in annotator is refused and changes nothing."""

import pytest

from alignui.annotation import curation
from alignui.db import NewGeneration
from alignui.errors import NotFoundError, UserError
from alignui.team.identity import Identity, PermissionDenied
from team.test_roles import REFUSED, call_event, fn_by_trigger, logged_in_http, refusal, team_server  # noqa: F401

BOSS, ANN = Identity("boss", "admin", "login"), Identity("ann", "annotator", "login")


def rate(store, annotator: str, prompt: str, response: str, label: str) -> str:
    item = store.save_single([{"role": "user", "content": prompt}], NewGeneration("base", response),
                             annotator=annotator)
    store.rate(item.id, label, annotator=annotator)
    return item.id


def seed(store) -> dict[str, str]:
    return {"ann-up": rate(store, "ann", "Name a colour.", "Blue, thank you!", "up"),
            "ann-down": rate(store, "ann", "What is 2+2?", "Five.", "down"),
            "bob-up": rate(store, "bob", "Say hi.", "Hi there, thank you!", "up")}


def test_an_admin_browses_filters_and_deletes_a_thumb_an_annotator_sees_only_their_own(store):
    ids = seed(store)
    everyone = curation.browse_thumbs(store, viewer=BOSS)
    assert everyone.caption == "3 thumbs ratings match · page 1 of 1"
    assert {r[0] for r in everyone.rows} == set(ids.values())
    assert [r[0] for r in curation.browse_thumbs(store, "up", viewer=BOSS).rows] == [ids["bob-up"], ids["ann-up"]]
    assert [r[0] for r in curation.browse_thumbs(store, text="2+2", viewer=BOSS).rows] == [ids["ann-down"]]
    assert [r[0] for r in curation.browse_thumbs(store, text="THANK", viewer=BOSS).rows] == [ids["bob-up"],
                                                                                            ids["ann-up"]]
    own = curation.browse_thumbs(store, viewer=ANN)
    assert {r[0] for r in own.rows} == {ids["ann-up"], ids["ann-down"]} and {r[2] for r in own.rows} == {"ann"}

    with pytest.raises(PermissionDenied, match=REFUSED.format("delete")):
        curation.delete_thumb(store, ids["bob-up"], ANN)
    assert store.rating_counts()["up"] == 2

    done = curation.delete_thumb(store, ids["bob-up"], BOSS)
    assert done.startswith(f"Thumbs rating {ids['bob-up']} (by bob) deleted by boss")
    assert store.rating_counts()["up"] == 1
    assert len(store.ratings_export_table()) == 2  # exports leave it out
    assert ids["bob-up"] not in {r[0] for r in curation.browse_thumbs(store, viewer=BOSS).rows}
    shown = {r[0]: r[3] for r in curation.browse_thumbs(store, include_deleted=True, viewer=BOSS).rows}
    assert shown[ids["bob-up"]] == "up (deleted)"

    with pytest.raises(NotFoundError, match="unknown or already deleted"):
        curation.delete_thumb(store, ids["bob-up"], BOSS)
    with pytest.raises(UserError, match="pick a thumbs rating"):
        curation.delete_thumb(store, "  ", BOSS)
    with pytest.raises(UserError, match="thumb must be one of"):
        curation.browse_thumbs(store, "sideways", viewer=BOSS)


def test_a_signed_in_annotator_cannot_delete_or_read_others_thumbs_through_the_events(team_server):
    store = team_server.ctx.store
    ids = seed(store)
    ann = logged_in_http(team_server, "ann")
    refused = call_event(ann, fn_by_trigger(team_server, "thumb-delete"), [ids["bob-up"], "any", "", False, 1,
                                                                           "boss"])  # typing an admin's name
    assert REFUSED.format("delete") in refusal(refused), refused
    assert store.rating_counts()["up"] == 2
    listed = call_event(ann, fn_by_trigger(team_server, "thumbs-search"), ["any", "", True, 1, "boss"])
    rows = listed["output"]["data"][0]["data"]
    assert {r[0] for r in rows} == {ids["ann-up"], ids["ann-down"]}

    boss = logged_in_http(team_server, "boss")
    deleted = call_event(boss, fn_by_trigger(team_server, "thumb-delete"), [ids["bob-up"], "any", "", False, 1, ""])
    assert deleted["success"] is True and store.rating_counts()["up"] == 1
