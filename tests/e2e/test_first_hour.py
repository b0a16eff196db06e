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


def test_the_offline_notice_is_one_line_and_stays_dismissed_after_a_reload(server, page):
    page.goto(server.url)
    bar = page.locator("#notice-row")
    bar.get_by_text("demo model").wait_for()
    box = bar.bounding_box()
    assert box["height"] <= 48, f"the notice takes {box['height']:.0f} px"  # one line, not ~100 px
    page.locator("#notice-close").click()
    bar.wait_for(state="hidden")
    page.reload()
    page.locator("#header").get_by_text("built-in demo model").first.wait_for()
    page.wait_for_timeout(1500)  # the page load's answer has arrived (the header shows the loaded model)
    assert not bar.is_visible()


def test_the_arena_says_up_front_there_is_nothing_to_compare(server, page):
    page.goto(server.url)
    page.get_by_role("tab", name="Arena").click()
    page.locator("#arena-notice").get_by_text("Nothing to compare yet").wait_for()
    assert "Train" in page.locator("#arena-notice").inner_text()


def test_after_an_arena_vote_the_panels_name_the_models_and_next_battle_is_blind_again(server, page, storage):
    from arena.test_arena import make_adapter
    from e2e.test_arena_browser import SECRET

    make_adapter(server.ctx.store, storage, SECRET)
    page.goto(server.url)
    page.get_by_role("tab", name="Arena").click()
    box = page.locator("#arena-prompt textarea")
    box.wait_for()
    assert not page.locator("#arena-notice").is_visible()
    box.fill("Tell me about the sea.")
    page.locator("#arena-go").click()
    page.get_by_text("Which answer is better?").wait_for(timeout=120_000)
    labels = lambda: page.locator("#arena-battle").inner_text()  # noqa: E731 (the panels' headers)
    assert SECRET not in page.content() and "base" not in labels().replace(
        page.locator("#arena-a textarea").input_value(), "").replace(page.locator("#arena-b textarea").input_value(), "")
    assert not page.locator("#arena-next").is_visible()
    page.locator("#arena-vote-a").click()
    page.get_by_text("Your vote: A is better").wait_for()
    (saved,) = server.ctx.store.arena_battles().itertuples()
    page.locator("#arena-a").get_by_text(f"Model A: {saved.model_a}").wait_for()
    page.locator("#arena-b").get_by_text(f"Model B: {saved.model_b}").wait_for()
    screenshot(page, "arena-after-vote-named")
    page.locator("#arena-next").click()
    page.wait_for_function("() => !document.querySelector('#arena-a textarea').value && "
                           "!document.querySelector('#arena-reveal').innerText.trim()")
    assert SECRET not in page.content() and not page.locator("#arena-next").is_visible()
    # the focus is set by a .then() after the answer (and a 100 ms timer): wait for it, not just for the answer
    page.wait_for_function("() => document.activeElement === document.querySelector('#arena-prompt textarea')")
    assert page.locator("#arena-vote-a").is_disabled()


MID_WORD = """(sel) => { const broken = [];
  for (const th of document.querySelectorAll(sel + ' th')) {
    const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const r = document.createRange(); r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
        const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
        if (tops.size > 1) broken.push(m[0]);
      } } }
  return broken; }"""


def test_data_detail_view_side_by_side_readable_summaries_and_whole_word_headers(server, page):
    from e2e.test_data_tab import FIX, pick, upload

    page.goto(server.url)
    page.locator("#header").get_by_text("built-in demo model").first.wait_for()  # the page load has answered
    page.get_by_role("tab", name="Data").click()
    page.locator("#import-run").wait_for()
    upload(page, FIX / "trl_conversational.jsonl")
    page.locator("#import-run").click()
    summary = page.locator("#import-summary")
    summary.get_by_text("Imported 4 pairs from").wait_for()
    assert "Nothing was skipped." in summary.inner_text() and "{" not in summary.inner_text()
    page.locator("#browse-search").click()
    page.get_by_text("4 comparisons match").wait_for()
    assert page.evaluate(MID_WORD, "#browse-table") == [], "a column header wraps mid-word"
    page.locator("#browse-table").get_by_test_id("cell-1-5").click()  # a row, not an id pasted into a box
    page.locator("#detail-head").get_by_text("Verdict: a").wait_for()
    cid = page.locator("#detail-id textarea, #detail-id input").first.input_value()
    pair = server.ctx.store.get_comparison(cid)
    a, b = page.locator("#detail-a"), page.locator("#detail-b")
    assert pair.text_a.split()[0] in a.inner_text() and pair.text_b.split()[0] in b.inner_text()
    box_a, box_b = a.bounding_box(), b.bounding_box()
    assert abs(box_a["y"] - box_b["y"]) < 5 and box_a["x"] + box_a["width"] <= box_b["x"] + 1  # side by side
    assert "✓ chosen" in a.inner_text() and "No changes since the vote." in page.locator("#detail-history").inner_text()
    pick(page, "fix-verdict", "b")
    page.locator("#fix-run").click()
    page.locator("#detail-history").get_by_text("from a to b", exact=False).or_(
        page.locator("#detail-history").get_by_text("a → b")).first.wait_for()
    assert "✓ chosen" in b.inner_text()
    page.locator("#detail-head").scroll_into_view_if_needed()
    page.evaluate("() => document.querySelector('#detail-id').scrollIntoView({block: 'start'})")
    page.screenshot(path=str(screenshot(page, "data-detail").with_name("data-detail-view.png")))  # the viewport

    page.locator("#export-run").click()
    exported = page.locator("#export-summary")
    exported.get_by_text("train,").wait_for()
    text = exported.inner_text()
    assert "Snapshot" in text and "4 pairs" in text and "{" not in text
