"""The Annotate tab in headless Chromium: a keyboard-only session checked in the database after a restart,
the tab at desktop and phone-ish widths, settings remembered in the browser, the pool and the guidelines."""

import base64
import hashlib
import json
import re
import threading

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from playwright.sync_api import Page

from alignui.annotation import guidelines
from alignui.annotation.prefs import browser_secret
from alignui.db import Store
from alignui.annotation.pool import parse_lines
from conftest import screenshot

pytestmark = pytest.mark.e2e

POOL = ["Tell me about the ocean.", "What is a cat?", "How do birds fly?", "Why is the sky blue?", "Name a fruit."]
READY = re.compile(r"Pair `?(\w{12})`? is ready|Back to pair `?(\w{12})`?")


def status(page: Page) -> str:
    return page.locator("#status").inner_text()


def wait_status(page: Page, fragment: str, timeout: float = 60_000) -> str:
    page.wait_for_function("(f) => { const s = document.querySelector('#status'); return s && s.innerText.includes(f); }",
                           arg=fragment, timeout=timeout)
    return status(page)


def ready_pair(page: Page) -> str:
    """Wait until a pair is on screen and return its id (from the status line)."""
    page.wait_for_function("() => /is ready: which response is better\\?/.test("
                           "document.querySelector('#status')?.innerText)", timeout=60_000)
    found = READY.findall(status(page))[-1]
    return found[0] or found[1]


def press(page: Page, key: str, then: str) -> str:
    page.keyboard.press(key)
    return wait_status(page, then)


def open_settings(page: Page) -> None:
    """Open the Generation settings. Gradio mounts a closed accordion's widgets when it opens and gives them the
    values the page load restored a moment later; a value typed in that moment is replaced (seen in 1 of 8
    tries), so wait two frames, as no person types that fast."""
    page.locator("#generation-settings").get_by_text("Generation settings").click()
    page.locator("#max-new-tokens input[type=number]").wait_for()
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def remembered_settings(page: Page, store: Store) -> dict | None:
    """What gr.BrowserState holds under 'alignui-generation', decrypted as its frontend does (crypto-js AES with
    the SHA-256 hex of the data root's secret as passphrase, OpenSSL's salted format; written out here because
    the page offers no way to read it back in clear)."""
    stored = page.evaluate("() => window.localStorage.getItem('alignui-generation')")
    if not stored:
        return None
    raw = base64.b64decode(stored.split(":", 1)[1])
    assert raw[:8] == b"Salted__"
    salt, body = raw[8:16], raw[16:]
    passphrase, derived, block = hashlib.sha256(browser_secret(store).encode()).hexdigest().encode(), b"", b""
    while len(derived) < 48:  # OpenSSL's EVP_BytesToKey with MD5: 32 key bytes, then 16 iv bytes
        block = hashlib.md5(block + passphrase + salt).digest()
        derived += block
    clear = Cipher(algorithms.AES(derived[:32]), modes.CBC(derived[32:48])).decryptor()
    padded = clear.update(body) + clear.finalize()
    return json.loads(padded[:-padded[-1]])


def wait_remembered(page: Page, store: Store, **want) -> None:
    """Wait until the browser has stored the settings `want` (the page's own writes come and go meanwhile)."""
    for _ in range(600):
        held = remembered_settings(page, store) or {}
        if all(held.get(key) == value for key, value in want.items()):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the browser never stored {want}; it holds {held}")


def start_session(page: Page, url: str, name: str = "ann") -> None:
    page.goto(url)
    wait_status(page, "press")  # the welcome line: the page has loaded what the browser remembered
    page.locator("#annotator textarea").fill(name)
    page.keyboard.press("Escape")  # leave the field: from here on, keys are shortcuts


def no_horizontal_scroll(page: Page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.slow
def test_keyboard_only_session_is_exactly_what_the_database_holds_after_a_restart(server_process, storage, browser):
    with Store(storage / "alignui.duckdb") as s:
        s.add_prompts_bulk(parse_lines("\n".join(POOL)))
    server = server_process().start()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    start_session(page, server.url)
    screenshot(page, "annotate-empty-1280")

    page.keyboard.press("n")
    page.wait_for_function("() => document.querySelector('#response-a textarea').value.length > 0")
    screenshot(page, "annotate-streaming-1280")
    p1 = ready_pair(page)
    press(page, "a", f"Saved: A is better for pair {p1}")
    p2 = ready_pair(page)
    screenshot(page, "annotate-after-vote-1280")
    assert no_horizontal_scroll(page)
    press(page, "b", f"Saved: B is better for pair {p2}")
    p3 = ready_pair(page)
    press(page, "u", f"Undone: pair {p2} is open again")  # the last verdict (B on p2) is taken back
    press(page, "t", f"Saved: tie for pair {p2}")
    assert ready_pair(page) == p3, "the pair that was on screen comes back after the re-vote"

    page.keyboard.press("e")  # edit the winner: A opens the editor instead of saving
    page.keyboard.press("a")
    page.wait_for_function("() => document.activeElement && document.activeElement.closest('#edit-chosen')")
    original_a = page.locator("#response-a textarea").input_value()
    assert page.locator("#edit-chosen textarea").input_value() == original_a
    page.keyboard.type(" (checked by a person)")
    screenshot(page, "annotate-editing-1280")
    press(page, "Control+Enter", f"Saved: A is better (with your edit) for pair {p3}")

    p4 = ready_pair(page)
    p4_b = page.locator("#response-b textarea").input_value()
    page.keyboard.press("c")  # continue the conversation with the winner
    press(page, "b", "Turn 2: type your next message")
    page.wait_for_function("() => document.activeElement && document.activeElement.closest('#prompt')")
    page.keyboard.type("Tell me more, please.")
    page.keyboard.press("Enter")
    turn2 = ready_pair(page)
    assert turn2 != p4 and page.locator("#conversation").is_visible()
    screenshot(page, "annotate-turn2-1280")
    press(page, "a", f"Saved: A is better for pair {turn2}")
    p5 = ready_pair(page)
    press(page, "x", "No prompts left in the pool for you")
    assert status(page).startswith(f"Saved: both bad for pair {p5}")

    server.stop(kill=True)  # no clean shutdown: every acknowledged verdict must already be on disk
    with Store(storage / "alignui.duckdb") as s:
        decided = {c.id: c for c in s.decided_annotations()}
        assert {cid: c.verdict for cid, c in decided.items()} == {
            p1: "a", p2: "tie", p3: "a", p4: "b", turn2: "a", p5: "both_bad"}
        assert s.vote_counts()["pending"] == 0 and s.vote_counts()["total"] == 6
        assert {c.annotator for c in decided.values()} == {"ann"}
        assert decided[p3].text_a == original_a and decided[p3].edited_chosen == original_a + " (checked by a person)"
        assert all(c.edited_chosen is None for cid, c in decided.items() if cid != p3)
        first_turn = decided[p4].messages
        assert decided[turn2].messages == first_turn + [{"role": "assistant", "content": p4_b},
                                                        {"role": "user", "content": "Tell me more, please."}]
        assert s.comparison_meta(turn2) == {"parent_pair": p4, "turn": 2}
        assert sorted(c.messages[0]["content"] for cid, c in decided.items() if cid != turn2) == sorted(POOL)
        assert s.pool_counts() == {"prompts": 5, "pending": 0, "done": 5, "heldout": 0}

    server_process().start()  # the same data root again: the browser still knows the annotator
    page.goto(server.url)
    wait_status(page, "Type a prompt and press Enter")  # pool done: the welcome line says to type
    assert page.locator("#annotator textarea").input_value() == "ann"
    history = page.locator("#history")
    page.wait_for_function("() => document.querySelector('#history')?.innerText.includes('both bad')")
    for pair_id in (p1, p2, p3, p4, turn2, p5):
        assert pair_id in history.inner_text()
    context.close()


def test_the_tab_at_phone_width_empty_streaming_and_after_a_vote(server, browser):
    server.ctx.store.add_prompts_bulk(parse_lines("Tell me about the ocean.\nName a fruit."))
    context = browser.new_context(viewport={"width": 800, "height": 1000})
    page = context.new_page()
    start_session(page, server.url, name="pat")
    screenshot(page, "annotate-empty-800")
    assert no_horizontal_scroll(page)
    page.keyboard.press("n")
    page.wait_for_function("() => document.querySelector('#response-a textarea').value.length > 0")
    screenshot(page, "annotate-streaming-800")
    pair_id = ready_pair(page)
    page.locator("#vote-b").click()  # the mouse works too
    wait_status(page, f"Saved: B is better for pair {pair_id}")
    ready_pair(page)
    screenshot(page, "annotate-after-vote-800")
    assert no_horizontal_scroll(page)
    for element in ("#vote-a", "#vote-skip", "#undo", "#next-prompt", "#response-a", "#response-b"):
        box = page.locator(element).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 800, element
    assert server.ctx.store.get_comparison(pair_id).annotator == "pat"
    context.close()


def test_settings_are_remembered_in_the_browser_and_reach_generation(server, page):
    server.ctx.store.add_prompts_bulk(parse_lines("What is a cat?"))
    start_session(page, server.url)
    open_settings(page)
    tokens = page.locator("#max-new-tokens input[type=number]")
    tokens.fill("12")
    tokens.press("Enter")
    wait_remembered(page, server.ctx.store, max_new_tokens=12)  # saved in the browser
    page.locator("#system-prompt textarea").fill("Answer in one line.")
    page.locator("#system-prompt textarea").press("Tab")
    wait_remembered(page, server.ctx.store, max_new_tokens=12, system_prompt="Answer in one line.")
    page.reload()
    wait_status(page, "press N")
    open_settings(page)
    assert page.locator("#max-new-tokens input[type=number]").input_value() == "12"
    assert page.locator("#system-prompt textarea").input_value() == "Answer in one line."
    page.keyboard.press("n")
    pair_id = ready_pair(page)
    pair = server.ctx.store.get_comparison(pair_id)
    assert pair.messages[0] == {"role": "system", "content": "Answer in one line."}
    params = server.ctx.store.query("SELECT json_extract(params, '$.max_new_tokens') FROM generations WHERE id = ?",
                                    [pair.gen_a])[0][0]
    assert int(params) == 12


def test_bad_input_in_the_browser_empty_too_long_and_truncation(server, page):
    start_session(page, server.url)
    box = page.locator("#prompt textarea")
    box.fill("   ")
    box.press("Enter")
    page.get_by_text("the prompt is empty").first.wait_for()
    box.fill("word " * 700)
    box.press("Enter")
    wait_status(page, "tokens but only")
    truncate = page.locator("#truncate")
    assert truncate.is_visible()
    assert server.ctx.store.vote_counts()["pending"] == 0
    truncate.click()
    ready_pair(page)
    assert not truncate.is_visible()
    page.keyboard.press("a")
    wait_status(page, "Saved: A is better")


def test_pool_paste_and_guidelines_edit_in_the_browser(server, page):
    start_session(page, server.url)
    page.locator("#prompt-pool").get_by_text("Prompt pool").click()
    page.locator("#pool-paste textarea").fill("First pasted prompt\nSecond pasted prompt\nFirst pasted prompt")
    page.locator("#pool-add").click()
    page.get_by_text("Added 2 prompts to the pool; 1 already in the pool were skipped.").first.wait_for()
    page.wait_for_function("() => document.querySelector('#pool-counts')?.innerText.includes('2 prompts in the pool')")
    page.locator("#guidelines").get_by_text("Guidelines", exact=True).click()
    page.get_by_text("Edit the guidelines (operators)").click()
    editor = page.locator("#guidelines-editor textarea")
    # As a person does: see the current text, then edit it. The editor is mounted when its accordion opens; a fill a
    # few milliseconds after that saved the old text once on a loaded CI host (not reproduced with value sets traced).
    page.wait_for_function("() => document.querySelector('#guidelines-editor textarea')?.value.includes('Pick the')"
                           " && !document.querySelector('#guidelines-editor textarea').disabled")
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    new_text = "## Our rules\nPrefer the **shorter** answer."
    editor.fill(new_text)
    editor.blur()  # as a person does by moving to the button: the box has committed its value
    page.wait_for_function("(t) => document.querySelector('#guidelines-editor textarea').value === t", arg=new_text)
    page.get_by_role("button", name="Save guidelines").click()
    page.get_by_text("Guidelines saved.").first.wait_for()
    assert server.ctx.store.get_setting("guidelines") == new_text
    page.wait_for_function("() => document.querySelector('#guidelines-text')?.innerText.includes('Our rules')")
    screenshot(page, "annotate-pool-guidelines-1280")


def test_a_slow_page_load_never_overwrites_what_was_typed(server, page, monkeypatch):
    """The inputs a page load fills stay locked until it has: text typed as soon as a box accepts it is what is
    saved. (Before, a load that arrived late replaced the typed guidelines, and Save stored the old text.)"""
    stored, answered, release = guidelines.load, threading.Event(), threading.Event()

    def slow_load(store):
        release.wait(60)  # a busy server: this page load's answer arrives only when the test lets it (no race
        threading.Timer(0.01, answered.set).start()  # with how long the clicks below take on a loaded host)
        return stored(store)

    monkeypatch.setattr(guidelines, "load", slow_load)
    page.goto(server.url)
    page.locator("#guidelines").get_by_text("Guidelines", exact=True).click()
    page.get_by_text("Edit the guidelines (operators)").click()
    editor = page.locator("#guidelines-editor textarea")
    editor.wait_for()
    assert not editor.is_editable()
    release.set()
    text = "## Typed at once\nas soon as the box took it"
    editor.fill(text)  # waits until the box is editable, then types at once, as an impatient operator would
    assert answered.wait(30)
    page.wait_for_timeout(1000)  # reads it over before saving: the load's answer has reached the page by now
    page.get_by_role("button", name="Save guidelines").click()
    page.get_by_text("Guidelines saved.").first.wait_for()
    assert server.ctx.store.get_setting("guidelines") == text
    assert editor.input_value() == text


@pytest.fixture
def team_server(config):
    """The app behind Gradio's login page: boss is the admin, ann annotates."""
    from dataclasses import replace

    from alignui.ui.app import launch
    from conftest import Served

    secured = replace(config, users=(("boss", "pw-boss"), ("ann", "pw-ann")), admins=frozenset({"boss"}))
    demo, context = launch(secured, block=False, quiet=True, seed=0)
    yield Served(url=f"http://127.0.0.1:{secured.port}/", ctx=context, demo=demo)
    demo.close()
    context.close()


def test_a_signed_in_annotator_is_named_by_the_login_and_cannot_change_the_pool(team_server, page):
    team_server.ctx.store.add_prompts_bulk(parse_lines("What is a cat?"))
    page.goto(team_server.url)
    page.get_by_label("username").fill("ann")
    page.get_by_label("password").fill("pw-ann")
    page.get_by_role("button", name="Login").click()
    wait_status(page, "press N")
    name = page.locator("#annotator textarea")
    page.wait_for_function("() => document.querySelector('#annotator textarea').value === 'ann'")
    assert name.is_disabled()
    page.keyboard.press("n")
    pair_id = ready_pair(page)
    page.keyboard.press("b")
    wait_status(page, f"Saved: B is better for pair {pair_id}")
    assert team_server.ctx.store.get_comparison(pair_id).annotator == "ann"
    page.locator("#prompt-pool").get_by_text("Prompt pool").click()
    page.locator("#pool-paste textarea").fill("A prompt from an annotator")
    page.locator("#pool-add").click()
    page.get_by_text("ann may not import").first.wait_for()
    assert team_server.ctx.store.pool_counts()["prompts"] == 1


def test_privileged_buttons_are_greyed_out_for_an_annotator_and_live_for_the_admin(team_server, browser):
    """A courtesy on top of the server's refusal: an annotator does not get buttons that can only fail."""
    privileged = {"Data": ("#import-run", "#fix-run", "#delete-run", "#export-run"),
                  "Train": ("#train-export", "#train-start", "#train-push")}
    for user, allowed in (("ann", False), ("boss", True)):
        page = browser.new_page()
        page.goto(team_server.url)
        page.get_by_label("username").fill(user)
        page.get_by_label("password").fill(f"pw-{user}")
        page.get_by_role("button", name="Login").click()
        page.get_by_role("tab", name="Data").wait_for()
        for tab, selectors in privileged.items():
            page.get_by_role("tab", name=tab).click()
            for selector in selectors:
                button = page.locator(selector)
                button.wait_for()
                page.wait_for_function(f"() => document.querySelector('{selector}').disabled === {str(not allowed).lower()}")
            note = page.get_by_text(f"{user} may not").locator("visible=true")
            if allowed:
                assert note.count() == 0
            else:
                note.first.wait_for()  # the greyed-out buttons come with the reason, in the tab itself
        page.close()
