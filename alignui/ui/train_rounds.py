"""Train tab, "Next round" section: training in rounds (pairs from the newest adapter, voted, trained on).

Thin callbacks over alignui.rounds.service: pick a finished DPO, KTO, ORPO or SimPO run, generate the next
round's pairs from its adapter (queued for annotators in Annotate), export the voted pairs as a snapshot whose
lineage names the run, and start the next run (the same method) from the run's adapter on it. Every button is
the operator's (the server refuses the actions to anyone else, alignui.team.identity.require).
"""

from __future__ import annotations

import gradio as gr

from alignui.context import AppContext
from alignui.rounds.plan import ROUND_METHOD_NAMES, SIDES, RoundOptions
from alignui.rounds.service import (export_next_round, generate_round, parent_choices, round_status,
                                    start_next_round)
from alignui.ui.common import gpu_queue, user_errors
from alignui.ui.signin import admin_note, admin_only, identity_of

HELP = (f"Iterative, on-policy training ({ROUND_METHOD_NAMES}): the chosen run's adapter writes new pairs "
        "(both sides sampled with different seeds, or adapter vs base) on pool prompts; annotators vote on them "
        "in **Annotate** (they come first on Next); the voted pairs become a snapshot whose lineage names the "
        "run; the next run (the same method) starts from the run's adapter on it (optionally mixed with the "
        "run's own snapshot).")


def build(ctx: AppContext, runner, selected: gr.State) -> None:
    with gr.Accordion("Next round (training in rounds)", open=False, elem_id="train-round"):
        gr.Markdown(HELP)
        note = admin_note()
        with gr.Row():
            # custom values allowed: runs finish after the page was built; the server checks the id (parent_run)
            parent = gr.Dropdown(parent_choices(ctx.store), label="Parent run", scale=3, elem_id="round-parent",
                                 info=f"a finished {ROUND_METHOD_NAMES} run: its adapter writes the pairs",
                                 allow_custom_value=True)
            prompts = gr.Number(64, label="Prompts", precision=0, minimum=1, maximum=2000, scale=1,
                                elem_id="round-prompts")
            sides = gr.Radio(list(SIDES), value="seeds", label="Sides", scale=2, elem_id="round-sides",
                             info="seeds: adapter twice; base: adapter vs base")
            mix = gr.Slider(0, 1, value=0, step=0.05, label="Mix in the parent's snapshot", scale=2,
                            elem_id="round-mix")
        status = gr.Markdown(elem_id="round-status")
        with gr.Row():
            generate = gr.Button("Generate next round's pairs", elem_id="round-generate")
            export = gr.Button("Export round snapshot", elem_id="round-export")
            train = gr.Button("Train next round", variant="primary", elem_id="round-train")
        message = gr.Markdown(elem_id="round-message")  # here, not at the top of the tab: next to the buttons
        snapshot = gr.State("")
    _wire(ctx, runner, parent, prompts, sides, mix, status, generate, export, train, snapshot, selected, message)
    admin_only(ctx, note, [generate, export, train], "train in rounds")


def _wire(ctx, runner, parent, prompts, sides, mix, status, generate, export, train, snapshot, selected,
          message) -> None:
    def options(n, how, share) -> RoundOptions:
        return RoundOptions(prompts=int(n or 0), sides=how, mix_old=float(share or 0))

    @user_errors
    def ui_status(pid):
        return round_status(ctx.store, ctx.layout, pid)

    @user_errors
    def ui_choices(pid):
        choices = parent_choices(ctx.store)
        return gr.update(choices=choices, value=pid if pid in choices else (choices[0] if choices else None))

    parent.focus(ui_choices, parent, parent, api_visibility="private")
    parent.change(ui_status, parent, status, api_visibility="private")

    @user_errors
    def ui_generate(pid, n, how, share, request: gr.Request, progress=gr.Progress()):
        said = generate_round(ctx.store, ctx.model, ctx.layout, pid, options(n, how, share), ctx.rng,
                              identity_of(ctx, request), progress=lambda d, t: progress((d, t), desc="pairs"))
        return said, round_status(ctx.store, ctx.layout, pid)

    generate.click(ui_generate, [parent, prompts, sides, mix], [message, status], api_visibility="private",
                   **gpu_queue(ctx))

    @user_errors
    def ui_export(pid, n, how, share, request: gr.Request):
        return export_next_round(ctx.store, ctx.layout, pid, options(n, how, share), identity_of(ctx, request))

    export.click(ui_export, [parent, prompts, sides, mix], [snapshot, message], api_visibility="private")

    @user_errors
    def ui_train(pid, snap, request: gr.Request):
        run_id = start_next_round(runner, ctx.layout, pid, snap, identity_of(ctx, request))
        return run_id, f"Started `{run_id}` from `{pid}`'s adapter on snapshot `{snap}`."

    train.click(ui_train, [parent, snapshot], [selected, message], api_visibility="private")
