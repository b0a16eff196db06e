"""The Arena and Leaderboard tabs in headless Chromium: blind before the vote, revealed after, leaderboard updated."""

import re

import pytest

from conftest import screenshot
from arena.test_arena import make_adapter

pytestmark = pytest.mark.e2e
SECRET = "dpo-zebra-7q"


def element_ids(page) -> list[str]:
    return page.evaluate("() => Array.from(document.querySelectorAll('[id]')).map(e => e.id)")


def test_a_blind_battle_in_the_browser_then_the_reveal_and_the_leaderboard(server, page, storage):
    make_adapter(server.ctx.store, storage, SECRET)
    page.goto(server.url)
    page.get_by_role("tab", name="Arena").click()
    box = page.locator("#arena-prompt textarea")
    box.wait_for()
    box.fill("Tell me about the sea.")
    page.locator("#arena-go").click()
    page.get_by_text("Which answer is better?").wait_for(timeout=120_000)  # 2 shared CPU cores
    a, b = page.locator("#arena-a textarea").input_value(), page.locator("#arena-b textarea").input_value()
    assert a and b

    # before the vote: nothing in the page, the arena's text or any element id names either model
    assert SECRET not in page.content() and "zebra" not in page.content()
    for part in ("#arena-battle", "#arena-votes", "#arena-reveal"):  # the battle, not the pairing policy chosen
        text = page.locator(part).inner_text().replace(a, "").replace(b, "")
        assert not re.search(r"\bbase\b", text, re.I) and "zebra" not in text, text
    assert not [i for i in element_ids(page) if "zebra" in i or re.search(r"\bbase\b", i)]
    screenshot(page, "arena-before-vote")

    page.locator("#arena-vote-b").click()
    reveal = page.locator("#arena-reveal")
    page.get_by_text("Your vote: B is better").wait_for()
    shown = reveal.inner_text()
    assert SECRET in shown and "base" in shown
    assert page.locator("#arena-vote-a").is_disabled()  # one vote per battle
    screenshot(page, "arena-after-vote")
    (saved,) = server.ctx.store.arena_battles().itertuples()
    assert saved.winner == "model_b" and f"B was {saved.model_b}" in shown

    page.get_by_role("tab", name="Leaderboard").click()
    table = page.locator("#lb-ratings")
    page.wait_for_function(f"() => document.querySelector('#lb-ratings')?.innerText.includes('{SECRET}')")
    assert "base" in table.inner_text()
    page.get_by_text("1 votes").wait_for()
    page.locator("#lb-bars .js-plotly-plot").wait_for()
    page.locator("#lb-heatmap .js-plotly-plot").wait_for()
    screenshot(page, "leaderboard")


def test_judging_held_out_prompts_from_the_leaderboard(server, page, storage, monkeypatch):
    from arena.test_judges import Endpoint

    endpoint = Endpoint("longer")
    monkeypatch.setenv("ALIGNUI_JUDGE_URL", endpoint.url)
    monkeypatch.setenv("ALIGNUI_JUDGE_MODEL", "judge-model")
    try:
        make_adapter(server.ctx.store, storage, SECRET)
        for k in range(3):
            server.ctx.store.add_prompt([{"role": "user", "content": f"Held-out question {k}?"}], split="heldout")
        page.goto(server.url)
        page.get_by_role("tab", name="Leaderboard").click()
        page.get_by_text("Automatic judge: a quick estimate before humans vote").click()
        page.locator("#lb-judge-batch").click()
        page.get_by_text("judge's estimate").wait_for(timeout=120_000)
        report = page.locator("#lb-judge-report").inner_text()
        assert "Judge llm:judge-model: 3 judgments" in report and f"{SECRET} vs base" in report
        assert "position bias" in report and len(endpoint.requests) == 6  # both orders of 3 battles
        screenshot(page, "leaderboard-judge")
    finally:
        endpoint.close()


def test_the_leaderboard_shows_ratings_intervals_and_verdicts_for_many_votes(server, page):
    import random

    from alignui.db import NewGeneration

    rng = random.Random(0)
    store = server.ctx.store
    strength = {"base": 0.5, "dpo-strong": 0.7, "dpo-weak": 0.35}  # P(beats base), roughly
    for k in range(160):
        other = "dpo-strong" if k % 2 else "dpo-weak"
        left, right = (other, "base") if k % 4 < 2 else ("base", other)
        gens = [NewGeneration(m, f"answer {k}", n_tokens=40 + 20 * (m == "dpo-strong")) for m in (left, right)]
        pair = store.save_pair([{"role": "user", "content": f"q{k}"}], *gens, kind="arena")
        other_wins = rng.random() < strength[other]
        verdict = "tie" if rng.random() < 0.1 else ("a" if (left == other) == other_wins else "b")
        store.decide(pair.id, verdict, allowed=("a", "b", "tie", "both_bad"), kind="arena")
    page.goto(server.url)
    page.get_by_role("tab", name="Leaderboard").click()
    page.get_by_text("160 votes").wait_for()
    verdicts = page.locator("#lb-verdicts").inner_text()
    assert "dpo-strong vs base: working" in verdicts and "dpo-weak vs base: made it worse" in verdicts
    page.locator("#lb-heatmap .js-plotly-plot").wait_for()
    screenshot(page, "leaderboard-many-votes")
