"""Cross-request batching on the demo model: concurrent requests share decode steps, each row keeps its own
settings, a cancelled request leaves the batch and saves nothing, admission is fair across annotators, and
greedy output does not depend on the batch (padding and attention mask are right)."""

import contextlib
import random
import threading
import time
import types
from dataclasses import replace

import pytest

from alignui.annotation.pairs import stream_annotation_pair
from alignui.serving.generation import PairSettings, SamplingSettings, encode_prompt, stream_rows
from alignui.serving import scheduler
from alignui.serving.scheduler import batch_scheduler, stream_scheduled

GREEDY = SamplingSettings(temperature=0, max_new_tokens=40)
CATS = [{"role": "user", "content": "Tell me about cats"}]


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def finish(handle, messages, sides, seed=1, owner=""):
    last = None
    for last in stream_rows(handle, messages, sides, seed, owner=owner):
        pass
    return last


@contextlib.contextmanager
def worker_held(handle):
    """Keep the model's worker busy so that requests pile up waiting; released on leaving."""
    gate, started = threading.Event(), threading.Event()
    job = handle.submit(lambda: (started.set(), gate.wait(120)))
    started.wait(60)
    try:
        yield
    finally:
        gate.set()
        job.result()


def until(condition, what: str, timeout: float = 120.0):
    """Wait for `condition()` (a state, not a speed: the timeout only keeps a broken run from hanging)."""
    done = threading.Event()
    for _ in range(int(timeout * 20)):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def in_threads(jobs):
    results, errors = [None] * len(jobs), []

    def run(i, job):
        try:
            results[i] = job()
        except BaseException as exc:  # re-raised in the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    return threads, results, errors


def test_concurrent_pairs_share_forward_passes(ctx):
    handle, sampled = ctx.model, SamplingSettings(temperature=0.9, max_new_tokens=24)
    sched = batch_scheduler(handle)
    prompts = [ask(f"Tell me about animal number {i}") for i in range(6)]
    before = sched.stats.forwards
    for i, p in enumerate(prompts):
        finish(handle, p, [sampled, sampled], seed=i)
    sequential = sched.stats.forwards - before
    before = sched.stats.forwards
    with worker_held(handle):
        threads, results, errors = in_threads([lambda p=p, i=i: finish(handle, p, [sampled, sampled], seed=i)
                                               for i, p in enumerate(prompts)])
        until(lambda: sched.waiting() == 6, "6 requests waiting")
    for t in threads:
        t.join()
    assert not errors
    concurrent = sched.stats.forwards - before
    assert max(list(sched.stats.rows_per_forward)[-concurrent:]) == 12  # all six pairs in one decode step
    assert concurrent <= sequential / 3, (concurrent, sequential)
    assert all(r[2] is not None and len(r[2]) == 2 for r in results)


def test_each_row_stops_at_its_own_max_new_tokens(ctx):
    handle = ctx.model
    short, long_ = replace(GREEDY, max_new_tokens=5), replace(GREEDY, max_new_tokens=17)
    with worker_held(handle):
        threads, results, errors = in_threads([
            lambda: finish(handle, CATS, [short, long_]),
            lambda: finish(handle, ask("Tell me about dogs"), [replace(GREEDY, max_new_tokens=9)])])
        until(lambda: batch_scheduler(handle).waiting() == 2, "both requests waiting")
    for t in threads:
        t.join()
    assert not errors
    pair, single = results[0][2], results[1][2]
    assert [g.n_tokens for g in pair] == [5, 17]  # the greedy cat answer is longer than 17 tokens
    assert pair[1].text.startswith(pair[0].text) and len(pair[1].text) > len(pair[0].text)
    assert single[0].n_tokens == 9 and single[0].params["max_new_tokens"] == 9


def test_greedy_rows_are_the_same_alone_batched_and_joining_a_running_batch(ctx):
    handle = ctx.model
    alone_old = finish(replace(handle, batching=False), CATS, [GREEDY])[0][0]  # transformers' generate
    alone = finish(handle, CATS, [GREEDY])[0][0]
    assert alone == alone_old and len(alone) > 20
    long_prompt = ask("Tell me about the sea, the sky, the mountains and everything that lives in them " * 3)
    long_row = replace(GREEDY, max_new_tokens=60)
    long_alone = finish(handle, long_prompt, [long_row])[0][0]
    sched = batch_scheduler(handle)
    updates = stream_rows(handle, long_prompt, [long_row], 3)
    first = next(u for u in updates if u[0][0])  # the long request is decoding now
    assert first[0][0]
    threads, results, errors = in_threads([lambda: finish(handle, CATS, [GREEDY, GREEDY])])  # joins it
    until(lambda: sched.waiting() == 0 and len(sched._batch) > 1 or not threads[0].is_alive(), "the join")
    rest = list(updates)
    threads[0].join()
    assert not errors
    assert results[0][0] == (alone, alone)  # shorter prompt, left-padded into a longer running batch
    assert rest[-1][0][0] == long_alone
    assert max(sched.stats.rows_per_forward) >= 3


def test_a_cancelled_request_stops_within_steps_saves_nothing_and_the_others_finish(ctx, monkeypatch):
    monkeypatch.setattr(scheduler, "STREAM_EVERY_S", 0.0)  # every step's tokens: the test counts steps by updates
    real_step = scheduler.BatchScheduler._step

    def paced_step(self):  # the batch runs on while this thread reads; at full speed on a loaded host the other pair
        time.sleep(0.05)  # was nearly done by the close (CI: 1 step after it), leaving nothing to count
        return real_step(self)

    monkeypatch.setattr(scheduler.BatchScheduler, "_step", paced_step)
    handle, store = ctx.model, ctx.store
    settings = PairSettings.same(temperature=0, max_new_tokens=60)
    sched = batch_scheduler(handle)
    pairs_before = store.query("SELECT count(*) FROM comparisons")[0][0]
    leaving = stream_annotation_pair(store, handle, CATS, settings, random.Random(0), annotator="leaves")
    with worker_held(handle):
        threads, results, errors = in_threads([lambda: list(stream_annotation_pair(
            store, handle, ask("Tell me about dogs"), settings, random.Random(1), annotator="stays"))])
        until(lambda: sched.waiting() == 1, "the other request waiting")
        got = []
        threading.Thread(target=lambda: got.append(next(leaving)), daemon=True).start()
        until(lambda: sched.waiting() == 2, "both requests waiting")
    until(lambda: got, "the leaving request's first update")
    for _ in range(2):
        next(leaving)
    at_close = sched.stats.forwards
    leaving.close()  # what Gradio does when the tab closes or a new event replaces this one
    threads[0].join()
    assert not errors
    after = list(sched.stats.rows_per_forward)[at_close - sched.stats.forwards:] if sched.stats.forwards > at_close \
        else []
    assert len(after) > 2 and all(n <= 2 for n in after[2:]), after  # the leaving pair's two rows are gone within two steps
    assert store.query("SELECT count(*) FROM comparisons")[0][0] == pairs_before + 1
    saved = results[0][-1].pair
    assert saved is not None and saved.annotator == "stays"


def test_one_annotator_flooding_does_not_starve_another(ctx):
    handle = ctx.model
    sched = batch_scheduler(handle)
    sched.max_rows = 2  # one pair at a time: admission order is all that decides who waits
    row = replace(GREEDY, max_new_tokens=3)
    admitted_before = len(sched.stats.admitted)
    try:
        with worker_held(handle):
            flood, _, flood_errors = in_threads([lambda i=i: finish(handle, ask(f"flood {i}"), [row, row], owner="flood")
                                                for i in range(8)])
            until(lambda: sched.waiting() == 8, "the flood waiting")
            other, _, other_errors = in_threads([lambda: finish(handle, ask("my turn"), [row, row], owner="other")])
            until(lambda: sched.waiting() == 9, "the other annotator waiting")
        for t in flood + other:
            t.join()
    finally:
        sched.max_rows = 32
    assert not flood_errors and not other_errors
    order = list(sched.stats.admitted)[admitted_before:]
    assert len(order) == 9 and order.index("other") <= 1, order  # FIFO would admit it ninth


@pytest.mark.parametrize("batching", [True, False])
def test_stored_generation_says_how_it_was_batched(ctx, batching):
    handle = replace(ctx.model, batching=batching)
    gens = finish(handle, CATS, [replace(GREEDY, max_new_tokens=4)])[2]
    assert (gens[0].params.get("batching") == "shared_steps") is batching



def test_unnamed_annotators_take_turns_by_browser_session(ctx):
    """Every unnamed caller is 'anonymous': the batch admits them by their browser session instead, so two
    anonymous tabs take turns (one lane between them would let one starve the other); a name still wins."""
    from alignui.annotation.prefs import AnnotationPrefs
    from alignui.annotation.workspace import Workspace, generate
    from alignui.ui.annotate import _AnnotateTab as AnnotateTab

    sched = batch_scheduler(ctx.model)
    prefs = AnnotationPrefs(max_new_tokens=4)
    owners = []
    for name, session in (("anonymous", "tab-1"), ("anonymous", "tab-2"), ("ann", "tab-3")):
        ws = AnnotateTab.owned(Workspace(), types.SimpleNamespace(session_hash=session))
        before = len(sched.stats.admitted)
        views = list(generate(ctx.store, ctx.model, ws, f"hello from {session}", prefs, random.Random(0),
                              annotator=name))
        assert views[-1].ws.pair_id, views[-1].status
        owners += list(sched.stats.admitted)[before:]
    assert owners == ["session:tab-1", "session:tab-2", "ann"]


def test_a_stream_passes_the_first_tokens_at_once_then_the_newest_at_most_every_interval_and_always_the_end(ctx):
    """Each update costs the web server a round of event processing per request: tokens are passed on at most
    every STREAM_EVERY_S (the newest; none lost, since each carries every token so far), the end always."""
    import time

    handle = ctx.model
    sched = batch_scheduler(handle)
    side = SamplingSettings(temperature=0, max_new_tokens=80)
    prompt = encode_prompt(handle, ask("Tell me about cats"), side.max_new_tokens)
    steps_before = sched.stats.forwards
    req = sched.request("t", prompt, [side], seed=1)
    seen = [(time.perf_counter(), m) for m in stream_scheduled(sched, req) if m[0] != "waiting"]
    kinds = [m[0] for _, m in seen]
    assert kinds[-1] == "end" and set(kinds[:-1]) == {"tokens"} and len(seen) >= 2
    tokens = [len(m[1][0]) for _, m in seen]
    assert tokens[0] >= 1 and tokens == sorted(tokens)  # each update holds every token so far
    assert list(seen[-1][1][1][0]) == req.rows[0].tokens and len(req.rows[0].tokens) > 10  # the end: all of them
    gaps = [b[0] - a[0] for a, b in zip(seen[:-2], seen[1:-1])]  # between tokens updates (the end comes at once)
    assert all(g >= scheduler.STREAM_EVERY_S * 0.9 for g in gaps), gaps
    assert len(seen) - 1 <= sched.stats.forwards - steps_before  # never more updates than decode steps


def test_a_rows_draws_follow_its_filtered_distribution_and_a_greedy_row_takes_the_argmax():
    """The batched inverse-CDF draw (each row's pre-drawn uniform) samples exactly what PerRowSampling keeps:
    frequencies within sampling error of the filtered probabilities, never a token top-p dropped."""
    import torch

    from alignui.serving.generation import PerRowSampling
    from alignui.serving.scheduler import BatchScheduler

    class Row:
        def __init__(self, temperature, top_p, u):
            self.settings = SamplingSettings(temperature=temperature, top_p=top_p, max_new_tokens=4)
            self.uniforms, self.tokens = [u], []

    logits = torch.randn(1, 50, generator=torch.Generator().manual_seed(0))
    n = 50_000
    for temperature, top_p in [(1.0, 1.0), (0.8, 0.95), (1.5, 0.7)]:
        uniforms = torch.rand(n, generator=torch.Generator().manual_seed(1)).tolist()
        picks = BatchScheduler._sample(None, [Row(temperature, top_p, u) for u in uniforms], logits.expand(n, 50))
        freq = torch.bincount(picks, minlength=50).double() / n
        exact = torch.softmax(PerRowSampling([temperature], [top_p])(None, logits), -1)[0].double()
        assert ((freq > 0) <= (exact > 0)).all()  # nothing outside the nucleus
        assert (freq - exact).abs().max() < 5 * (0.25 / n) ** 0.5  # 5 standard errors at the worst p
        assert 0 < int((exact > 0).sum()) and (exact == 0).any() == (top_p < 1)
    greedy = BatchScheduler._sample(None, [Row(0, 1.0, 0.999999), Row(0, 0.5, 0.0)], torch.cat([logits, -logits]))
    assert greedy.tolist() == [int(logits.argmax()), int((-logits).argmax())]


def test_a_tabs_event_pressed_before_one_already_started_shows_nothing_and_generates_nothing():
    """The newest event of a browser tab is the one pressed last (its press ticket), not the one started last:
    two presses a moment apart can start on the server in either order."""
    from types import SimpleNamespace

    import gradio as gr

    from alignui.ui.tab_events import NewestPerTab

    newest, tab, started = NewestPerTab((gr.skip(), gr.skip())), SimpleNamespace(session_hash="tab-1"), []

    def updates(name):
        started.append(name)
        yield name, 1
        yield name, 2

    later = newest.run(tab, updates("later"), press=2000.5)
    assert next(later) == ("later", 1)  # the later press started first
    earlier = list(newest.run(tab, updates("earlier"), press=1999.0))  # the earlier press starts only now
    assert earlier == [(gr.skip(), gr.skip())]  # one update that changes none of the tab's outputs
    assert started == ["later"]  # its generation never ran
    assert list(later) == [("later", 2)]  # and the later one goes on to its end
    assert list(newest.run(SimpleNamespace(session_hash="tab-2"), updates("other tab"), press=5.0)) == [
        ("other tab", 1), ("other tab", 2)]  # tickets are per tab
    assert list(newest.run(tab, updates("no ticket"))) == [("no ticket", 1), ("no ticket", 2)]  # not from a page
    assert list(newest.run(tab, updates("pressed later"), press=2000.7)) == [("pressed later", 1), ("pressed later", 2)]
