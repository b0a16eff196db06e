"""The Data tab in headless Chromium: import a real-format file, map the columns of another, browse, open,
fix and delete a comparison, export a snapshot."""

import pytest

from alignui.data.snapshot import list_snapshots, verify_snapshot
from conftest import REPO, screenshot

pytestmark = pytest.mark.e2e
FIX = REPO / "tests" / "fixtures"


def open_data_tab(server, page):
    page.goto(server.url)
    page.get_by_role("tab", name="Data").click()
    page.locator("#import-run").wait_for()


def upload(page, path):
    clear = page.locator("#import-file button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    with page.expect_file_chooser() as chooser:
        page.locator("#import-file").get_by_text("Click to Upload").first.click()
    chooser.value.set_files(str(path))
    # the name shows while it uploads too ("Uploading 1 file..."): the size link appears once the server has it
    # (a click before that sent no file: CI, on a loaded host)
    page.locator(f"#import-file [data-testid='download-link'][download='{path.name}']").wait_for(timeout=90_000)


def pick(page, elem_id, option):
    page.locator(f"#{elem_id} input").click()
    page.locator(f"#{elem_id}").get_by_role("option", name=option, exact=True).click()
    page.locator(f"#{elem_id} input").press("Escape")


def test_import_map_browse_fix_delete_export(server, page, tmp_path):
    store = server.ctx.store
    open_data_tab(server, page)
    upload(page, FIX / "trl_conversational.jsonl")
    page.locator("#import-run").click()
    page.locator("#import-status").get_by_text("Imported 4 pairs, skipped 0.").wait_for()
    mine = tmp_path / "mine.csv"
    mine.write_text("question,good,bad\nWhat is 2+2?,4,5\nName a colour.,Blue.,Seven.\n")
    upload(page, mine)
    page.locator("#import-preview").click()
    page.get_by_text("format not recognised").wait_for()
    for name, column in (("prompt", "question"), ("chosen", "good"), ("rejected", "bad")):
        pick(page, f"map-{name}", column)
    page.locator("#import-run").click()
    page.locator("#import-status").get_by_text("Imported 2 pairs").wait_for()  # the summary below says it too
    assert store.table_counts()["comparisons"] == 6
    screenshot(page, "data-import")

    page.locator("#filter-text textarea, #filter-text input").first.fill("colour")
    page.locator("#browse-search").click()
    page.get_by_text("1 comparisons match").wait_for()
    page.locator("#browse-table").get_by_test_id("cell-0-5").click()
    page.locator("#detail").get_by_text("Seven.").wait_for()
    cid = page.locator("#detail-id textarea, #detail-id input").first.input_value()
    pick(page, "fix-verdict", "b")
    page.locator("#fix-run").click()
    page.get_by_text("changed from a to b").wait_for()
    assert store.get_comparison(cid).verdict == "b"
    screenshot(page, "data-browse")
    page.locator("#delete-run").click()
    page.get_by_text("deleted by").first.wait_for()
    assert store.comparison_detail(cid)["deleted_at"] is not None

    page.locator("#export-run").click()
    page.get_by_text("Snapshot").first.wait_for()
    page.locator("#export-status").get_by_text("5 pairs").wait_for()
    refs = list_snapshots(server.ctx.layout.root)
    assert len(refs) == 1 and refs[0].manifest["rows"] == 5 and verify_snapshot(refs[0])
    assert refs[0].manifest["truncation"]["over"] == 0
    screenshot(page, "data-export")


def test_errors_show_in_the_page_and_change_nothing(server, page, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": }\n')
    open_data_tab(server, page)
    upload(page, bad)
    page.locator("#import-run").click()
    page.get_by_text("bad.jsonl, line 2: not valid JSON").first.wait_for()
    assert server.ctx.store.table_counts()["comparisons"] == 0
    page.locator("#export-run").click()
    page.get_by_text("nothing to export").first.wait_for()


def test_thumbs_ratings_browse_and_delete_in_the_browser(server, page):
    from team.test_thumbs_browse import seed

    store = server.ctx.store
    ids = seed(store)
    open_data_tab(server, page)
    page.locator("#thumbs-browse").get_by_text("Thumbs ratings", exact=True).click()
    page.locator("#thumbs-search").click()
    page.locator("#thumbs-caption").get_by_text("3 thumbs ratings match").wait_for()
    pick(page, "thumbs-filter", "down")
    page.locator("#thumbs-search").click()
    page.locator("#thumbs-caption").get_by_text("1 thumbs ratings match").wait_for()
    page.locator("#thumbs-table").get_by_test_id("cell-0-4").click()  # the prompt cell of the one row
    page.wait_for_function(f"() => document.querySelector('#thumb-id textarea, #thumb-id input')?.value === "
                           f"'{ids['ann-down']}'")
    page.locator("#thumb-delete").click()
    page.locator("#thumb-status").get_by_text("deleted by").wait_for()
    page.locator("#thumbs-caption").get_by_text("0 thumbs ratings match").wait_for()
    assert store.rating_counts().get("down", 0) == 0
    screenshot(page, "data-thumbs")
