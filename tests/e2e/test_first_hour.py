"""Issue 13's "Also" list and the Annotate expectations, in headless Chromium at 1280x800: a vote needs a name
(the name box takes the focus) and the history is per person; "Saved" is in view after a vote; adding prompts
refreshes the status line; auto-advance never shows the next prompt beside the previous pair's responses."""

import pytest

from alignui.annotation.pairs import user_turn
from alignui.annotation.pool import parse_lines
from alignui.db import NewGeneration
from conftest import screenshot
from e2e.test_annotate import ready_pair, start_session, wait_status
from e2e.test_refusals import toast

pytestmark = pytest.mark.e2e

IN_VIEW = ("(sel) => { const r = document.querySelector(sel).getBoundingClientRect(); "
           "return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }")


def someone_elses_anonymous_vote(store) -> str:
    prompt = "A question someone else judged anonymously"
    pair = store.save_pair(user_turn(prompt), NewGeneration("base", "one"), NewGeneration("base", "two"),
                           annotator="anonymous")
    store.decide(pair.id, "a", annotator="anonymous")
    return prompt


def test_a_vote_needs_a_name_and_the_history_is_only_this_persons(server, page):
    other = someone_elses_anonymous_vote(server.ctx.store)
    page.goto(server.url)
    wait_status(page, "press")  # the page load is done
    assert other not in page.locator("#history").inner_text()  # no name: nobody's history, not all anonymous'
    box = page.locator("#prompt textarea")
    box.fill("Tell me about the sea.")
    box.press("Enter")
    pair_id = ready_pair(page)
    page.locator("#vote-a").click()
    toast(page, "type your name in the 'Your name' box first")
    page.wait_for_function("() => document.activeElement === document.querySelector('#annotator textarea')")
    assert server.ctx.store.get_comparison(pair_id).verdict is None
    screenshot(page, "vote-asks-for-a-name")

    page.keyboard.type("zoe")
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    wait_status(page, f"Saved: A is better for pair {pair_id}")
    assert page.evaluate(IN_VIEW, "#status"), "the Saved line is below the fold at 1280x800"
    assert server.ctx.store.get_comparison(pair_id).annotator == "zoe"
    page.wait_for_function("() => document.querySelector('#history')?.innerText.includes('Tell me about the sea.')")
    assert other not in page.locator("#history").inner_text()
    screenshot(page, "vote-saved-in-view")


def test_adding_prompts_to_the_pool_refreshes_the_status_line(server, page):
    page.goto(server.url)
    wait_status(page, "the pool is empty")
    page.locator("#prompt-pool").get_by_text("Prompt pool").click()
    page.locator("#pool-paste textarea").fill("\n".join(f"Question number {k}?" for k in range(7)))
    page.locator("#pool-add").click()
    wait_status(page, "7 prompts waiting in the pool")
    assert "the pool is empty" not in page.locator("#status").inner_text()


WATCH = """() => { window.__frames = []; const look = () => {
  window.__frames.push([document.querySelector('#prompt textarea').value,
                        document.querySelector('#response-a textarea').value,
                        document.querySelector('#response-b textarea').value]);
  window.__watching = requestAnimationFrame(look); }; look(); }"""


def test_auto_advance_never_shows_the_next_prompt_beside_the_previous_pairs_responses(server, page):
    server.ctx.store.add_prompts_bulk(parse_lines("Tell me about the ocean.\nName a fruit."))
    start_session(page, server.url)
    page.keyboard.press("n")
    first = ready_pair(page)
    old_prompt = page.locator("#prompt textarea").input_value()
    old_a = page.locator("#response-a textarea").input_value()
    old_b = page.locator("#response-b textarea").input_value()
    page.evaluate(WATCH)  # every rendered frame from here on
    page.keyboard.press("a")
    wait_status(page, f"Saved: A is better for pair {first}")
    page.wait_for_function("(p) => document.querySelector('#status').innerText.includes('is ready') && "
                           "document.querySelector('#prompt textarea').value !== p", arg=old_prompt, timeout=60_000)
    frames = page.evaluate("() => { cancelAnimationFrame(window.__watching); return window.__frames; }")
    mixed = [f for f in frames if f[0] != old_prompt and (f[1] == old_a or f[2] == old_b)]
    assert len(frames) > 10 and not mixed, f"{len(mixed)} frames showed the new prompt beside the old responses"
