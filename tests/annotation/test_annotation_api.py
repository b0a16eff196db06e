"""Annotating through the named web API only (gradio_client against a real server): draw, generate, vote."""

import pytest

from alignui.annotation.pool import parse_lines

PROMPTS = ["What is a cat?", "Name a fruit.", "How do birds fly?"]
VERDICTS = ["a", "b", "tie"]


def test_a_script_annotates_the_whole_pool_through_the_named_api(client, server):
    store = server.ctx.store
    store.add_prompts_bulk(parse_lines("\n".join(PROMPTS)))
    done = {}
    for verdict in VERDICTS:
        prompt = client.predict(api_name="/draw_prompt")
        assert prompt in PROMPTS and prompt not in done, "each call draws a prompt not annotated yet"
        text_a, text_b, pair_id = client.predict(prompt, api_name="/generate_pair")
        assert text_a and text_b and pair_id
        status = client.predict(pair_id, verdict, api_name="/submit_vote")
        assert status.startswith("Saved:") and pair_id in status
        done[prompt] = (pair_id, verdict, text_a, text_b)
    assert client.predict(api_name="/draw_prompt") == "", "the pool is used up for this caller"
    assert store.pool_counts() == {"prompts": 3, "pending": 0, "done": 3, "heldout": 0}
    for prompt, (pair_id, verdict, text_a, text_b) in done.items():
        saved = store.get_comparison(pair_id)
        assert (saved.verdict, saved.text_a, saved.text_b, saved.messages[-1]["content"]) == (
            verdict, text_a, text_b, prompt)
        assert saved.prompt_id == store.find_prompt([{"role": "user", "content": prompt}]), "no duplicate prompt"
    assert store.vote_counts()["total"] == 3 and store.vote_counts()["pending"] == 0


def test_bad_votes_through_the_api_are_refused_and_change_nothing(client, server):
    _, _, pair_id = client.predict("Tell me about snow.", api_name="/generate_pair")
    client.predict(pair_id, "skip", api_name="/submit_vote")
    for args, fragment in [((pair_id, "a"), "already decided \\(skip\\); nothing changed"),
                           (("no-such-pair", "a"), "no pair with id 'no-such-pair'"),
                           (("", "a"), "no pair id given"),
                           ((pair_id, "A better"), "verdict must be one of")]:
        with pytest.raises(Exception, match=fragment):
            client.predict(*args, api_name="/submit_vote")
    with pytest.raises(Exception, match="tokens but only .* truncate"):
        client.predict("word " * 700, api_name="/generate_pair")
    assert server.ctx.store.get_comparison(pair_id).verdict == "skip"
    assert server.ctx.store.vote_counts()["total"] == 1 and server.ctx.store.vote_counts()["pending"] == 0


def test_the_extra_endpoint_is_listed_beside_the_contract(client):
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/generate_pair", "/submit_vote", "/draw_prompt", "/models"} <= set(info)
    params = info["/generate_pair"]["parameters"]  # (prompt, model_a="", model_b=""): "" = the served model
    assert [(p["parameter_name"], p["parameter_has_default"]) for p in params] == [
        ("prompt", False), ("model_a", True), ("model_b", True)]
    assert [p["parameter_default"] for p in params[1:]] == ["", ""]
    assert [p["parameter_name"] for p in info["/submit_vote"]["parameters"]] == ["pair_id", "verdict"]
