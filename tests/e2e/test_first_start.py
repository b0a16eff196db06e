"""A first start in headless Chromium: the page answers while the model builds, shows the step and its progress,
refuses a generation with one line (no Error badge, the prompt box still usable), then becomes usable by itself."""

import pytest

from conftest import screenshot

pytestmark = pytest.mark.e2e


def error_badges(page) -> int:
    """Red 'Error' badges of Gradio's status trackers that are on screen (a tracker hidden by show_progress=
    "hidden" keeps its badge in the DOM at opacity 0, click-through: not on screen)."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid="status-tracker"] .error')]
        .filter(e => e.offsetParent !== null && !e.closest('.hide')).length""")


def test_the_page_answers_shows_progress_and_becomes_usable_by_itself(slow_server, page):
    page.goto(slow_server.url)
    panel = page.locator("#model-loading")
    panel.get_by_text("Preparing the model").wait_for()
    text = panel.inner_text()
    assert "pre-training" in text and "40%" in text, text
    gradio_bar = page.locator("#model-loading-bar .progress-level")  # Gradio's own progress bar, with the step
    gradio_bar.first.wait_for()
    assert "pre-training" in page.locator("#model-loading-bar").inner_text()
    screenshot(page, "first-start-loading")
    assert "loading" in page.locator("#header").inner_text()

    box = page.locator("#prompt textarea")
    box.fill("Tell me about the sea.")
    box.press("Enter")
    page.locator(".toast-body").get_by_text("the model is still loading").wait_for()
    assert error_badges(page) == 0
    box.fill("typed after the refusal")
    assert box.input_value() == "typed after the refusal"

    slow_server.gate.set()
    page.get_by_text("built-in demo model").first.wait_for(timeout=120_000)
    page.wait_for_function("() => !document.querySelector('#model-loading') || "
                           "document.querySelector('#model-loading').offsetParent === null")
    box.fill("Tell me about the sea.")
    box.press("Enter")
    page.get_by_text("is ready: which response is better?").wait_for(timeout=120_000)
    assert page.locator("#response-a textarea").input_value()
