"""The Train tab's Next round section in headless Chromium at 1280x800, as an operator uses it: pick the
finished parent run, generate the next round's pairs from its adapter, vote on one in Annotate (round pairs
come first on Next), export the round's snapshot with its lineage."""

import pytest

from alignui.data.snapshot import list_snapshots
from conftest import screenshot
from e2e.test_annotate import press, ready_pair, start_session
from e2e.test_data_tab import pick
from rounds.test_rounds_roles import finished_parent

pytestmark = pytest.mark.e2e


def test_next_round_generates_pairs_annotate_hands_them_out_and_export_names_the_parent(server, page,
                                                                                       demo_model_dir):
    store = server.ctx.store
    finished_parent(server, demo_model_dir)  # made after the page was built: the dropdown must find it anyway
    store.add_prompt([{"role": "user", "content": "What is a dog?"}])
    page.goto(server.url)
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-round").get_by_text("Next round (training in rounds)").click()
    pick(page, "round-parent", "dpo-parent")
    page.locator("#round-status").get_by_text("Round 2 from").wait_for()
    page.locator("#round-prompts input").fill("2")
    page.locator("#round-generate").click()
    page.locator("#round-message").get_by_text("Queued 2 pairs of round 2").wait_for(timeout=120_000)
    page.locator("#round-status").get_by_text("2 queued").wait_for()
    screenshot(page, "train-next-round")

    page.get_by_role("tab", name="Annotate").click()
    start_session(page, server.url)
    page.keyboard.press("n")
    pair_id = ready_pair(page)
    assert store.comparison_meta(pair_id)["parent_run"] == "dpo-parent"  # a round pair, handed out first
    press(page, "a", f"Saved: A is better for pair {pair_id}")

    page.get_by_role("tab", name="Train").click()
    page.locator("#train-round").get_by_text("Next round (training in rounds)").click()
    pick(page, "round-parent", "dpo-parent")
    page.locator("#round-export").click()
    page.locator("#round-message").get_by_text("Exported snapshot").wait_for()
    (ref,) = list_snapshots(server.ctx.layout.root)
    assert ref.manifest["lineage"]["parent_run"] == "dpo-parent" and ref.manifest["lineage"]["round"] == 2
    assert ref.manifest["rows"] == 1
