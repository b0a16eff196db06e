"""Data tab, "Thumbs ratings": browse the thumbs up/down ratings (filter by thumb and text, page) and
soft-delete one. Thin callbacks over alignui.annotation.curation (browse_thumbs, delete_thumb): an annotator
sees only their own ratings; deleting is an admin's, checked on the server whoever calls the event.
"""

from __future__ import annotations

import gradio as gr

from alignui.annotation import curation
from alignui.context import AppContext
from alignui.ui import data_detail
from alignui.ui.common import user_errors
from alignui.ui.signin import identity_of


def build(ctx: AppContext, who: gr.Textbox) -> list[gr.Button]:
    """The thumbs browser; returns its privileged button (Delete)."""
    with gr.Row():
        label = gr.Dropdown(list(curation.THUMB_LABELS), value=curation.ANY, label="Thumb", elem_id="thumbs-filter")
        text = gr.Textbox(label="Text contains", elem_id="thumbs-text", max_lines=1, scale=3)
        deleted = gr.Checkbox(label="Show deleted", elem_id="thumbs-deleted")
        page = gr.Number(value=1, precision=0, minimum=1, label="Page", elem_id="thumbs-page")
        search = gr.Button("Search thumbs", variant="primary", elem_id="thumbs-search")
    caption = gr.Markdown(elem_id="thumbs-caption")
    table = gr.Dataframe(headers=list(curation.THUMB_COLUMNS), interactive=False, wrap=True, elem_id="thumbs-table")
    with gr.Row():
        picked = gr.Textbox(label="Rating id (or click a row)", elem_id="thumb-id", max_lines=1, scale=3)
        delete = gr.Button("Delete rating", variant="stop", elem_id="thumb-delete")
    status = gr.Markdown(elem_id="thumb-status")

    @user_errors
    def ui_browse(thumb, contains, show_deleted, number, name, request: gr.Request):
        found = curation.browse_thumbs(ctx.store, thumb, contains, bool(show_deleted), number or 1,
                                       viewer=identity_of(ctx, request, name))
        return found.rows, found.caption, found.page

    inputs, outputs = [label, text, deleted, page, who], [table, caption, page]
    search.click(ui_browse, inputs, outputs, api_visibility="private")
    text.submit(ui_browse, inputs, outputs, api_visibility="private")

    table.select(data_detail.first_cell, None, picked, api_visibility="private")

    @user_errors
    def ui_delete(rating_id, thumb, contains, show_deleted, number, name, request: gr.Request):
        identity = identity_of(ctx, request, name)
        done = curation.delete_thumb(ctx.store, rating_id, identity)
        found = curation.browse_thumbs(ctx.store, thumb, contains, bool(show_deleted), number or 1, viewer=identity)
        return done, found.rows, found.caption

    delete.click(ui_delete, [picked, label, text, deleted, page, who], [status, table, caption],
                 api_visibility="private")
    return [delete]
