"""Leaderboard tab: ratings with intervals, verdicts against the base, win-rate heatmap, automatic judges.

Thin callbacks: call alignui.arena.battle_files.arena_summary / alignui.arena.judges.judge_now, format with
leaderboard_charts. The tab fills in when it is opened (and on Refresh), not at page load, so the
page never lists the models before an arena vote. Registers /leaderboard () -> the stats summary
({"models": [...], "pairs": [...], ...}, the same as `python -m alignui stats`).
"""

from __future__ import annotations

import gradio as gr

from alignui.serving.adapters import adapter_server
from alignui.arena.battle_files import arena_summary
from alignui.context import AppContext
from alignui.team.identity import require
from alignui.arena.judges import JUDGE_KINDS, JudgeSpec, judge_now
from alignui.ui import leaderboard_charts as charts
from alignui.ui.common import Page, gpu_queue, api_errors, user_errors
from alignui.ui.signin import admin_note, admin_only, identity_of


def _judge_panel(ctx: AppContext):
    with gr.Accordion("Automatic judge: a quick estimate before humans vote", open=False, elem_id="lb-judge"):
        note = admin_note()
        with gr.Row():
            kind = gr.Radio([(label, key) for key, label in JUDGE_KINDS.items()], value="endpoint", label="Judge",
                            elem_id="lb-judge-kind")
            n = gr.Slider(1, 200, value=20, step=1, label="Held-out prompts to judge", elem_id="lb-judge-n")
        with gr.Row():
            url = gr.Textbox(label="Endpoint URL (admins)", placeholder="http://host:8000/v1 (or ALIGNUI_JUDGE_URL)",
                             elem_id="lb-judge-url")
            model = gr.Textbox(label="Judge model", placeholder="e.g. gpt-4o-mini (or ALIGNUI_JUDGE_MODEL)",
                               elem_id="lb-judge-model")
            key = gr.Textbox(label="API key", type="password", placeholder="or ALIGNUI_JUDGE_API_KEY / OPENAI_API_KEY",
                             elem_id="lb-judge-key")
        with gr.Row():
            batch = gr.Button("Judge N held-out prompts now", variant="primary", elem_id="lb-judge-batch")
            voted = gr.Button("Judge the voted battles (agreement)", elem_id="lb-judge-voted")
        report = gr.Markdown(elem_id="lb-judge-report")
    admin_only(ctx, note, [batch, voted], "run the automatic judge")
    return kind, n, url, model, key, batch, voted, report


def build(ctx: AppContext, page: Page) -> None:
    with gr.Column(elem_id="leaderboard-tab"):
        with gr.Row():
            verdicts = gr.Markdown("Open this tab or press Refresh to compute the leaderboard.", elem_id="lb-verdicts")
            rounds = gr.Number(1000, label="Bootstrap rounds", precision=0, minimum=0, maximum=20000, scale=0,
                               min_width=150, elem_id="lb-rounds")
            refresh = gr.Button("Refresh", scale=0, min_width=110, elem_id="lb-refresh")
        ratings = gr.Dataframe(headers=charts.RATING_COLUMNS, interactive=False, wrap=True, elem_id="lb-ratings",
                               label="Ratings (Bradley-Terry, Elo scale) · mean length in tokens · LC = length-controlled")
        with gr.Row():
            bars = gr.Plot(label="Ratings", elem_id="lb-bars")
            heat = gr.Plot(label="Win rates", elem_id="lb-heatmap")
        pairs = gr.Dataframe(headers=charts.PAIR_COLUMNS, interactive=False, wrap=True, label="Every pair that met",
                             elem_id="lb-pairs")
        kind, n, url, model, key, batch, voted, report = _judge_panel(ctx)
    outputs = [verdicts, ratings, bars, heat, pairs]

    @user_errors
    def ui_refresh(boot):
        summary = arena_summary(ctx.store, bootstrap=int(boot or 0))
        return (charts.verdicts_markdown(summary), charts.ratings_table(summary), charts.ratings_figure(summary),
                charts.heatmap_figure(summary), charts.pairs_table(summary))

    refresh.click(ui_refresh, [rounds], outputs, api_visibility="private")
    page.tab.select(ui_refresh, [rounds], outputs, api_visibility="private")

    def judge_callback(what: str):
        @user_errors
        def ui_judge(how, count, typed_url, typed_model, typed_key, request: gr.Request, progress=gr.Progress()):
            # a batch runs up to 2 x 200 generations plus the judge's: past any per-user rate limit, so admins only
            # (this also covers pointing the server at a judge URL of one's choice)
            require(identity_of(ctx, request), "run_judges")
            spec = JudgeSpec(how, typed_url or "", typed_model or "", typed_key or "")
            out = judge_now(ctx.store, adapter_server(ctx.model), spec, int(count), ctx.rng, what=what,
                            progress=lambda done, total: progress((done, total), desc="judging"))
            return charts.judge_markdown(out)
        return ui_judge

    for button, what in ((batch, "heldout"), (voted, "voted")):
        button.click(judge_callback(what), [kind, n, url, model, key], report, api_visibility="private",
                     **gpu_queue(ctx))

    @api_errors
    def leaderboard() -> dict:
        """The arena's stats summary: {"models": [...], "pairs": [...], "verdicts": [...], ...}."""
        return arena_summary(ctx.store, bootstrap=1000)

    gr.api(leaderboard, api_name="leaderboard")
