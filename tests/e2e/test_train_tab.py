"""The Train tab in headless Chromium: pre-flight, start a DPO run, watch progress and the loss curve move,
cancel it, resume it, see it finish with a verdict and its adapter listed for the arena."""

import pytest

from alignui.training.app.runner import job_runner
from alignui.training.synthetic import closer_snapshot
from conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
LONG = 600_000  # ms: job start-up (importing torch/trl) is slow on a busy 2-core machine


@pytest.fixture
def snapshot(storage):
    return closer_snapshot(storage, "closer", train_rows=160, test_rows=16)


@pytest.fixture
def train_page(snapshot, server, page):
    yield page
    job_runner(server.ctx).shutdown(cancel=True)  # never leave a training process behind


def progress(page) -> int:
    return int(page.locator("#train-progress-bar").get_attribute("value") or 0)


def plotted_points(page, plot: str) -> int:
    """Marks drawn by the Vega chart of one plot (0 while it is empty)."""
    return page.evaluate(f"""() => {{
        const root = document.querySelector('#train-plot-{plot}');
        return root ? root.querySelectorAll('path[aria-roledescription="line mark"], .mark-line path').length : 0;
    }}""")


def test_start_watch_cancel_resume_finish(train_page, server):
    page = train_page
    page.goto(server.url)
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-preflight").wait_for()
    assert page.locator("#train-preset input").input_value() == "cpu-demo"
    for name, value in (("max_steps", "60"), ("save_steps", "5"), ("logging_steps", "1")):
        box = page.locator(f"#train-{name} input")
        if not box.is_visible():
            page.locator("#train-more-settings").click()
        box.fill(value)
        box.press("Tab")
    page.locator("#train-preflight").click()
    page.get_by_text("Pre-flight ✅ ready").wait_for(timeout=LONG)
    assert "160" in page.locator("#train-message").inner_text()
    screenshot(page, "train-preflight")

    page.locator("#train-start").click()
    page.get_by_text("started").wait_for(timeout=LONG)
    page.wait_for_function("() => +document.querySelector('#train-progress-bar').value > 0", timeout=LONG)
    first = progress(page)
    page.wait_for_function(f"() => +document.querySelector('#train-progress-bar').value > {first}", timeout=LONG)
    page.wait_for_function("() => document.querySelector('#train-log textarea').value.includes('loss')",
                           timeout=LONG)
    screenshot(page, "train-running")
    assert plotted_points(page, "loss") > 0

    page.locator("#train-cancel").click()
    page.locator("#train-headline").get_by_text("cancelled").wait_for(timeout=LONG)
    stopped_at = progress(page)
    assert 0 < stopped_at < 100
    page.locator("#train-resume").click()
    page.locator("#train-headline").get_by_text("done").wait_for(timeout=LONG)
    page.get_by_text("learned the preference").first.wait_for(timeout=LONG)
    assert progress(page) == 100
    page.wait_for_function("() => document.querySelector('#train-runs')?.innerText.includes('✅ in arena')",
                           timeout=LONG)
    screenshot(page, "train-done")
    adapters = server.ctx.store.list_adapters()
    assert len(adapters) == 1 and adapters[0].metrics["eval"]["eval_rewards/accuracies"] > 0.5
    log = (server.ctx.layout.runs_dir / adapters[0].id / "log.txt").read_text()
    assert "resuming from checkpoint-" in log
