"""Admin tab: people and roles, overlap k and gold items, agreement figures, storage warning and backups.

Thin callbacks only: each unpacks widgets, finds who is acting (identity_of),
calls one function of alignui.team.admin (which checks the permission itself) and
formats the answer. Everyone sees the tab; for annotators the controls are
read-only, and the server refuses their actions anyway (also through the
named API: /admin_set_role, /admin_set_overlap, /admin_mark_gold,
/admin_remove_votes, /admin_backup). Gold answers reach admins only: the
page load sends an annotator an empty gold table.
"""

from __future__ import annotations

import gradio as gr

from alignui.team import admin as team
from alignui.context import AppContext
from alignui.db.users import GOLD_VERDICTS, MAX_OVERLAP
from alignui.team.identity import ROLES
from alignui.team.spaces import storage_status
from alignui.ui.common import Page, api_errors
from alignui.ui.signin import admins_of, identity_of

GOLD_COLUMNS = ["pair (generations)", "right answer", "note", "marked by"]


def _status_markdown(ctx: AppContext, request: gr.Request | None) -> str:
    who = identity_of(ctx, request)
    lines = [f"**You are** {who.describe()}."]
    if not who.is_admin:
        lines.append("These controls are read-only for you: only admins can change roles, overlap, gold items, "
                     "remove votes or back up. Ask an admin to add you to ALIGNUI_ADMINS.")
    admins = admins_of(ctx)
    lines.append("**Admins:** " + (", ".join(sorted(admins)) if admins else
                                   "none configured, so everyone may do everything (fine on your own machine; "
                                   "set ALIGNUI_ADMINS before sharing the app)"))
    return "\n\n".join(lines)


def _storage_markdown(ctx: AppContext) -> str:
    status = storage_status(ctx.config)
    if status.message:
        return f"### ⚠️ Data is not persistent\n{status.message}"
    where = "persistent storage" if status.on_space else "this machine's disk"
    return f"Data root `{status.root}` on {where} (mount {status.mount})."


def _people_section(ctx: AppContext, result: gr.Markdown) -> tuple[gr.Dataframe, list[gr.Button]]:
    people = gr.Dataframe(headers=team.PEOPLE_COLUMNS, interactive=False, elem_id="admin-people", wrap=True)
    with gr.Row():
        name = gr.Textbox(label="User name", elem_id="admin-role-name", scale=2)
        role = gr.Dropdown(list(ROLES), value="annotator", label="Role", elem_id="admin-role", scale=1)
        set_role = gr.Button("Set role", elem_id="admin-set-role", scale=1)
    with gr.Row():
        spammer = gr.Textbox(label="Annotator whose votes to remove (a spammer, a test account)",
                             elem_id="admin-remove-name", scale=3)
        remove = gr.Button("Remove all their votes", variant="stop", elem_id="admin-remove-votes", scale=1)

    @api_errors  # an API endpoint too: gradio_client gets the error; show_progress hidden: no badges
    def ui_set_role(user: str, new_role: str, request: gr.Request):
        message = team.set_role(ctx.store, identity_of(ctx, request), user, new_role)
        return message, team.people(ctx.store, ctx.config_admins)

    @api_errors  # an API endpoint too: gradio_client gets the error; show_progress hidden: no badges
    def ui_remove(annotator: str, request: gr.Request):
        message = team.remove_votes(ctx.store, identity_of(ctx, request), annotator)
        return message, team.people(ctx.store, ctx.config_admins)

    set_role.click(ui_set_role, [name, role], [result, people], api_name="admin_set_role", show_progress="hidden")
    remove.click(ui_remove, [spammer], [result, people], api_name="admin_remove_votes", show_progress="hidden")
    return people, [set_role, remove]


def _overlap_section(ctx: AppContext, result: gr.Markdown) -> tuple[gr.Number, gr.Dataframe, list[gr.Button]]:
    with gr.Row():
        overlap = gr.Number(label=f"Annotators per pair (overlap k, 1-{MAX_OVERLAP})", precision=0, minimum=1,
                            maximum=MAX_OVERLAP, elem_id="admin-overlap", scale=3)
        save = gr.Button("Save overlap", elem_id="admin-save-overlap", scale=1)
    with gr.Row():
        pair = gr.Textbox(label="Pair id", elem_id="admin-gold-pair", scale=2)
        answer = gr.Dropdown(list(GOLD_VERDICTS), value="a", label="Right answer", scale=1)
        note = gr.Textbox(label="Note (why)", scale=2)
        mark = gr.Button("Mark as gold", elem_id="admin-mark-gold", scale=1)
        unmark = gr.Button("Unmark", elem_id="admin-unmark-gold", scale=1)
    gold = gr.Dataframe(headers=GOLD_COLUMNS, interactive=False, elem_id="admin-gold")

    @api_errors  # an API endpoint too: gradio_client gets the error; show_progress hidden: no badges
    def ui_overlap(k: float, request: gr.Request) -> str:
        return team.set_overlap(ctx.store, identity_of(ctx, request), k)

    @api_errors  # an API endpoint too: gradio_client gets the error; show_progress hidden: no badges
    def ui_mark(pair_id: str, verdict: str, why: str, request: gr.Request):
        identity = identity_of(ctx, request)
        return team.mark_gold(ctx.store, identity, pair_id, verdict, why), team.gold_rows(ctx.store, identity)

    @api_errors  # an API endpoint too: gradio_client gets the error; show_progress hidden: no badges
    def ui_unmark(pair_id: str, request: gr.Request):
        identity = identity_of(ctx, request)
        return team.unmark_gold(ctx.store, identity, pair_id), team.gold_rows(ctx.store, identity)

    save.click(ui_overlap, [overlap], result, api_name="admin_set_overlap", show_progress="hidden")
    mark.click(ui_mark, [pair, answer, note], [result, gold], api_name="admin_mark_gold", show_progress="hidden")
    unmark.click(ui_unmark, [pair], [result, gold], api_name="admin_unmark_gold", show_progress="hidden")
    return overlap, gold, [save, mark, unmark]


def _agreement_section(ctx: AppContext) -> gr.Button:
    with gr.Row():
        threshold = gr.Slider(0.5, 1.0, value=0.6, step=0.05, label="Show pairs where agreement is below",
                              elem_id="admin-min-agreement", scale=3)
        compute = gr.Button("Compute agreement", elem_id="admin-compute-agreement", scale=1)
    headline = gr.Markdown(elem_id="admin-agreement")
    annotators = gr.Dataframe(headers=team.ANNOTATOR_COLUMNS, interactive=False, elem_id="admin-annotators")
    disputed = gr.Dataframe(headers=team.DISPUTED_COLUMNS, interactive=False, wrap=True, elem_id="admin-disputed",
                            label="Disputed pairs (prompt and responses shown as plain text)",
                            column_widths=["10%", "24%", "27%", "27%", "7%", "5%"])

    @api_errors  # an API endpoint too: gradio_client gets the error; show_progress hidden: no badges
    def ui_agreement(min_agreement: float, request: gr.Request):
        return team.agreement_tables(ctx.store, identity_of(ctx, request), float(min_agreement))

    compute.click(ui_agreement, [threshold], [headline, annotators, disputed], api_name="agreement",
                  show_progress="hidden")
    return compute


def _backup_section(ctx: AppContext, result: gr.Markdown) -> tuple[gr.Markdown, gr.Button]:
    storage = gr.Markdown(elem_id="admin-storage")
    with gr.Row():
        repo = gr.Textbox(value=ctx.config.backup_repo or "", label="Private hub dataset (owner/name)",
                          placeholder="my-name/alignui-backup", elem_id="admin-backup-repo", scale=3)
        run = gr.Button("Back up now", elem_id="admin-backup", scale=1)

    @api_errors  # an API endpoint too: gradio_client gets the error; show_progress hidden: no badges
    def ui_backup(repo_id: str, request: gr.Request) -> str:
        return team.backup(ctx.store, ctx.config, identity_of(ctx, request), repo_id)

    run.click(ui_backup, [repo], result, api_name="admin_backup", show_progress="hidden")
    return storage, run


def build(ctx: AppContext, page: Page) -> None:
    status = gr.Markdown(elem_id="admin-status")
    result = gr.Markdown(elem_id="admin-result")
    with gr.Accordion("People and roles", open=True):
        people, people_buttons = _people_section(ctx, result)
    with gr.Accordion("Overlap and gold items", open=True):
        overlap, gold, overlap_buttons = _overlap_section(ctx, result)
    with gr.Accordion("Agreement", open=True):
        compute = _agreement_section(ctx)
    with gr.Accordion("Storage and backup", open=True):
        storage, backup_button = _backup_section(ctx, result)
    buttons = people_buttons + overlap_buttons + [backup_button, compute]

    def on_load(request: gr.Request):
        admin = identity_of(ctx, request).is_admin
        return (_status_markdown(ctx, request), team.people(ctx.store, ctx.config_admins), ctx.store.overlap_k(),
                team.gold_rows(ctx.store, identity_of(ctx, request)), _storage_markdown(ctx),
                *[gr.update(interactive=admin) for _ in buttons])

    gr.on(None, on_load, None, [status, people, overlap, gold, storage, *buttons], api_visibility="private")
