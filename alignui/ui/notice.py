"""The model notice bar: one line under the header (e.g. "serving the built-in demo model, offline"), dismissible.

Owns: showing ctx.model.notice once loading ends, on one line (CSS ellipsis; the server log has the whole text),
and its ✕: a dismissed notice is remembered in the browser (gr.BrowserState) and stays hidden after a reload,
until the notice itself changes. The notice used to be a blockquote in the header, ~100 px on every tab.
"""

from __future__ import annotations

import time

import gradio as gr

from alignui.context import AppContext
from alignui.errors import UserError
from alignui.ui.common import md_text

POLL_S = 0.5
CSS = """
#notice-row {align-items: center; gap: 4px; margin: 0; padding: 2px 8px; min-height: 0;
             background: var(--block-background-fill); border-radius: 6px;}
#model-notice {white-space: nowrap; overflow: hidden; text-overflow: ellipsis; min-width: 0;}
#model-notice p {margin: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}
#notice-close {max-width: 36px; min-width: 28px; padding: 0 6px;}
"""


def _notice(ctx: AppContext) -> str:
    """The loaded model's notice ('' while loading, after a failed load, or when there is none)."""
    try:
        return ctx.model.notice or ""
    except UserError:
        return ""


def build(ctx: AppContext, blocks: gr.Blocks) -> None:
    dismissed = gr.BrowserState("", storage_key="alignui-notice-dismissed")
    with gr.Row(visible=False, elem_id="notice-row", equal_height=True) as row:
        text = gr.Markdown(elem_id="model-notice", scale=20)
        close = gr.Button("✕", size="sm", scale=0, min_width=28, elem_id="notice-close")

    def ui_show(gone: str):
        """Wait (cheaply) until loading ends, then show the notice unless this browser dismissed it."""
        while not (ctx.model_status.ready or ctx.model_status.error):
            time.sleep(POLL_S)
        notice = _notice(ctx)
        return gr.update(visible=bool(notice) and notice != gone), f"⚠️ {md_text(notice)}" if notice else ""

    blocks.load(ui_show, [dismissed], [row, text], api_visibility="private", concurrency_limit=None,
                show_progress="hidden")
    close.click(lambda: (gr.update(visible=False), _notice(ctx)), None, [row, dismissed], api_visibility="private",
                show_progress="hidden")
