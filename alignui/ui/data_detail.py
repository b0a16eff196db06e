"""The Data tab's record detail view: one comparison opened by clicking its row (or typing its id), as
Argilla shows a record: the conversation, both responses side by side, the verdict, who and when, the edit
history; with the admin's Fix verdict and Delete.

Thin callbacks: alignui.annotation.curation opens, fixes and deletes (it checks who may, and refuses pending
arena battles: opening one would name its models before the vote). Every stored value reaches the page
through md_text (shown as typed: no HTML, links or images).
"""

from __future__ import annotations

import json

import gradio as gr

from alignui.annotation import curation
from alignui.context import AppContext
from alignui.db.records import VERDICTS
from alignui.ui.common import md_text, user_errors
from alignui.ui.signin import identity_of

CSS = """
#detail {border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 12px;}
#detail-a, #detail-b {background: var(--block-background-fill); border-radius: 6px; padding: 4px 10px;}
"""
EMPTY = ("*Click a row of the table (or type a comparison id) to open it here.*", "", "", "")


def _when(value) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "—"


def detail_parts(d: dict) -> tuple[str, str, str, str]:
    """(head: id, verdict, who, when and the conversation; response A; response B; edits and history)."""
    t = md_text
    verdict = t(d["verdict"] or "pending")
    deleted = f" · **deleted** by {t(d['deleted_by'])} at {_when(d['deleted_at'])}" if d["deleted_at"] else ""
    took = f" · took {d['duration_ms'] / 1000:.1f} s" if d.get("duration_ms") else ""
    turns = "\n\n".join(f"**{t(m['role'])}:** {t(m['content'])}" for m in d["messages"])
    head = (f"### Comparison {t(d['id'])}\n\n**Verdict: {verdict}** · by {t(d['annotator'] or '(nobody)')} · "
            f"decided {_when(d['decided_at'])} · created {_when(d['created_at'])}{took} · {t(d['kind'])} · source "
            f"{t(d['source'])}{deleted}\n\n#### Conversation\n\n{turns}")
    mark = lambda side: " ✓ chosen" if d["verdict"] == side else ""  # noqa: E731
    side_a = f"#### Response A{mark('a')}\n\n*{t(d['model_a'])}*\n\n{t(d['text_a'])}"
    side_b = f"#### Response B{mark('b')}\n\n*{t(d['model_b'])}*\n\n{t(d['text_b'])}"
    rest = []
    if d["edited_chosen"]:
        rest.append(f"**Edited winner:** {t(d['edited_chosen'])}")
    if d["meta"]:
        rest.append(f"Metadata: {t(json.dumps(d['meta'], ensure_ascii=False))}")
    history = [f"- {_when(a['created_at'])} {t(a['action'])} by {t(a['actor'])}: {t(a['old_verdict'])} → "
               f"{t(a['new_verdict'] or '—')}" + (f" ({t(a['note'])})" if a.get("note") else "") for a in d["audit"]]
    rest.append("#### Edit history\n\n" + ("\n".join(history) if history else "No changes since the vote."))
    return head, side_a, side_b, "\n\n".join(rest)


def first_cell(evt: gr.SelectData) -> str:
    """The id (first column) of the table row a click selected: what the id box under a table takes."""
    return (evt.row_value or [""])[0]


def build(ctx: AppContext, who: gr.Textbox, table: gr.Dataframe) -> list[gr.Button]:
    """The detail view under the browse table; returns its privileged buttons (Fix verdict, Delete)."""
    with gr.Row():
        picked = gr.Textbox(label="Comparison id (or click a row)", elem_id="detail-id", max_lines=1, scale=2)
        new_verdict = gr.Dropdown(list(VERDICTS), value="a", label="Fix verdict to", elem_id="fix-verdict")
        fix = gr.Button("Fix verdict", elem_id="fix-run")
        delete = gr.Button("Delete", variant="stop", elem_id="delete-run")
    action = gr.Markdown(elem_id="detail-status")
    with gr.Column(elem_id="detail"):
        head = gr.Markdown(EMPTY[0], elem_id="detail-head")
        with gr.Row(equal_height=True):
            side_a = gr.Markdown(elem_id="detail-a")
            side_b = gr.Markdown(elem_id="detail-b")
        rest = gr.Markdown(elem_id="detail-history")
    parts = [head, side_a, side_b, rest]

    table.select(first_cell, None, picked, api_visibility="private")

    @user_errors
    def ui_open(cid, name, request: gr.Request):
        if not cid:
            return EMPTY
        return detail_parts(curation.open_comparison(ctx.store, cid, identity_of(ctx, request, name)))

    picked.change(ui_open, [picked, who], parts, api_visibility="private")

    @user_errors
    def ui_fix(cid, verdict, name, request: gr.Request):
        identity = identity_of(ctx, request, name)
        status = curation.fix_verdict(ctx.store, cid, verdict, identity)
        return status, *detail_parts(curation.open_comparison(ctx.store, cid, identity))

    @user_errors
    def ui_delete(cid, name, request: gr.Request):
        identity = identity_of(ctx, request, name)
        status = curation.delete_comparison(ctx.store, cid, identity)
        return status, *detail_parts(curation.open_comparison(ctx.store, cid, identity))

    fix.click(ui_fix, [picked, new_verdict, who], [action, *parts], api_visibility="private")
    delete.click(ui_delete, [picked, who], [action, *parts], api_visibility="private")
    return [fix, delete]
