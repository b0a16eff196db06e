"""Refusals and what stays on screen, in headless Chromium at 1280x800 (issue 13's browser bugs 1, 2, 3, 5):
a refused action shows its message and leaves every input usable (no red Error badges); a vote while the pair
still streams says so and leaves the checkboxes alone; the Train tab's snapshots are fresh after a reload and
on opening the tab; the arena always shows the prompt being judged, a held-out one included."""

import threading

import pytest

from alignui.annotation.pairs import user_turn
from alignui.training.synthetic import closer_snapshot
from arena.test_arena import make_adapter
from conftest import screenshot
from e2e.test_first_start import error_badges

pytestmark = pytest.mark.e2e


def toast(page, text: str) -> None:
    page.locator(".toast-body").get_by_text(text).first.wait_for()


def test_refused_actions_show_a_message_and_leave_the_inputs_usable(server, page):
    page.goto(server.url)
    box = page.locator("#prompt textarea")
    box.wait_for()
    page.locator("#generate").click()
    toast(page, "the prompt is empty")
    assert error_badges(page) == 0
    box.fill("/ typed after the refusal")
    assert box.input_value() == "/ typed after the refusal"

    page.get_by_role("tab", name="Arena").click()
    page.locator("#arena-go").click()
    toast(page, "no held-out prompts yet")
    assert error_badges(page) == 0
    page.locator("#arena-prompt textarea").fill("still typeable")

    page.get_by_role("tab", name="Train").click()
    page.locator("#train-export").click()
    toast(page, "nothing to export")
    assert error_badges(page) == 0

    page.get_by_role("tab", name="Admin").click()
    page.locator("#admin-set-role").click()
    toast(page, "type the user name")
    assert error_badges(page) == 0
    screenshot(page, "refusals-no-badges")


def test_a_vote_while_the_pair_streams_says_so_and_leaves_the_checkboxes_alone(server, page, monkeypatch):
    from alignui.annotation import workspace

    real, release = workspace.stream_annotation_pair, threading.Event()

    def slow(*args, **kwargs):  # a slow model: once A has words on screen, the pair is held until the test has
        for step in real(*args, **kwargs):  # voted (a fixed delay raced with how long the key press takes on a
            yield step  # loaded host: the pair was complete before the vote arrived)
            if step.pair is None and step.text_a:
                release.wait(60)

    monkeypatch.setattr(workspace, "stream_annotation_pair", slow)
    page.goto(server.url)
    box = page.locator("#prompt textarea")
    box.wait_for()
    page.locator("#continue-conv input").check()
    box.fill("Tell me about the ocean.")
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('#response-a textarea').value.length > 0")
    box.press("Escape")
    page.keyboard.press("a")  # the A shortcut while the pair is still being written
    try:
        toast(page, "the pair is still being written")
        assert error_badges(page) == 0
        assert page.locator("#continue-conv input").is_checked()
        assert not page.locator("#edit-winner input").is_checked()
    finally:
        release.set()
    page.get_by_text("is ready: which response is better?").wait_for(timeout=120_000)
    assert server.ctx.store.vote_counts().get("a", 0) == 0


def test_train_snapshots_are_fresh_after_a_reload_and_on_opening_the_tab(server, page, storage):
    page.goto(server.url)
    page.get_by_role("tab", name="Train").click()
    snapshot = page.locator("#train-snapshot input")
    snapshot.wait_for()
    assert snapshot.input_value() == ""
    closer_snapshot(storage, "first", train_rows=8, test_rows=2)  # an export made elsewhere (Data tab, CLI)
    page.reload()
    page.get_by_role("tab", name="Train").click()
    page.wait_for_function("() => document.querySelector('#train-snapshot input').value.includes('first')")
    closer_snapshot(storage, "second", train_rows=8, test_rows=2)
    page.get_by_role("tab", name="Data").click()
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-snapshot input").click()
    page.get_by_role("option", name="second", exact=False).first.wait_for()
    assert "first" in snapshot.input_value()  # the chosen snapshot stays chosen


def test_the_arena_shows_the_held_out_prompt_being_judged(server, page, storage):
    make_adapter(server.ctx.store, storage, "dpo-question")
    server.ctx.store.add_prompt(user_turn("Which planet has the longest day?"), split="heldout")
    page.goto(server.url)
    page.get_by_role("tab", name="Arena").click()
    page.locator("#arena-go").click()  # prompt box left empty: a held-out prompt
    page.get_by_text("Which answer is better?").wait_for(timeout=120_000)
    assert "Which planet has the longest day?" in page.locator("#arena-question").inner_text()
    page.locator("#arena-vote-a").click()
    page.get_by_text("Your vote: A is better").wait_for()
    assert "Which planet has the longest day?" in page.locator("#arena-question").inner_text()
    screenshot(page, "arena-held-out-after-vote")
