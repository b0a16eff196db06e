"""The named web API against a real server (gradio_client), including a restart of the server process."""

import pytest
from gradio_client import Client

from alignui.db import Store


def test_generate_and_vote_through_the_named_api(client, server):
    text_a, text_b, pair_id = client.predict("What color is the sky?", api_name="/generate_pair")
    assert text_a and text_b and pair_id
    assert client.predict(pair_id, "b", api_name="/submit_vote") == f"Saved: B is better for pair {pair_id}."
    saved = server.ctx.store.get_comparison(pair_id)
    assert (saved.verdict, saved.text_a, saved.text_b) == ("b", text_a, text_b)


def test_the_queue_does_not_rebuild_its_analytics_table_per_event(client, server):
    """Gradio's default rebuilt a pandas table of its last 10,000 events after every event (alignui.ui.app)."""
    queue, built = server.demo._queue, []
    real = queue._get_df
    queue._get_df = lambda records: built.append(len(records)) or real(records)
    for prompt in ("One.", "Two.", "Three."):
        client.predict(prompt, api_name="/generate_pair")
    assert built == []


def test_api_errors_are_clear_and_change_nothing(client, server):
    _, _, pair_id = client.predict("Tell me about snow.", api_name="/generate_pair")
    client.predict(pair_id, "a", api_name="/submit_vote")
    for args, fragment in [((pair_id, "b"), "already decided"), (("nope", "a"), "no pair with id 'nope'"),
                           ((pair_id, "maybe"), "verdict must be one of")]:
        with pytest.raises(Exception, match=fragment):
            client.predict(*args, api_name="/submit_vote")
    with pytest.raises(Exception, match="the prompt is empty"):
        client.predict("   ", api_name="/generate_pair")
    assert server.ctx.store.get_comparison(pair_id).verdict == "a"
    assert server.ctx.store.vote_counts()["total"] == 1


def test_api_names_are_the_contract(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/generate_pair", "/submit_vote"} <= names


@pytest.mark.slow
def test_a_vote_survives_a_server_restart(server_process, storage):
    first = server_process().start()
    c = Client(first.url, verbose=False)
    _, _, pair_id = c.predict("Where can I find a penguin?", api_name="/generate_pair")
    c.predict(pair_id, "tie", api_name="/submit_vote")
    first.stop(kill=True)  # no clean shutdown: the acknowledged vote must already be on disk
    second = server_process().start()
    with pytest.raises(Exception, match="already decided"):
        Client(second.url, verbose=False).predict(pair_id, "a", api_name="/submit_vote")
    second.stop()
    with Store(storage / "alignui.duckdb") as s:
        assert s.get_comparison(pair_id).verdict == "tie"
