"""The start page in headless Chromium: header, a typed prompt, both responses streaming in."""

import time

import pytest

from conftest import screenshot

pytestmark = pytest.mark.e2e


def test_start_page_shows_model_device_and_data_root(server, page):
    page.goto(server.url)
    header = page.locator("#header")
    header.get_by_text("built-in demo model").first.wait_for()  # the page-load update names the loaded model
    text = header.inner_text()
    assert "built-in demo model" in text and "on cpu" in text and str(server.ctx.layout.root.resolve()) in text
    shot = screenshot(page, "start-page")
    assert shot.stat().st_size > 10_000


def test_typing_a_prompt_streams_both_responses(server, page):
    page.goto(server.url)
    box = page.locator("#prompt textarea")
    box.wait_for()
    box.fill("Tell me about the ocean.")
    started = time.perf_counter()
    box.press("Enter")
    a, b = page.locator("#response-a textarea"), page.locator("#response-b textarea")
    page.wait_for_function("() => document.querySelector('#response-a textarea').value.length > 0 && "
                           "document.querySelector('#response-b textarea').value.length > 0")
    first_text = time.perf_counter() - started
    print(f"both responses visible after {first_text * 1000:.0f} ms")
    page.get_by_text("is ready: which response is better?").wait_for()
    assert a.input_value() and b.input_value()
    page.locator("#annotator textarea").fill("ann")  # a vote needs a name (the page load has long finished)
    page.locator("#vote-a").click()
    page.get_by_text("Saved: A is better").wait_for()
    screenshot(page, "after-vote")
    assert server.ctx.store.vote_counts()["a"] == 1
