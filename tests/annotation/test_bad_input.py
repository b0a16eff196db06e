"""Input a browser never sends but an API caller can: numbers, lists and dicts where text is expected, lone
surrogates, a megabyte of id. Each is refused with one short line that names the input, and nothing is saved."""

import json
import uuid

import httpx
import pytest

from alignui.annotation.pairs import submit_vote
from alignui.arena.battle import vote as arena_vote
from alignui.db import NewGeneration
from alignui.errors import UserError

ODD = [5, 3.5, True, [1, 2], {"a": 1}, "\ud800", "x" * 1_000_000]


def a_pair(store, kind="annotate"):
    return store.save_pair([{"role": "user", "content": "Q?"}], NewGeneration("base", "x"),
                           NewGeneration("run-1", "y"), kind=kind, annotator="ann")


@pytest.mark.parametrize("value", ODD, ids=lambda v: type(v).__name__ + str(len(str(v))))
def test_odd_ids_and_verdicts_are_one_short_user_error(store, value):
    pair, battle = a_pair(store), a_pair(store, "arena")
    attempts = [lambda: submit_vote(store, value, "a", annotator="ann"),
                lambda: submit_vote(store, pair.id, value, annotator="ann"),
                lambda: arena_vote(store, value, "a", annotator="ann"),
                lambda: arena_vote(store, battle.id, value, annotator="ann")]
    for attempt in attempts:
        with pytest.raises(UserError) as refused:
            attempt()
        message = str(refused.value)
        assert len(message) < 300 and "object has no attribute" not in message, message
    assert store.get_comparison(pair.id).verdict is None and store.get_comparison(battle.id).verdict is None


def test_verdicts_are_normalised_the_same_way_on_both_paths(store):
    assert submit_vote(store, a_pair(store).id, " A ", annotator="ann").startswith("Saved: A is better")
    assert arena_vote(store, a_pair(store, "arena").id, "B ", annotator="ann").verdict == "b"


def test_the_api_refuses_odd_prompts_ids_and_verdicts_in_one_line(server, client, capfd, caplog):
    """Through the named API, as gradio_client sends it (JSON: a lone surrogate travels as a \\ud800 escape)."""
    store = server.ctx.store
    pair = a_pair(store)
    calls = [((5,), "/generate_pair", "the prompt must be text, got int 5"),
             (([1, 2],), "/arena_battle", "the prompt must be text, got list [1, 2]"),
             ((5, "a"), "/submit_vote", "the pair id must be text, got int 5"),
             ((pair.id, {"v": 1}), "/submit_vote", "verdict must be one of a, b, tie, both_bad, skip; got {'v': 1}"),
             (("x" * 100_000, "a"), "/submit_vote", "(100,000 characters)"),
             ((pair.id, 7), "/arena_vote", "verdict must be one of a, b, tie, both_bad; got 7")]
    for args, endpoint, expected in calls:
        with pytest.raises(Exception) as refused:
            client.predict(*args, api_name=endpoint)
        message = str(refused.value)
        assert expected in message and "Traceback" not in message and len(message) < 400, (endpoint, message)
    assert store.get_comparison(pair.id).verdict is None
    assert store.table_counts()["comparisons"] == 1  # nothing generated, nothing saved
    assert "Traceback" not in capfd.readouterr().err  # a refused request is one log line on the server
    refused = [r.getMessage() for r in caplog.records if r.name == "alignui"]
    assert len(refused) == len(calls) and all(len(line) < 300 for line in refused), refused


def raw_call(server, api_name: str, data: list) -> dict:
    """queue/join + SSE by hand, the body encoded with ensure_ascii (how a lone surrogate crosses JSON)."""
    index = next(i for i, fn in server.demo.fns.items() if fn.api_name == api_name)
    session = uuid.uuid4().hex[:10]
    body = json.dumps({"data": data, "fn_index": index, "session_hash": session, "event_data": None,
                       "trigger_id": None})
    with httpx.Client(base_url=server.url, timeout=120) as http:
        joined = http.post("gradio_api/queue/join", content=body, headers={"content-type": "application/json"})
        assert joined.status_code == 200, joined.text
        with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("the event never completed")


def test_a_lone_surrogate_in_a_prompt_is_refused_in_one_line(server):
    for api_name, rest in (("generate_pair", ["", ""]), ("arena_battle", [])):  # model_a, model_b: the served one
        answer = raw_call(server, api_name, ["hi \ud800 there", *rest])
        assert answer["success"] is False, answer
        assert "lone surrogate U+D800 at position 3" in answer["output"]["error"], answer
    assert server.ctx.store.table_counts()["comparisons"] == 0
