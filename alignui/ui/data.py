"""Data tab: import (with column-mapping dropdowns), browse/filter, open one comparison, fix or delete it,
browse and delete thumbs ratings (ui/data_thumbs.py), per-source and per-annotator counts, and export (with
push to the hub).

Thin callbacks only: unpack widgets, call one function of alignui.data / alignui.annotation.curation /
alignui.data.export, format the answer. Privileged actions (import, export, push, fix_verdict, delete) are
checked on the server by those functions with the identity from `identity_of`. Reads (browse, open, counts)
pass the same identity: an annotator sees only their own comparisons (alignui.annotation.curation).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from alignui.annotation import curation
from alignui.context import AppContext
from alignui.data import FORMAT_CHOICES, ImportOptions, import_source, preview_source
from alignui.db.records import VERDICTS
from alignui.data.export import EXPORT_FORMATS, ExportOptions, export_and_push
from alignui.data.sources import web_source
from alignui.data.summaries import export_lines, import_lines
from alignui.serving.truncation import truncation_report
from alignui.ui import data_detail, data_thumbs
from alignui.ui.common import Page, md_text, user_errors
from alignui.team.identity import require
from alignui.ui.signin import admin_note, admin_only, identity_of

MAPPED = ("prompt", "chosen", "rejected")
#: Table headers wrap between words only (Gradio's break-anywhere split "annotator" mid-word at 1280 px).
CSS = """
#browse-table th, #browse-table th *, #counts-source th, #counts-source th *, #counts-annotator th,
#counts-annotator th *, #snapshots th, #snapshots th *, #thumbs-table th, #thumbs-table th * {
  word-break: normal !important; overflow-wrap: normal !important; hyphens: none !important;}
""" + data_detail.CSS


def build(ctx: AppContext, page: Page) -> None:
    note = admin_note()
    who = gr.Textbox(label="Your name", placeholder="who is curating (recorded on fixes and deletes)",
                     elem_id="data-user", max_lines=1)
    with gr.Accordion("Import", open=True):
        privileged = _import_panel(ctx, who)
    with gr.Accordion("Browse and fix", open=True):
        refresh, fix_buttons = _browse_panel(ctx, who)
    with gr.Accordion("Thumbs ratings", open=False, elem_id="thumbs-browse"):
        fix_buttons += data_thumbs.build(ctx, who)
    with gr.Accordion("Counts", open=False):
        _counts_panel(ctx, who, refresh)
    with gr.Accordion("Export", open=True):
        privileged += _export_panel(ctx, who)
    admin_only(ctx, note, privileged + fix_buttons, "import, fix verdicts, delete or export")
    # "Read columns" is in `privileged` too: it reads server files


def _lines(lines: list[str]) -> str:
    """Summary lines (alignui.data.summaries) as a list, each shown exactly as written."""
    return "\n".join(f"- {md_text(line)}" for line in lines)


def _source_of(ctx: AppContext, upload: str | None, typed: str | None) -> str:
    return web_source(upload, typed, ctx.config.import_dirs)


def _import_panel(ctx: AppContext, who: gr.Textbox) -> list[gr.Button]:
    """The import widgets; returns its privileged buttons (Read columns and Import: both read server files)."""
    with gr.Row():
        upload = gr.File(label="File (.jsonl, .json, .csv, .parquet, .txt, .gz)", type="filepath",
                         elem_id="import-file", scale=2)
        with gr.Column(scale=2):
            typed = gr.Textbox(label="…or a path on the server / a hub dataset id", elem_id="import-path",
                               max_lines=1)
            with gr.Row():
                fmt = gr.Dropdown(list(FORMAT_CHOICES), value="auto", label="Format", elem_id="import-format")
                split = gr.Textbox(label="Split", placeholder="dataset split, or 'heldout' for prompts",
                                   elem_id="import-split", max_lines=1)
    with gr.Row():
        maps = [gr.Dropdown([], value=None, label=f"{name} column", allow_custom_value=True,
                            elem_id=f"map-{name}") for name in MAPPED]
    with gr.Row():
        read = gr.Button("Read columns", elem_id="import-preview")
        go = gr.Button("Import", variant="primary", elem_id="import-run")
    status = gr.Markdown(elem_id="import-status")
    summary = gr.Markdown(elem_id="import-summary")

    @user_errors
    def ui_preview(path, text, split_name, name, request: gr.Request):
        identity = identity_of(ctx, request, name)
        require(identity, "import")  # before the path is even looked at
        p = preview_source(_source_of(ctx, path, text), split_name or None, identity)
        found = f"detected format **{p.detected}**" if p.detected else "format not recognised: map the columns below"
        note = f"`{p.label}`: {p.rows} rows, columns {', '.join(p.columns)}; {found}."
        guess = [name if name in p.columns else None for name in MAPPED]
        return [note] + [gr.Dropdown(choices=[""] + p.columns, value=g) for g in guess]

    read.click(ui_preview, [upload, typed, split, who], [status, *maps], api_visibility="private")

    @user_errors
    def ui_import(path, text, fmt_name, split_name, prompt_col, chosen_col, rejected_col, name,
                  request: gr.Request):
        mapping = {k: v for k, v in zip(MAPPED, (prompt_col, chosen_col, rejected_col)) if v and v != k}
        identity = identity_of(ctx, request, name)
        require(identity, "import")  # before the path is even looked at
        source = _source_of(ctx, path, text)
        options = ImportOptions(format=fmt_name, split=split_name or None, mapping=mapping,
                                label=Path(source).name if path else None)
        result = import_source(ctx.store, source, options, identity).as_dict()
        return (f"Imported **{result['imported']}** {result['kind']}, skipped {result['skipped']}.",
                _lines(import_lines(result)))

    go.click(ui_import, [upload, typed, fmt, split, *maps, who], [status, summary], api_visibility="private")
    return [read, go]


def _browse_panel(ctx: AppContext, who: gr.Textbox):
    with gr.Row():
        verdict = gr.Dropdown([curation.ANY, *VERDICTS, "pending"], value=curation.ANY, label="Verdict",
                              elem_id="filter-verdict")
        annotator = gr.Dropdown([curation.ANY], value=curation.ANY, label="Annotator",
                                elem_id="filter-annotator", allow_custom_value=True)
        source = gr.Dropdown([curation.ANY], value=curation.ANY, label="Source",
                             elem_id="filter-source", allow_custom_value=True)
        date_from = gr.Textbox(label="From (YYYY-MM-DD)", elem_id="filter-from", max_lines=1)
        date_to = gr.Textbox(label="To (YYYY-MM-DD)", elem_id="filter-to", max_lines=1)
    with gr.Row():
        text = gr.Textbox(label="Text contains", elem_id="filter-text", max_lines=1, scale=3)
        deleted = gr.Checkbox(label="Show deleted", elem_id="filter-deleted")
        page = gr.Number(value=1, precision=0, minimum=1, label="Page", elem_id="browse-page")
        search = gr.Button("Search", variant="primary", elem_id="browse-search")
    caption = gr.Markdown(elem_id="browse-caption")
    table = gr.Dataframe(headers=list(curation.COLUMNS), interactive=False, wrap=True, elem_id="browse-table")
    filters = [verdict, annotator, source, date_from, date_to, text, deleted]

    @user_errors
    def ui_browse(v, a, s, d1, d2, t, dl, p, name, request: gr.Request):
        viewer = identity_of(ctx, request, name)
        found = curation.browse_page(ctx.store, curation.make_filter(v, a, s, d1, d2, t, dl), p or 1, viewer=viewer)
        fresh = curation.filter_choices(ctx.store, viewer)
        return (found.rows, found.caption, found.page,
                gr.Dropdown(choices=[curation.ANY, *fresh["annotator"]]),
                gr.Dropdown(choices=[curation.ANY, *fresh["source"]]))

    outputs = [table, caption, page, annotator, source]
    search.click(ui_browse, [*filters, page, who], outputs, api_visibility="private")
    text.submit(ui_browse, [*filters, page, who], outputs, api_visibility="private")
    return search, data_detail.build(ctx, who, table)


def _counts_panel(ctx: AppContext, who: gr.Textbox, refresh: gr.Button) -> None:
    head = ["total", "a", "b", "tie", "both_bad", "skip", "pending", "deleted"]
    by_source = gr.Dataframe(headers=["source", *head], interactive=False, elem_id="counts-source")
    by_annotator = gr.Dataframe(headers=["annotator", *head], interactive=False, elem_id="counts-annotator")
    button = gr.Button("Refresh counts", elem_id="counts-refresh")

    @user_errors
    def ui_counts(name, request: gr.Request):
        found = curation.counts(ctx.store, identity_of(ctx, request, name))
        return found["source"], found["annotator"]

    for trigger in (button.click, refresh.click):
        trigger(ui_counts, [who], [by_source, by_annotator], api_visibility="private")


def _export_panel(ctx: AppContext, who: gr.Textbox) -> list[gr.Button]:
    with gr.Row():
        fmt = gr.Radio(list(EXPORT_FORMATS), value="hf", label="Also write", elem_id="export-format")
        plain = gr.Checkbox(label="Plain strings (not messages)", elem_id="export-plain")
        arena = gr.Checkbox(label="Include arena votes", elem_id="export-arena")
        test_size = gr.Slider(0, 0.5, value=0.1, step=0.05, label="Test split", elem_id="export-test-size")
        max_length = gr.Number(value=1024, precision=0, minimum=0, label="Warn above max_length tokens",
                               elem_id="export-max-length")
        policy = gr.Dropdown(["keep_all", "majority", "drop_low_agreement"], value="keep_all",
                             label="Several votes on one pair", elem_id="export-policy")
    with gr.Row():
        repo = gr.Textbox(label="Push to hub repo (optional)", placeholder="owner/name", elem_id="export-repo")
        token = gr.Textbox(label="Hugging Face token (else HF_TOKEN)", type="password", elem_id="export-token")
        public = gr.Checkbox(label="Public repo", elem_id="export-public")
        go = gr.Button("Export snapshot", variant="primary", elem_id="export-run")
    status = gr.Markdown(elem_id="export-status")
    summary = gr.Markdown(elem_id="export-summary")
    snapshots = gr.Dataframe(headers=["id", "path", "rows", "test_rows", "sha256", "created_at"],
                             interactive=False, elem_id="snapshots")

    def count_tokens(*args):  # tokenizer work runs on the model's worker thread, like all model work
        return ctx.model.submit(truncation_report, ctx.model.tokenizer, *args, name=ctx.model.ref).result()

    @user_errors
    def ui_export(f, pl, ar, ts, ml, pol, repo_id, tok, pub, name, request: gr.Request):
        options = ExportOptions(format=f, plain=pl, include_arena=ar, test_size=float(ts),
                                max_length=int(ml) if ml else None, policy=pol)
        result = export_and_push(ctx.store, ctx.layout, options, identity_of(ctx, request, name),
                                 count_tokens=None if ctx.config.served_endpoint else count_tokens,  # no local tokenizer
                                 push_to=repo_id, token=tok or None, private=not pub)
        over = f" · {result['over_max_length']} over max_length" if "over_max_length" in result else ""
        note = (f"Snapshot **{result['snapshot']}**: {result['rows']} pairs ({result['test_rows']} in test){over}"
                + (f"\n\n⚠️ {result['push_error']}" if "push_error" in result else "")
                + (f"\n\nPushed to {result['pushed']}" if "pushed" in result else ""))
        rows = [[r[k] for k in ("id", "path", "rows", "test_rows", "sha256", "created_at")]
                for r in ctx.store.list_snapshot_records()]
        return note, _lines(export_lines(result)), rows

    go.click(ui_export, [fmt, plain, arena, test_size, max_length, policy, repo, token, public, who],
             [status, summary, snapshots], api_visibility="private")
    return [go]
