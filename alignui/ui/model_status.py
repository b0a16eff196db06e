"""The model-loading panel: what the page shows while the model loads or the demo model builds.

Owns: the panel under the header (step, a progress bar, time so far), Gradio's own progress indicator on
it while the page waits, swapping the header to the loaded model's description when loading ends, and the
API endpoint /model_status ({"ready", "step", "progress", "error", "elapsed_s"}) for scripts and tests.
Thin: every fact comes from AppContext.model_status (alignui.serving.loader).
"""

from __future__ import annotations

import html
import time
from typing import Callable

import gradio as gr

from alignui.context import AppContext
from alignui.serving.loader import LoadStatus

POLL_S = 0.5


def panel_html(status: LoadStatus) -> str:
    """The panel's content for `status` ('' once the model is ready)."""
    if status.ready:
        return ""
    if status.error:
        return (f'<div class="alignui-loading alignui-loading-failed"><b>The model could not be loaded.</b> '
                f"{html.escape(status.error)}<br>Fix the cause (the server log has the details) and restart "
                "the app; the Data, Train and Leaderboard tabs work meanwhile.</div>")
    return (f'<div class="alignui-loading"><b>Preparing the model</b>: {html.escape(status.step)} · '
            f"<b>{status.percent}</b> · {status.elapsed_s:.0f} s so far<br>"
            "<small>The page is usable meanwhile; generating (Annotate, Arena) starts once the model is "
            "ready. This panel goes away by itself.</small></div>")


def build(ctx: AppContext, blocks: gr.Blocks, header: gr.Markdown, header_text: Callable[[AppContext], str]) -> None:
    """The panel under the header, kept up to date on every page load until the model is ready."""
    status = ctx.model_status
    with gr.Column(visible=not status.ready, elem_id="model-loading") as box:
        panel = gr.HTML(panel_html(status), elem_id="model-loading-text")
        bar = gr.HTML("", elem_id="model-loading-bar")  # Gradio's own progress bar shows here

    def ui_wait(progress=gr.Progress()):
        """Stream the loading step until loading ends (one open page = one cheap polling loop). The panel is
        re-sent only when the step or its percent changes: each update hides Gradio's bar until the next
        progress() call, so updating every poll would make it flicker."""
        shown = None
        while True:
            now = ctx.model_status
            if now.ready or now.error:
                yield header_text(ctx), gr.update(visible=bool(now.error)), panel_html(now), gr.skip()
                return
            progress(now.fraction, desc=now.step)
            if (now.step, now.percent) != shown:
                shown = (now.step, now.percent)
                yield gr.skip(), gr.update(visible=True), panel_html(now), gr.skip()
            time.sleep(POLL_S)

    blocks.load(ui_wait, None, [header, box, panel, bar], api_visibility="private",
                            concurrency_limit=None, show_progress="full", show_progress_on=[bar])

    def model_status() -> dict:
        """Where loading the model stands: {"ready", "step", "progress" (0..1 or null), "error", "elapsed_s"}."""
        return ctx.model_status.as_dict()

    gr.api(model_status, api_name="model_status")

