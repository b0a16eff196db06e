"""Train tab bug 4 (issue 13): the curves of a run that already exists draw lines, not only axes, whenever the run
is opened: after a page load, with the Train tab opened later, and when clicked in the Runs table."""

import pytest

from alignui.paths import StorageLayout
from alignui.runs import RunDir
from conftest import screenshot

LINES = """(plot) => [...document.querySelectorAll(`#train-plot-${plot} .mark-line path`)]
    .filter(p => (p.getAttribute('d') || '').length > 10 && getComputedStyle(p).stroke !== 'none').length"""

pytestmark = pytest.mark.e2e


def finished_run(storage, run_id: str, steps: int = 12) -> RunDir:
    run = RunDir.create(StorageLayout(storage).ensure(), run_id)
    run.write_config("dpo", {"max_steps": steps})
    for step in range(1, steps + 1):
        run.append_metrics({"step": step, "loss": 0.7 - 0.03 * step, "rewards/accuracies": 0.5 + 0.03 * step,
                            "rewards/margins": 0.1 * step, "rewards/chosen": 0.05 * step,
                            "rewards/rejected": -0.05 * step})
    run.update_status(state="done", method="dpo", phase="done", step=steps, max_steps=steps)
    return run


def test_an_existing_run_draws_its_curves_when_opened(server, page, storage):
    finished_run(storage, "dpo-20260101-000000-aaaa")
    finished_run(storage, "dpo-20260102-000000-bbbb")
    page.goto(server.url)
    page.locator("#prompt textarea").wait_for()
    page.wait_for_timeout(2500)  # the live view's timer has sent the newest run's curves to the hidden tab
    page.get_by_role("tab", name="Train").click()
    page.wait_for_function("() => document.querySelector('#train-headline')?.innerText.includes('bbbb')")
    page.wait_for_timeout(2500)
    assert [page.evaluate(LINES, plot) for plot in ("loss", "accuracy", "rewards")] == [1, 1, 3]  # drawn lines
    screenshot(page, "train-curves-of-an-existing-run")
    page.locator("#train-runs").get_by_text("dpo-20260101-000000-aaaa").last.click()  # another run, from Runs
    page.wait_for_function("() => document.querySelector('#train-headline')?.innerText.includes('aaaa')")
    page.wait_for_timeout(2500)
    assert [page.evaluate(LINES, plot) for plot in ("loss", "accuracy", "rewards")] == [1, 1, 3]
