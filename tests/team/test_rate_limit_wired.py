"""The per-user generation limit is applied by the running app (Annotate API, Arena API), not just defined."""


import pytest
from gradio_client import Client

from conftest import served


@pytest.fixture
def limited_server(config):
    with served(config, rate_limit_per_minute=2) as app:
        yield app.url, app.ctx


def test_generation_beyond_the_limit_is_refused_and_saves_nothing(limited_server):
    url, ctx = limited_server
    client = Client(url, verbose=False)
    for _ in range(2):
        client.predict("What color is grass?", api_name="/generate_pair")
    with pytest.raises(Exception, match=r"limit per person; try again in \d+ s"):
        client.predict("What color is grass?", api_name="/generate_pair")
    with pytest.raises(Exception, match="limit per person"):  # the arena shares the same per-user budget
        client.predict("What color is grass?", api_name="/arena_battle")
    assert ctx.store.vote_counts()["pending"] == 2
    # voting is never rate limited
    pair_ids = [r[0] for r in ctx.store.query("SELECT id FROM comparisons")]
    assert all(client.predict(pid, "a", api_name="/submit_vote").startswith("Saved") for pid in pair_ids)
