"""HTML/JS in prompts and responses is shown as text in Chromium: no script runs, no element is injected,
no tracking image is fetched (script tags, event handlers, javascript: links, markdown image tricks)."""

import pytest

from alignui.db import NewGeneration
from conftest import screenshot

pytestmark = pytest.mark.e2e

LEAK = "127.0.0.1:9"  # a closed port: a markdown/HTML image pointing here must never be requested
PAYLOADS = [
    '<script>window.__xss = "script"</script>',
    '<img src=x onerror="window.__xss=\'img\'">',
    '<svg onload="window.__xss=\'svg\'"></svg>',
    '<a id="evil-link" href="javascript:window.__xss=\'href\'">click me</a>',
    "[md link](javascript:window.__xss='mdlink')",
    f"![tracker](http://{LEAK}/leak.png)",
    f'<img src="http://{LEAK}/html-image.png">',
    '<iframe srcdoc="<script>parent.__xss=\'iframe\'</script>"></iframe>',
    '<details open ontoggle="window.__xss=\'toggle\'">x</details>',
]
HOSTILE = "\n".join(PAYLOADS)
INJECTED = "img[src='x'], svg[onload], iframe[srcdoc], details[ontoggle], #evil-link, img[src*='127.0.0.1:9']"


def watch(page) -> dict:
    """Record dialogs (alert/confirm) and requests to the leak address."""
    seen = {"dialogs": [], "leaks": []}
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("request", lambda r: seen["leaks"].append(r.url) if LEAK in r.url else None)
    return seen


def assert_inert(page, seen):
    page.wait_for_timeout(500)  # give onerror/onload handlers their chance to fire
    assert page.evaluate("window.__xss") is None
    assert page.locator(INJECTED).count() == 0
    assert seen == {"dialogs": [], "leaks": []}


def test_hostile_prompt_and_responses_are_plain_text_in_the_admin_review(server, page):
    store = server.ctx.store
    store.set_overlap_k(2)
    messages = [{"role": "user", "content": "Prompt: " + HOSTILE}]
    first = store.save_pair(messages, NewGeneration("base", "Response A: " + HOSTILE),
                            NewGeneration("base", "Response B: " + HOSTILE), annotator="ann")
    copy = store.claim_shared_pair("bob", 2)
    store.decide(first.id, "a")
    store.decide(copy.id, "b")  # a split vote: the pair is listed with its texts under "Disputed pairs"

    seen = watch(page)
    page.goto(server.url)
    page.get_by_role("tab", name="Admin").click()
    page.locator("#admin-compute-agreement").click()
    table = page.locator("#admin-disputed")
    page.wait_for_function("() => document.querySelector('#admin-disputed')?.innerText.includes('Response B')")
    text = table.inner_text()
    for payload in ('<script>window.__xss = "script"</script>', "onerror=", f"![tracker](http://{LEAK}/leak.png)",
                    "javascript:window.__xss='mdlink'"):
        assert payload in text, payload
    assert_inert(page, seen)
    screenshot(page, "security-admin-review")


def type_hostile_prompt(server, page):
    """Open the app, type the hostile prompt into Annotate and press Enter; returns (watch record, prompt box)."""
    seen = watch(page)
    page.goto(server.url)
    box = page.locator("#prompt textarea")
    box.wait_for()
    box.fill(HOSTILE)
    box.press("Enter")
    return seen, box


def test_a_hostile_prompt_typed_into_annotate_stays_text(server, page):
    seen, box = type_hostile_prompt(server, page)
    page.wait_for_function("() => document.querySelector('#response-a textarea').value.length > 0 && "
                           "document.querySelector('#response-b textarea').value.length > 0")
    assert box.input_value() == HOSTILE
    assert_inert(page, seen)
    screenshot(page, "security-annotate")


def continue_hostile_conversation(server, page):
    """Vote A on a hostile prompt with 'continue': the earlier turn is then shown in the conversation Chatbot."""
    seen, _ = type_hostile_prompt(server, page)
    page.get_by_text("is ready: which response is better?").wait_for()
    page.locator("#continue-conv input").check()
    page.locator("#annotator textarea").fill("ann")  # a vote needs a name
    page.locator("#vote-a").click()
    page.get_by_text("Turn 2: type your next message").wait_for()
    conversation = page.locator("#conversation")
    conversation.wait_for()
    page.wait_for_timeout(500)
    return seen, conversation


def test_a_hostile_conversation_turn_runs_no_script(server, page):
    seen, _ = continue_hostile_conversation(server, page)
    assert page.evaluate("window.__xss") is None and seen["dialogs"] == []
    assert page.locator("[onerror], [onload], [ontoggle], a[href^='javascript:'], iframe[srcdoc]").count() == 0
    screenshot(page, "security-conversation")


def test_a_hostile_conversation_turn_is_shown_as_text_and_fetches_nothing(server, page):
    seen, conversation = continue_hostile_conversation(server, page)
    assert seen["leaks"] == []
    assert '<img src="http://127.0.0.1:9/html-image.png">' in conversation.inner_text()


def test_hostile_text_in_the_data_detail_guidelines_and_error_toasts_stays_text(server, page):
    """The Data tab's detail view, the guidelines and an error pop-up quoting what was typed: all shown as text,
    no element injected, no remote image fetched."""
    from alignui.annotation import guidelines
    from alignui.team.identity import LOCAL_OPERATOR

    store = server.ctx.store
    pair = store.save_pair([{"role": "user", "content": "Prompt: " + HOSTILE}],
                           NewGeneration("base", "Response A: " + HOSTILE),
                           NewGeneration("base", "Response B: " + HOSTILE), annotator="ann", meta={"note": HOSTILE})
    guidelines.save(store, LOCAL_OPERATOR, "Guide: " + HOSTILE)
    seen = watch(page)
    page.goto(server.url)
    page.get_by_role("tab", name="Data").click()
    picked = page.locator("#detail-id textarea, #detail-id input").first
    picked.fill(pair.id)
    page.wait_for_function("() => document.querySelector('#detail')?.innerText.includes('Response B')")
    text = page.locator("#detail").inner_text()
    for payload in ('<script>window.__xss = "script"</script>', f'<img src="http://{LEAK}/html-image.png">',
                    f"![tracker](http://{LEAK}/leak.png)", "javascript:window.__xss='mdlink'"):
        assert text.count(payload) >= 3, payload  # prompt, A and B (and the metadata), each as typed
    assert_inert(page, seen)
    screenshot(page, "security-data-detail")

    picked.fill(f'<img src="http://{LEAK}/error-toast.png">')  # an id that quotes markup back in the error
    page.get_by_text("no comparison with id").first.wait_for()
    assert page.get_by_text(f'<img src="http://{LEAK}/error-toast.png">').count() >= 1
    assert_inert(page, seen)

    page.get_by_role("tab", name="Annotate").click()
    page.locator("#guidelines").get_by_text("Guidelines").first.click()
    page.wait_for_function("() => document.querySelector('#guidelines-text')?.innerText.includes('Guide:')")
    assert f'<img src="http://{LEAK}/html-image.png">' in page.locator("#guidelines-text").inner_text()
    assert_inert(page, seen)
    screenshot(page, "security-guidelines")
