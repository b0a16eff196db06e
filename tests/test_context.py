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


def test_after_close_no_thread_of_ours_is_left(config):
    """Every long-lived thread the context started (model loader and worker, runs index) ends with close()."""
    from alignui.context import AppContext

    before = set(threading.enumerate())
    ctx = AppContext.open(config, seed=0, log=lambda msg: None)
    job_runner(ctx)
    ctx.model.submit(lambda: None).result()  # the model's worker thread has work done on it
    started = {t for t in threading.enumerate() if t not in before}
    assert any(t.name == "alignui-runs-index" for t in started) and len(started) >= 2, [t.name for t in started]
    ctx.close()
    for t in started:
        t.join(timeout=10)
    left = [t.name for t in started if t.is_alive()]
    assert not left, f"threads still running after close: {left}"
