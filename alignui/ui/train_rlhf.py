"""The Train tab's RLHF parts: the RLHF choices (shown when the method is RLHF) and the RLHF live panel.

RLHF is one action here: "Start RLHF" queues (optional SFT ->) reward model -> RL on the app's JobRunner
(alignui.training.app.rlhf_plan.start_rlhf_from_form); the RL settings come from the tab's generic form, the
earlier stages from their presets. The panel (alignui.training.app.rlhf_view) follows the selected run's pipeline:
stages, what is resident in memory, the reward model's margin histogram, live RL curves (mean reward, KL,
response length), the latest rollouts with their rewards, and the RL watch-outs.

Used by alignui/ui/train.py: `options = build_options(ctx, method)` above the Start button, then
`build_live(ctx, runner, options, snapshot, base, method, widgets, start, selected, message)`.
Thin callbacks only: each calls one alignui.training function and formats the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

import gradio as gr

from alignui.context import AppContext
from alignui.training.config import preset_names
from alignui.training.methods import get_method
from alignui.training.app.rlhf_plan import start_rlhf_from_form
from alignui.training.app.rlhf_view import RESIDENT_BEFORE, RL_CURVES, reward_model_choices, rlhf_view
from alignui.ui.common import user_errors
from alignui.ui.train_view import curve_frame
from alignui.ui.signin import identity_of

RL_TITLES = {"reward": "Mean reward (rollouts)", "kl": "KL to the reference", "length": "Response length"}
ROLLOUT_COLUMNS = ["step", "prompt", "response", "reward"]


@dataclass
class RLHFOptions:
    group: Any
    source: Any
    reward_preset: Any
    sft_first: Any
    sft_preset: Any
    go: Any


def _default(presets: list[str], device: str) -> str | None:
    wanted = "gpu" if device == "cuda" else "cpu"
    return next((p for p in presets if p.startswith(wanted)), presets[0] if presets else None)


def build_options(ctx: AppContext, method: str) -> RLHFOptions:
    """The RLHF choices; visible while the method dropdown says RLHF."""
    reward_presets = preset_names(get_method("reward").presets_path)
    sft_presets = preset_names(get_method("sft").presets_path)
    with gr.Group(visible=method == "rlhf", elem_id="rlhf-options") as group:
        gr.Markdown("**RLHF** in one go: a reward model learns the votes of this snapshot, then the policy (base + "
                    "LoRA) is trained online against it with RLOO, GRPO or PPO (the algorithm setting). The RL "
                    "settings are the ones above.")
        with gr.Row():
            source = gr.Dropdown(reward_model_choices(ctx.layout), value="new", label="Reward model", scale=3,
                                 info="train a new one first, or reuse a finished one (the arena can judge with "
                                      "it too)", elem_id="rlhf-reward-source")
            reward_preset = gr.Dropdown(reward_presets, value=_default(reward_presets, ctx.device),
                                        label="Reward-model preset", scale=2, elem_id="rlhf-reward-preset")
            sft_first = gr.Checkbox(False, label="SFT on the chosen responses first", scale=2,
                                    info="the classic first RLHF step; off by default", elem_id="rlhf-sft-first")
            sft_preset = gr.Dropdown(sft_presets, value=_default(sft_presets, ctx.device), label="SFT preset",
                                     scale=2, elem_id="rlhf-sft-preset")
        gr.Markdown(RESIDENT_BEFORE, elem_id="rlhf-memory-note")
        go = gr.Button("Start RLHF (reward model, then RL)", variant="primary", elem_id="rlhf-start")
    return RLHFOptions(group, source, reward_preset, sft_first, sft_preset, go)


def _series(plot: str) -> list[str]:
    return [label for _, label in RL_CURVES[plot]]


def build_live(ctx: AppContext, runner, options: RLHFOptions, snapshot, base, method, widgets: dict, start,
               selected: gr.State, message) -> None:
    """The RLHF live panel and the wiring of the RLHF choices (Start RLHF, method switch, refresh)."""
    with gr.Group(visible=False, elem_id="rlhf-live") as live:
        gr.Markdown("### RLHF")
        stages = gr.Markdown(elem_id="rlhf-stages")
        resident = gr.Markdown(elem_id="rlhf-resident")
        reward_summary = gr.Markdown(elem_id="rlhf-reward-summary")
        with gr.Row():
            histogram = gr.BarPlot(pd.DataFrame({"margin": [], "pairs": []}), x="margin", y="pairs", height=240,
                                   title="Reward margins, held-out pairs",
                                   elem_id="rlhf-histogram")
            plots = [gr.LinePlot(curve_frame(_series(key)), x="step", y="value", color="series", title=RL_TITLES[key],
                                 height=240, elem_id=f"rlhf-plot-{key}") for key in RL_CURVES]
        notes = gr.Markdown(elem_id="rlhf-watchouts")
        verdict = gr.Markdown(elem_id="rlhf-verdict")
        rollouts = gr.Dataframe(headers=ROLLOUT_COLUMNS, label="Latest rollouts and their rewards (reward hacking "
                                "shows here first)", wrap=True, column_widths=["7%", "25%", "56%", "12%"],
                                elem_id="rlhf-rollouts")
    seen = gr.State("")
    outputs = [live, stages, resident, reward_summary, histogram, *plots, notes, verdict, rollouts, seen, selected]
    gr.Timer(1.0).tick(lambda rid, key: refresh(ctx, runner, rid, key), [selected, seen], outputs,
                       api_visibility="private", show_progress="hidden", queue=False)
    method.change(lambda m: (gr.update(visible=m == "rlhf"), gr.update(visible=m != "rlhf"),
                             gr.update(choices=reward_model_choices(ctx.layout))),
                  method, [options.group, start, options.source], api_visibility="private")
    _wire_start(ctx, runner, options, snapshot, base, method, widgets, selected, message)


def refresh(ctx: AppContext, runner, run_id: str, seen: str):
    view = rlhf_view(ctx.layout, run_id or runner.active_run() or "")
    if view is None:
        return (gr.update(visible=False),) + (gr.skip(),) * 10 + (seen, gr.skip())
    key = f"{view.stages[-1]['run'] if view.stages else ''}:{view.n_metrics}:{len(view.histogram)}"
    fresh = key != seen  # plots are re-sent only when new metrics arrived, so they do not flicker
    curves = [curve_frame(_series(k), view.curves.get(k)) for k in RL_CURVES]
    hist = pd.DataFrame(view.histogram) if view.histogram else pd.DataFrame({"margin": [], "pairs": []})
    notes = "\n".join(f"- ⚠️ {w}" for w in view.watchouts)
    return (gr.update(visible=True), view.stage_markdown, view.resident, view.reward_summary,
            hist if fresh else gr.skip(), *[c if fresh else gr.skip() for c in curves], notes, view.verdict,
            view.rollouts, key, view.follow(run_id) if run_id else gr.skip())


def _wire_start(ctx, runner, options: RLHFOptions, snapshot, base, method, widgets, selected, message) -> None:
    names = list(widgets)
    inputs = {snapshot, base, *widgets.values(), options.source, options.reward_preset, options.sft_first,
              options.sft_preset}  # a set: Gradio passes one dict {component: value}

    @user_errors
    def ui_start(data: dict, request: gr.Request):
        plan, text = start_rlhf_from_form(
            runner, data[snapshot], data[base], {n: data[widgets[n]] for n in names}, identity_of(ctx, request),
            reward_source=data[options.source], reward_preset=data[options.reward_preset],
            sft_first=bool(data[options.sft_first]), sft_preset=data[options.sft_preset])
        return plan.stages[0][1], text  # the first stage; the panel follows the pipeline from there

    options.go.click(ui_start, inputs, [selected, message], api_visibility="private")
