"""The Gradio app: header, tabs, launch.

Owns: composing the header, the notice bar and the tabs (one module each under alignui/ui/) into one Blocks
and launching it with theme and CSS (Gradio 6 takes them in launch()).
"""

from __future__ import annotations

from typing import Callable

import gradio as gr

from alignui.config import AppConfig
from alignui.context import AppContext
from alignui.team.identity import login_checker
from alignui.team.handoff import Handoff
from alignui.team.backup import start_periodic_backup
from alignui.team.spaces import storage_status
from alignui.serving.loading import ModelHandle, load_model
from alignui.ui import admin, annotate, arena, data, handoff, leaderboard, model_status, notice, thumbs, train
from alignui.ui.common import CSS, Page, theme
from alignui.ui.signin import sign_in_widgets

TABS = (("Annotate", annotate.build), ("Thumbs", thumbs.build), ("Data", data.build), ("Train", train.build),
        ("Arena", arena.build), ("Leaderboard", leaderboard.build), ("Admin", admin.build),)


def header_markdown(ctx: AppContext) -> str:
    status = ctx.model_status
    if status.ready:  # the model's notice (offline, demo model) is the one-line bar of alignui.ui.notice
        model = ctx.model.describe()
    else:
        model = f"{ctx.config.model} ({'could not be loaded' if status.error else 'loading…'})"
    lines = [f"## alignui\n**Model:** {model} · **Data root:** `{ctx.layout.root.resolve()}`"]
    restore = ctx.restore
    if restore is not None and (restore.restored or restore.failed):  # what this start did with the backup
        lines.append(f"> {'⚠️ ' if restore.failed else ''}{restore.message[:1].upper()}{restore.message[1:]}")
    storage = storage_status(ctx.config)
    if storage.message:  # loud on every tab: data would vanish on restart
        lines.append(f"> ⚠️ **Data is not persistent.** {storage.message}")
    return "\n\n".join(lines)


def build_ui(ctx: AppContext, cli: Handoff | None = None) -> gr.Blocks:
    """The whole app; with `cli`, also the endpoint the command line hands export/import/stats to."""
    _skip_matplotlib_probe()
    with gr.Blocks(title="alignui") as demo:
        header = gr.Markdown(header_markdown(ctx), elem_classes="alignui-header", elem_id="header")
        model_status.build(ctx, demo, header, header_markdown)
        notice.build(ctx, demo)
        sign_in_widgets(ctx)
        with gr.Tabs():
            for name, build in TABS:
                with gr.Tab(name, id=name.lower()) as tab:
                    build(ctx, Page(demo, tab))
        if cli is not None:
            handoff.build(ctx, cli)
    return demo


def _skip_matplotlib_probe() -> None:
    """Gradio wraps every step of every event in a context that imports matplotlib to switch its backend, and
    does nothing when that import fails; without matplotlib (not a dependency) each failed import searched
    sys.path: 25% of the web thread's busy time with 8 annotators streaming (py-spy, bench/concurrent_annotators).
    Then the context is a no-op: the same behaviour without the search (by hand: Gradio has no switch for it)."""
    import contextlib
    import importlib.util

    import gradio.utils

    if importlib.util.find_spec("matplotlib") is None:
        gradio.utils.MatplotlibBackendMananger = contextlib.nullcontext


#: Gradio's queue rebuilds its analytics summary (a pandas DataFrame of the last 10,000 events, grouped by
#: function, for its /monitoring page) after this many events; its default, 1, did it twice per event: ~20 ms of
#: CPU each time on a 2-core host, under the GIL, while annotators stream. alignui does not use that page.
QUEUE_ANALYTICS_EVERY = 1000


def _rarer_queue_analytics(demo) -> None:
    """Gradio reads the frequency from GRADIO_ANALYTICS_CACHE_FREQUENCY once, into this attribute of its queue
    (spelled so); set here so that the process environment stays untouched. By hand: no parameter exposes it."""
    queue = getattr(demo, "_queue", None)
    if queue is not None and hasattr(queue, "ANAYLTICS_CACHE_FREQUENCY"):
        queue.ANAYLTICS_CACHE_FREQUENCY = max(queue.ANAYLTICS_CACHE_FREQUENCY, QUEUE_ANALYTICS_EVERY)


def launch(config: AppConfig, *, block: bool = True, quiet: bool = False, seed: int | None = None,
           load: Callable[..., ModelHandle] = load_model):
    """Open the context, build the UI, serve it. Returns (demo, ctx) when `block` is False.

    The page answers before the model is loaded: `load` runs on the context's loader thread and the page
    shows its progress (alignui.ui.model_status)."""
    print(config.describe(), flush=True)
    ctx = AppContext.open(config, seed=seed, wait=False, load=load)
    if config.served_endpoint is None:  # an endpoint as the served model has nothing to load (serving.remote)
        print(f"alignui: loading {config.model} in the background; the web page answers meanwhile", flush=True)
    cli = Handoff(ctx.layout.root)
    demo = build_ui(ctx, cli)
    demo.queue(default_concurrency_limit=8)
    _rarer_queue_analytics(demo)
    if block:
        _stop_on_sigterm()
    backups = None if ctx.restore and ctx.restore.failed else start_periodic_backup(config, ctx.store)
    if backups is not None:
        ctx.closers.append(backups.stop)
    demo.launch(server_name=config.host, server_port=config.port, prevent_thread_lock=True, quiet=quiet,
                theme=theme(), css=CSS + notice.CSS + data.CSS, head=annotate.HEAD + thumbs.HEAD, show_error=True,
                auth=cli.login(login_checker(config.users)),
                auth_message="alignui: sign in with your annotator account",
                max_file_size=int(config.max_upload_mb * 1024 * 1024),
                # Gradio's "is localhost accessible" probe (networking.url_ok) gives up on the first HEAD request
                # slower than 3 s, so a busy host failed the start ("a shareable link must be created") although
                # the server was up (its startup-events request had just answered); this skips that probe only
                _frontend=False)
    cli.publish(f"http://{_local_host(config.host)}:{demo.server_port}/", login=bool(config.users))
    ctx.closers.append(cli.withdraw)
    if block:
        try:
            demo.block_thread()  # until Ctrl+C or SIGTERM (see _stop_on_sigterm); then close what we opened
        finally:
            ctx.close()
    return demo, ctx


def _local_host(host: str | None) -> str:
    """Where a process on this machine reaches a server listening on `host`."""
    return "127.0.0.1" if host in (None, "", "0.0.0.0", "::", "localhost") else host


def _stop_on_sigterm() -> None:
    """SIGTERM (a service manager, `kill`) stops the server like Ctrl+C does, so the context is closed: a demo
    build in progress is cancelled and its child process ended, instead of being left running."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
