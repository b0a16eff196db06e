"""The Train tab's live view and Runs table: progress with ETA, curves, watch-outs, log tail, Cancel/Resume,
verdict and samples of the selected run, every run in a table, and Push to Hub.

Thin callbacks: a one-second gr.Timer reads alignui.training.app.panel.run_view (files of the run directory)
and the runs index; buttons call the JobRunner or alignui.training.push. Plots are only re-sent when new
metrics arrived, so the page does not flicker.
"""

from __future__ import annotations

import pandas as pd

import gradio as gr

from alignui.context import AppContext
from alignui.training.push import push_adapter
from alignui.training.app.panel import CURVES, RUN_COLUMNS, RunView, run_view, runs_rows
from alignui.runs import RunDir, list_run_dirs
from alignui.ui.common import user_errors
from alignui.ui.signin import identity_of

PLOTS = (("loss", "Loss"), ("accuracy", "Reward accuracy"), ("rewards", "Margin and chosen / rejected rewards"))
SAMPLE_COLUMNS = ["prompt", "base", "adapter"]


def progress_html(view: RunView | None) -> str:
    pct = 0 if view is None else round(100 * view.fraction)
    state = "idle" if view is None else view.state
    return (f'<div class="alignui-progress" data-state="{state}" style="display:flex;gap:8px;align-items:center">'
            f'<progress id="train-progress-bar" max="100" value="{pct}" style="flex:1;height:14px"></progress>'
            f'<span>{pct}%</span></div>')


def curve_frame(names: list[str], rows: list[dict] | None = None) -> pd.DataFrame:
    """One plot's value: the run's rows plus one empty (NaN) row per series this plot can show. Gradio's
    LinePlot swaps only the data on a new value and keeps the colour scale made from its first value; an empty
    first value left every later series without a colour (lines drawn with no stroke, issue 13's bug 4), so
    every value, the first included, names every series (`names`). NaN points are not drawn."""
    slots = pd.DataFrame({"step": [float("nan")] * len(names), "value": [float("nan")] * len(names),
                          "series": names})
    frame = pd.concat([pd.DataFrame(rows), slots], ignore_index=True) if rows else slots
    return frame.astype({"step": "float64", "value": "float64", "series": "str"})


def series_of(plot: str) -> list[str]:
    return [label for _, label in CURVES[plot]]


def build(ctx: AppContext, runner, selected: gr.State, message: gr.Markdown) -> gr.Button:
    """The live view and the Runs table; returns the Push button (admins only)."""
    with gr.Group(elem_id="train-live"):
        headline = gr.Markdown("No run selected yet.", elem_id="train-headline")
        progress = gr.HTML(progress_html(None), elem_id="train-progress")
        with gr.Row():
            cancel = gr.Button("Cancel", interactive=False, elem_id="train-cancel")
            resume = gr.Button("Resume", interactive=False, elem_id="train-resume")
        with gr.Row():
            plots = [gr.LinePlot(curve_frame(series_of(key)), x="step", y="value", color="series", title=title, height=240,
                                 elem_id=f"train-plot-{key}") for key, title in PLOTS]
        notes = gr.Markdown(elem_id="train-watchouts")
        verdict = gr.Markdown(elem_id="train-verdict")
        samples = gr.Dataframe(headers=SAMPLE_COLUMNS, label="Held-out samples: base vs adapter", wrap=True,
                               visible=False, column_widths=["20%", "40%", "40%"], elem_id="train-samples")
        log = gr.Textbox(label="Log (last lines)", lines=12, max_lines=12, interactive=False, elem_id="train-log")
    gr.Markdown("### Runs")
    runs = gr.Dataframe(headers=list(RUN_COLUMNS), value=runs_rows(ctx.store.list_runs()), interactive=False,
                        wrap=True, elem_id="train-runs")
    with gr.Row():
        repo = gr.Textbox(label="Hub repo (owner/name)", scale=3, elem_id="train-push-repo")
        token = gr.Textbox(label="Hub token (optional: HF_TOKEN is used otherwise)", type="password", scale=3)
        push = gr.Button("Push adapter to Hub", scale=1, elem_id="train-push")
    seen = gr.State("")
    timer = gr.Timer(1.0)
    outputs = [headline, progress, *plots, notes, verdict, samples, log, cancel, resume, seen, runs]

    def tick(rid: str, n: str, request: gr.Request):
        return refresh(ctx, runner, rid, n, admin=identity_of(ctx, request).is_admin)

    timer.tick(tick, [selected, seen], outputs, api_visibility="private", show_progress="hidden", queue=False)
    _wire_buttons(ctx, runner, selected, message, cancel, resume, push, repo, token, runs)
    return push


def current_run(ctx: AppContext, runner, run_id: str) -> RunDir | None:
    """The selected run, else the one running, else the newest."""
    rid = run_id or runner.active_run()
    if rid:
        try:
            return RunDir.open(ctx.layout, rid)
        except Exception:  # deleted meanwhile: fall back to the newest
            pass
    found = list_run_dirs(ctx.layout)
    return found[0] if found else None


def refresh(ctx: AppContext, runner, run_id: str, seen: str, admin: bool = True):
    """The live view's outputs; Cancel and Resume stay greyed out for a non-admin (the server refuses too)."""
    table = runs_rows(ctx.store.list_runs())  # the index the runner keeps; this view only reads
    run = current_run(ctx, runner, run_id)
    if run is None:
        return (gr.skip(),) * 12 + (table,)
    queue = runner.queued()
    view = run_view(run, cancelling=runner.is_cancelling(run.id),
                    queued_behind=runner.active_run() if run.id in queue else None)
    key = f"{view.run_id}:{view.n_metrics}"  # plots are re-sent only when new metrics (or another run) arrive
    curves = [curve_frame(series_of(key), view.curves[key]) for key, _ in PLOTS]
    notes = "\n".join(f"- ⚠️ {w}" for w in ([runner.index_problem] if runner.index_problem else []) + view.watchouts)
    sample_rows = [[s.get("prompt", ""), s.get("base", ""), s.get("adapter", "")] for s in view.samples]
    adapter = f"\n\nAdapter: `{view.adapter}` (listed in the Arena)" if view.adapter else ""
    return (view.headline, progress_html(view), *[c if key != seen else gr.skip() for c in curves], notes,
            (view.verdict or "") + adapter, gr.update(value=sample_rows, visible=bool(sample_rows)), view.log_tail,
            gr.update(interactive=admin and view.can_cancel), gr.update(interactive=admin and view.can_resume), key,
            table)


def _wire_buttons(ctx, runner, selected, message, cancel, resume, push, repo, token, runs) -> None:
    def target(rid: str) -> str:
        run = current_run(ctx, runner, rid)
        return run.id if run else ""

    @user_errors
    def ui_cancel(rid: str, request: gr.Request):
        return runner.cancel(target(rid), identity_of(ctx, request))

    cancel.click(ui_cancel, selected, message, api_visibility="private")

    @user_errors
    def ui_resume(rid: str, request: gr.Request):
        run = runner.resume(target(rid), identity_of(ctx, request))
        return run.id, f"Resuming `{run.id}` from its last checkpoint."

    resume.click(ui_resume, selected, [selected, message], api_visibility="private")

    @user_errors
    def ui_push(rid: str, repo_id: str, hub_token: str, request: gr.Request):
        url = push_adapter(RunDir.open(ctx.layout, target(rid)), repo_id, identity_of(ctx, request),
                           token=hub_token or None)
        return f"Pushed to {url}"

    push.click(ui_push, [selected, repo, token], message, api_visibility="private")

    def ui_select(evt: gr.SelectData):
        row = evt.row_value if evt is not None else None
        return (row[0], gr.skip()) if row else (gr.skip(), gr.skip())

    runs.select(ui_select, None, [selected, message], api_visibility="private")
