"""Endpoints through the named web API (gradio_client on a real app server, `transformers serve` beside it):
/models, a pair across the in-process model and an endpoint, and the endpoint killed mid-stream."""

import json

import pytest

from alignui.config import AppConfig
from conftest import free_port, wait_for

SECRET = "sk-api-test-key-that-must-not-leak"
TABLES = ("prompts", "generations", "comparisons")
ENDPOINT = "ep-zebra-9k"  # a name that cannot occur in generated text by chance


@pytest.fixture
def config(storage, openai_server, request):
    endpoints = [openai_server.spec(ENDPOINT)]
    if "long_openai_server" in request.fixturenames:
        endpoints.append(request.getfixturevalue("long_openai_server").spec("slow"))
    return AppConfig(storage=storage, model="demo", port=free_port(), offline=True, endpoints=tuple(endpoints),
                     endpoint_api_key=SECRET)


def test_models_and_a_pair_across_the_served_model_and_an_endpoint(client, server):
    assert client.predict(api_name="/models") == ["demo", ENDPOINT]
    job = client.submit("Tell me about the sea.", "", ENDPOINT, api_name="/generate_pair")
    text_a, text_b, pair_id = job.result(timeout=300)
    assert text_a and text_b and pair_id
    assert any(out[0] and not out[2] for out in job.outputs()) and any(out[1] and not out[2] for out in job.outputs())
    pair = server.ctx.store.get_comparison(pair_id)
    assert (pair.model_a, pair.model_b, pair.text_a, pair.text_b) == ("demo", ENDPOINT, text_a, text_b)
    assert client.predict(pair_id, "a", api_name="/submit_vote").startswith("Saved: A is better")
    swapped = server.ctx.store.get_comparison(client.predict("Hi!", ENDPOINT, "demo", api_name="/generate_pair")[2])
    assert (swapped.model_a, swapped.model_b) == (ENDPOINT, "demo")
    with pytest.raises(Exception, match=r"unknown generator 'nope'"):
        client.predict("Hi!", "nope", api_name="/generate_pair")


def test_an_endpoint_killed_mid_stream_saves_nothing_and_names_the_endpoint(client, server, long_openai_server,
                                                                            capfd):
    before = server.ctx.store.table_counts(TABLES)
    job = client.submit("Tell me about the sea.", "", "slow", api_name="/generate_pair")
    wait_for(lambda: any(out[1] for out in job.outputs()), "side B streaming from the endpoint", timeout=240)
    long_openai_server.kill()
    with pytest.raises(Exception) as err:
        job.result(timeout=240)
    message = str(err.value)
    assert "endpoint 'slow'" in message and "nothing was saved" in message and SECRET not in message
    assert server.ctx.store.table_counts(TABLES) == before
    text_a, text_b, pair_id = client.predict("Still there?", "", ENDPOINT, api_name="/generate_pair")
    assert pair_id and server.ctx.store.get_comparison(pair_id).model_b == ENDPOINT  # the app keeps serving
    out, errors = capfd.readouterr()
    assert SECRET not in out + errors  # nor in the app's logs


def test_an_endpoint_is_a_blind_arena_contestant_until_the_vote(client, server):
    job = client.submit("Tell me about the moon.", api_name="/arena_battle")
    text_a, text_b, battle_id = job.result(timeout=300)
    assert len(job.outputs()) > 1 and ENDPOINT not in json.dumps(job.outputs())  # it streams, and names no one
    assert "zebra" not in json.dumps(client.view_api(print_info=False, return_format="dict"))
    saved = server.ctx.store.get_comparison(battle_id)
    assert {saved.model_a, saved.model_b} == {"base", ENDPOINT} and (saved.text_a, saved.text_b) == (text_a, text_b)
    assert client.predict(battle_id, "a", api_name="/arena_vote") == f"{saved.model_a} vs {saved.model_b}"
    assert {m["model"] for m in client.predict(api_name="/leaderboard")["models"]} == {"base", ENDPOINT}


@pytest.mark.e2e
def test_the_annotate_tab_picks_the_endpoint_for_side_b_in_the_browser(server, page):
    from e2e.test_annotate import open_settings, ready_pair, start_session, wait_remembered

    start_session(page, server.url)
    open_settings(page)
    page.locator("#model-b input").click()
    page.get_by_role("option", name=f"{ENDPOINT} (endpoint: ").click()
    wait_remembered(page, server.ctx.store, model_b=ENDPOINT)  # remembered with the other settings
    page.locator("#prompt textarea").fill("Tell me about the sea.")
    page.locator("#prompt textarea").press("Enter")
    pair = server.ctx.store.get_comparison(ready_pair(page))
    assert (pair.model_a, pair.model_b) == ("demo", ENDPOINT)
    assert page.locator("#response-b textarea").input_value() == pair.text_b
