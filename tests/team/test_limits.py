"""Per-user generation rate, maximum prompt length, who counts as one user, and the one GPU queue."""

import pytest

from alignui.config import AppConfig
from alignui.errors import UserError
from alignui.team.identity import resolve
from alignui.team.limits import Limits, RateLimited, RateLimiter, client_key
from alignui.ui.common import GPU_QUEUE


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_rate_limit_is_a_sliding_window_per_user():
    clock = Clock()
    limiter = RateLimiter(3, 60.0, clock=clock)
    for _ in range(3):
        limiter.hit("ann")
        clock.now += 10
    with pytest.raises(RateLimited, match=r"you started 3 generations in the last 60 s.*try again in 30 s"):
        limiter.hit("ann")
    limiter.hit("bob")  # other people are not affected
    assert limiter.used("ann") == 3  # the refused attempt was not counted
    clock.now += 30.5  # the first of ann's three has left the window
    limiter.hit("ann")
    with pytest.raises(RateLimited):
        limiter.hit("ann")


def test_zero_means_no_limit():
    limiter = RateLimiter(0)
    for _ in range(1000):
        limiter.hit("ann")


def test_long_prompts_are_refused_with_the_limit_and_what_to_do():
    limits = Limits.from_config(AppConfig(max_prompt_chars=10, rate_limit_per_minute=2))
    assert limits.check_prompt("short") == "short"
    with pytest.raises(UserError, match="11 characters long and the limit is 10; shorten it"):
        limits.check_prompt("x" * 11)
    with pytest.raises(UserError, match="characters long"):
        limits.check_generation("addr:1", "x" * 11)
    assert limits.generation.used("addr:1") == 0  # a refused prompt costs nothing
    limits.check_generation("addr:1", "ok")
    limits.check_generation("addr:1", "ok")
    with pytest.raises(RateLimited):
        limits.check_generation("addr:1", "ok")


def test_one_user_is_a_signed_in_name_or_an_address_never_a_typed_name():
    admins = frozenset({"root"})
    assert client_key(resolve(login_name="ann", admins=admins), "10.0.0.1") == "user:ann"
    typed = resolve(typed_name="whatever I like", admins=admins)
    other = resolve(typed_name="another name")
    assert client_key(typed, "10.0.0.1") == client_key(other, "10.0.0.1") == "addr:10.0.0.1"
    forged = {"x-forwarded-for": "1.2.3.4, 203.0.113.9"}
    assert client_key(typed, "10.0.0.1", forged) == "addr:10.0.0.1"  # not behind a proxy: headers are ignored
    assert client_key(typed, "10.0.0.1", forged, behind_proxy=True) == "addr:203.0.113.9"  # the proxy's hop


@pytest.mark.parametrize("batching", [True, False])
def test_every_model_endpoint_shares_the_one_gpu_queue(ctx, batching):
    """With batching, many model events run at once (the scheduler admits them fairly into shared decode
    steps); without (--no-batching), one at a time."""
    from dataclasses import replace

    from alignui.ui.app import build_ui
    from alignui.ui.common import BATCHED_EVENTS

    ctx.config = replace(ctx.config, batching=batching)
    demo = build_ui(ctx)
    gpu = {fn.api_name: fn for fn in demo.fns.values() if fn.concurrency_id == GPU_QUEUE}
    assert {"generate_pair", "arena_battle"} <= set(gpu)
    expected = BATCHED_EVENTS if batching else 1
    assert all(fn.concurrency_limit == expected for fn in gpu.values()), {n: f.concurrency_limit for n, f in gpu.items()}


def test_admit_generation_reads_who_and_where_from_the_request(config):
    """The UI helper the generating callbacks call: signed-in users by name, others by address."""
    from types import SimpleNamespace

    import gradio as gr
    from starlette.requests import Request

    from alignui.ui.signin import admit_generation

    def request(host, username=None):
        scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"", "client": (host, 1234),
                 "headers": [(b"x-forwarded-for", b"6.6.6.6")]}
        return gr.Request(request=Request(scope), username=username)

    ctx = SimpleNamespace(config=config, store=None, config_admins=frozenset(),
                          limits=Limits(max_prompt_chars=50, generation=RateLimiter(1)))
    ctx.store = SimpleNamespace(admin_names=lambda: frozenset())
    admit_generation(ctx, request("10.0.0.1"), "hi")
    with pytest.raises(RateLimited):
        admit_generation(ctx, request("10.0.0.1"), "hi")  # same address, forged header ignored off a Space
    admit_generation(ctx, request("10.0.0.2"), "hi")
    admit_generation(ctx, request("10.0.0.1", username="ann"), "hi")  # signed in: counted by name
    with pytest.raises(UserError, match="the limit is 50"):
        admit_generation(ctx, request("10.0.0.3"), "x" * 51)
