"""Cancellation through the real server, in headless Chromium: an annotator closes the tab while their pair
streams; Gradio sees the page go, closes the event's generator, and the request's rows leave the shared decode
batch (alignui.serving.scheduler): no more decode steps for them and no pair saved. The decode steps are slowed
(0.3 s each) so that the pair is still being written when the tab closes; nothing else is changed. Before it
closes, a new prompt typed meanwhile stays in the box (each streamed update used to re-set it)."""

import threading
import time

import pytest

from alignui.serving import scheduler
from serving.test_scheduler import until

pytestmark = pytest.mark.e2e


def slowed_and_recorded(monkeypatch) -> list:
    """Decode steps slowed to 0.3 s; returns the list every submitted scheduler request is appended to."""
    submitted, real_submit, real_step = [], scheduler.BatchScheduler.submit, scheduler.BatchScheduler._step

    def recording_submit(self, req):
        submitted.append(req)
        return real_submit(self, req)

    def slow_step(self):
        time.sleep(0.3)
        return real_step(self)

    monkeypatch.setattr(scheduler.BatchScheduler, "submit", recording_submit)
    monkeypatch.setattr(scheduler.BatchScheduler, "_step", slow_step)
    return submitted


def test_closing_the_tab_while_a_pair_streams_cancels_its_rows_and_saves_nothing(server, browser, monkeypatch):
    submitted = slowed_and_recorded(monkeypatch)
    store = server.ctx.store
    pairs_before = store.query("SELECT count(*) FROM comparisons")[0][0]

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(server.url)
    box = page.locator("#prompt textarea")
    box.wait_for()
    box.fill("Tell me about the ocean.")
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('#response-a textarea').value.length > 0", timeout=120_000)
    assert len(submitted) == 1 and not submitted[0].over  # still being written
    box.fill("A new prompt, typed while the pair is written")  # the streamed updates leave the prompt box alone
    tokens = len(submitted[0].rows[0].tokens)
    until(lambda: len(submitted[0].rows[0].tokens) >= tokens + 3, "three more tokens streamed")
    page.wait_for_timeout(300)  # their updates reached the page (20 a second)
    assert box.input_value() == "A new prompt, typed while the pair is written"
    context.close()  # the annotator closes the tab

    req = submitted[0]
    until(lambda: req.cancelled, "the closed tab's request to be cancelled")
    sched = scheduler.batch_scheduler(server.ctx.model)
    until(lambda: not any(r.request is req for r in sched._batch.rows), "its rows to leave the batch")
    steps = sched.stats.forwards
    threading.Event().wait(2.0)  # long enough for ~6 more slowed steps, had the rows stayed
    assert sched.stats.forwards == steps  # nothing else was generating: no step ran for the gone tab
    assert not all(row.done for row in req.rows)  # it was stopped, not finished
    assert store.query("SELECT count(*) FROM comparisons")[0][0] == pairs_before  # nothing saved for it

