"""The arena's named API against a real server (gradio_client): blind battles, one vote, the reveal, /leaderboard."""

import json

import pytest

from arena.test_arena import make_adapter

SECRET = "dpo-zebra-7q"  # an adapter id that cannot occur in generated text by chance


def names_in(payload) -> list[str]:
    text = json.dumps(payload)
    return [name for name in (SECRET, "zebra") if name in text]


def test_a_battle_names_no_model_until_the_vote_reveals_both(client, server, storage):
    make_adapter(server.ctx.store, storage, SECRET)
    job = client.submit("Tell me about the moon.", api_name="/arena_battle")
    final = job.result()
    streamed = job.outputs()
    assert len(streamed) > 1  # it streams
    for answer in streamed:
        assert not names_in(answer)
    text_a, text_b, battle_id = final
    assert battle_id and "base" not in battle_id and not names_in(client.view_api(print_info=False,
                                                                                 return_format="dict"))
    saved = server.ctx.store.get_comparison(battle_id)
    assert (saved.text_a, saved.text_b) == (text_a, text_b)  # the texts are the generations, nothing added
    assert {saved.model_a, saved.model_b} == {"base", SECRET} and saved.kind == "arena"

    revealed = client.predict(battle_id, "a", api_name="/arena_vote")
    assert revealed == f"{saved.model_a} vs {saved.model_b}"
    with pytest.raises(Exception, match="already decided"):
        client.predict(battle_id, "b", api_name="/arena_vote")  # a replay changes nothing
    assert server.ctx.store.get_comparison(battle_id).verdict == "a"
    with pytest.raises(Exception, match="no arena battle with id 'nope'"):
        client.predict("nope", "a", api_name="/arena_vote")

    board = client.predict(api_name="/leaderboard")
    assert {m["model"] for m in board["models"]} == {"base", SECRET}
    assert all(m["battles"] == 1 for m in board["models"])
    (pair,) = board["pairs"]
    assert (pair["model_a"], pair["model_b"], pair["n"]) == (SECRET, "base", 1)
    assert pair["win_rate_a"] == (1.0 if saved.model_a == SECRET else 0.0)


def test_an_empty_prompt_battles_on_a_held_out_prompt(client, server, storage):
    make_adapter(server.ctx.store, storage, SECRET)
    with pytest.raises(Exception, match="no held-out prompts yet"):
        client.predict("", api_name="/arena_battle")
    pid = server.ctx.store.add_prompt([{"role": "user", "content": "A held-out question?"}], split="heldout")
    *_, battle_id = client.predict("  ", api_name="/arena_battle")
    assert server.ctx.store.get_comparison(battle_id).prompt_id == pid
    with pytest.raises(Exception, match="verdict must be one of"):
        client.predict(battle_id, "skip", api_name="/arena_vote")


def test_arena_api_names_are_the_contract(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/arena_battle", "/arena_vote", "/leaderboard"} <= names
