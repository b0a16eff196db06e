"""The Thumbs tab in headless Chromium at 1280x800: draw a pool prompt with N, rate with + and -, type a prompt,
check every rating in the database (annotator, label, timing) and that the counts survive a reload; a key with
nothing on screen is refused kindly."""

import re

import pytest
from playwright.sync_api import Page

from alignui.annotation.pool import parse_lines
from conftest import screenshot

pytestmark = pytest.mark.e2e

READY = re.compile(r"Response `?(\w{12})`? is ready")


def status(page: Page) -> str:
    return page.locator("#thumb-status").inner_text()


def wait_text(page: Page, selector: str, fragment: str, timeout: float = 60_000) -> str:
    page.wait_for_function("([s, f]) => (document.querySelector(s)?.innerText || '').includes(f)",
                           arg=[selector, fragment], timeout=timeout)
    return page.locator(selector).inner_text()


def ready_item(page: Page) -> str:
    page.wait_for_function("() => /is ready: 👍 or 👎/.test(document.querySelector('#thumb-status')?.innerText)",
                           timeout=60_000)
    return READY.findall(status(page))[-1]


def test_thumbs_by_keyboard_are_saved_and_counted_after_a_reload(server, page):
    store = server.ctx.store
    store.add_prompts_bulk(parse_lines("Tell me about the ocean.\nName a fruit."))
    page.goto(server.url)
    page.get_by_role("tab", name="Thumbs").click()
    wait_text(page, "#thumb-counts", "Thumbs:")
    page.locator("#thumb-annotator textarea").fill("ann")
    page.keyboard.press("Escape")
    page.keyboard.press("+")  # nothing on screen yet: refused with what to do, nothing saved
    page.get_by_text("no response to rate yet").first.wait_for(timeout=30_000)
    screenshot(page, "thumbs-refused-1280")
    assert store.rating_counts()["total"] == 0

    page.keyboard.press("n")
    first = ready_item(page)
    assert page.locator("#thumb-prompt textarea").input_value() in ("Tell me about the ocean.", "Name a fruit.")
    assert page.locator("#thumb-response textarea").input_value()
    screenshot(page, "thumbs-ready-1280")
    page.keyboard.press("+")
    wait_text(page, "#thumb-status", f"Saved: 👍 thumbs up for response {first}")
    second = ready_item(page)  # auto-advance drew the other pool prompt
    assert second != first
    page.keyboard.press("-")
    wait_text(page, "#thumb-status", f"Saved: 👎 thumbs down for response {second}")
    wait_text(page, "#thumb-status", "No prompts left in the pool for you")

    page.locator("#thumb-prompt textarea").fill("Say something nice.")
    page.keyboard.press("Enter")
    third = ready_item(page)
    page.keyboard.press("s")
    wait_text(page, "#thumb-status", f"Saved: skipped for response {third}")
    wait_text(page, "#thumb-counts", "1 👍")
    screenshot(page, "thumbs-saved-1280")

    rows = {r.id: r for r in map(store.get_rating, (first, second, third))}
    assert [rows[i].label for i in (first, second, third)] == ["up", "down", "skip"]
    assert all(r.annotator == "ann" and r.decided_at and r.duration_ms is not None for r in rows.values())
    assert rows[third].messages[-1]["content"] == "Say something nice."

    page.reload()
    page.get_by_role("tab", name="Thumbs").click()
    wait_text(page, "#thumb-counts", "Thumbs:")
    page.locator("#thumb-annotator textarea").fill("ann")
    page.keyboard.press("Escape")  # leaving the name box shows that annotator's counts
    counts = wait_text(page, "#thumb-counts", "yours: 1")
    assert "1 👍 · 1 👎 · 1 skipped in all" in counts and "yours: 1 👍 · 1 👎 · 1 skipped" in counts, counts
    screenshot(page, "thumbs-after-reload-1280")
    page.locator("#thumb-history-box").click()
    wait_text(page, "#thumb-history", first)


def test_a_prompt_typed_while_the_response_streams_stays_there_also_after_the_thumb(server, page, monkeypatch):
    """Every streamed update re-set the prompt box (a next prompt being typed was overwritten 20 times a second),
    and the thumb then put the rated prompt back or drew a pool prompt over it. Decode steps are slowed to 0.3 s so
    the response is still being written while the next prompt is typed."""
    import time

    from alignui.serving import scheduler

    real_step = scheduler.BatchScheduler._step
    monkeypatch.setattr(scheduler.BatchScheduler, "_step", lambda self: (time.sleep(0.3), real_step(self))[1])
    server.ctx.store.add_prompts_bulk(parse_lines("A pool prompt that must not be drawn over it."))
    page.goto(server.url)
    page.get_by_role("tab", name="Thumbs").click()
    wait_text(page, "#thumb-counts", "Thumbs:")
    page.locator("#thumb-annotator textarea").fill("ann")
    box = page.locator("#thumb-prompt textarea")
    box.fill("Tell me about the ocean.")
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('#thumb-response textarea').value.length > 0",
                           timeout=60_000)
    box.fill("My next question")  # typed while the response is still written
    item = ready_item(page)
    assert box.input_value() == "My next question"
    page.locator("#thumb-up").click()
    wait_text(page, "#thumb-status", "Press Enter to generate the prompt you typed")
    assert f"Saved: 👍 thumbs up for response {item}" in status(page)
    page.wait_for_timeout(500)
    assert box.input_value() == "My next question"
    assert server.ctx.store.query("SELECT count(*) FROM ratings")[0][0] == 1  # nothing drawn or generated over it
    screenshot(page, "thumbs-typed-kept-1280")
