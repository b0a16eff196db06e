"""AppContext owns and closes every long-lived object it holds."""

import threading

from alignui.training.app.runner import job_runner


def index_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "alignui-runs-index"}


def test_closing_the_context_ends_the_job_runners_index_thread(ctx):
    """The runner's index thread writes to the Store: it must end before the Store closes, not outlive it."""
    before = index_threads()
    job_runner(ctx)
    started = index_threads() - before
    assert len(started) == 1
    ctx.close()
    assert not [t for t in started if t.is_alive()]
