"""The side panels of the Annotate tab: guidelines, generation settings, prompt pool, progress.

Owns: their widgets and thin callbacks. Each callback unpacks widgets, calls
one core function (alignui.annotation.guidelines, alignui.annotation.prefs,
alignui.annotation.pool, alignui.annotation.stats) and formats the answer.
Generation settings live in the browser (gr.BrowserState), not on the server.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from alignui.annotation import stats
from alignui.annotation import guidelines, workspace
from alignui.annotation.prefs import AnnotationPrefs
from alignui.context import AppContext
from alignui.errors import UserError
from alignui.serving.remote import ADAPTERS_NOTE
from alignui.team.identity import clean_name
from alignui.annotation.pool import FORMATS, add_to_pool, describe_counts
from alignui.ui.common import safe_markdown, user_errors
from alignui.ui.signin import identity_of

PREF_FIELDS = ("temperature", "top_p", "max_new_tokens", "system_prompt", "split_b", "temperature_b", "auto_next",
               "model_a", "model_b")


@dataclass
class Progress:
    """The progress widgets and how to refresh them for one annotator."""

    outputs: list
    refresh: object


def guidelines_panel(ctx: AppContext, name: gr.Textbox, blocks: gr.Blocks) -> None:
    with gr.Accordion("Guidelines", open=False, elem_id="guidelines"):
        shown = gr.Markdown(elem_id="guidelines-text")
        with gr.Accordion("Edit the guidelines (operators)", open=False):
            # Locked until the page load fills it: Gradio applies a load's answer whenever it arrives (seconds
            # late on a busy server), and text typed before that was silently replaced, then saved as the old text.
            box = gr.Textbox(lines=10, max_lines=30, show_label=False, interactive=False, elem_id="guidelines-editor")
            save = gr.Button("Save guidelines", size="sm")

    @user_errors
    def ui_save(text: str, who: str, request: gr.Request):
        saved = guidelines.save(ctx.store, identity_of(ctx, request, who), text)
        gr.Info("Guidelines saved.")
        return safe_markdown(saved), saved

    # Gradio sends the value its state holds, which can lag the textarea on a busy browser (a click right after
    # typing saved the old text): the click sends what the textarea shows.
    on_screen = "(text, who) => [document.querySelector('#guidelines-editor textarea')?.value ?? text, who]"
    save.click(ui_save, [box, name], [shown, box], js=on_screen, api_visibility="private")

    def ui_load(current: str):
        text = guidelines.load(ctx.store)  # one read serves both the rendered text and the editor
        # The box already holds text only when an earlier answer filled it (it is locked until then): a later
        # page-load answer (a busy server, a reconnect) must not replace what the operator typed since.
        return safe_markdown(text), gr.update(interactive=True) if current else gr.update(value=text, interactive=True)

    blocks.load(ui_load, [box], [shown, box], api_visibility="private")


def prefs_of(values: tuple) -> AnnotationPrefs:
    """AnnotationPrefs from the settings widgets' values (in settings_panel's order)."""
    temperature, top_p, max_new, system, split_b, temperature_b, auto_next, model_a, model_b = values
    return AnnotationPrefs(temperature=temperature, top_p=top_p, max_new_tokens=max_new, system_prompt=system,
                           temperature_b=temperature_b if split_b else None, auto_next=auto_next,
                           model_a=model_a or "", model_b=model_b or "")


def _widget_values(prefs: AnnotationPrefs, choices: list[tuple[str, str]] | None = None) -> tuple:
    """Widget values for `prefs`; with `choices` the generator pickers get them (a remembered name that is
    no longer offered falls back to the served model)."""
    split = prefs.temperature_b is not None
    names = [name for _, name in choices] if choices is not None else None

    def picker(name: str):
        if names is None:
            return name
        return gr.update(choices=choices, value=name if name in names else "")

    return (prefs.temperature, prefs.top_p, prefs.max_new_tokens, prefs.system_prompt, split,
            gr.update(value=prefs.temperature_b if split else prefs.temperature, visible=split), prefs.auto_next,
            picker(prefs.model_a), picker(prefs.model_b))


def settings_panel(ctx: AppContext, prefs_state: gr.BrowserState) -> list:
    """Widgets for AnnotationPrefs; every change is validated and remembered in the browser."""
    d = AnnotationPrefs()
    longest = 2048  # the model may still be loading; a length its context cannot hold is refused with advice
    with gr.Accordion("Generation settings", open=False, elem_id="generation-settings"):
        with gr.Row():
            temperature = gr.Slider(0, 2, value=d.temperature, step=0.05, label="Temperature",
                                    info="0 = greedy", elem_id="temperature")
            top_p = gr.Slider(0.05, 1, value=d.top_p, step=0.05, label="Top-p")
            max_new = gr.Slider(1, longest, value=min(d.max_new_tokens, longest), step=1, label="Max new tokens",
                                elem_id="max-new-tokens")
        system = gr.Textbox(label="System prompt", placeholder="optional; sent before the first user turn",
                            lines=1, max_lines=6, elem_id="system-prompt")
        with gr.Row():
            model_a = gr.Dropdown([("served model", "")], value="", label="Response A from", elem_id="model-a",
                                  info=_picker_info(ctx))
            model_b = gr.Dropdown([("served model", "")], value="", label="Response B from", elem_id="model-b")
        with gr.Row():
            split_b = gr.Checkbox(False, label="Different temperature for B", elem_id="split-b")
            temperature_b = gr.Slider(0, 2, value=d.temperature, step=0.05, label="Temperature of B", visible=False)
            auto_next = gr.Checkbox(d.auto_next, label="After a verdict, draw and generate the next pool prompt",
                                    elem_id="auto-next")
        reset = gr.Button("Reset to defaults", size="sm")
    widgets = [temperature, top_p, max_new, system, split_b, temperature_b, auto_next, model_a, model_b]

    @user_errors
    def ui_remember(*values):
        prefs = prefs_of(values)
        return prefs.to_dict(), gr.update(visible=prefs.temperature_b is not None)

    gr.on([w.change for w in widgets], ui_remember, widgets, [prefs_state, temperature_b], api_visibility="private",
          trigger_mode="always_last")
    reset.click(lambda: (AnnotationPrefs().to_dict(), *_widget_values(AnnotationPrefs())), None,
                [prefs_state, *widgets], api_visibility="private")
    return widgets


def _picker_info(ctx: AppContext) -> str:
    if ctx.served_endpoint is None:
        return "the served model, an adapter or an endpoint (same model twice by default)"
    return (f"the served model ({ctx.served_ref}) or another endpoint (same model twice by default); "
            + ADAPTERS_NOTE.format(ref=ctx.served_ref))


def restore_settings(remembered: dict | None, choices: list[tuple[str, str]] | None = None) -> tuple:
    """Widget values from what the browser remembered (defaults when it holds nothing usable); `choices`
    fills the generator pickers."""
    return _widget_values(AnnotationPrefs.from_dict(remembered), choices)


def pool_panel(ctx: AppContext, name: gr.Textbox, ws: gr.State, status: gr.Markdown) -> gr.Markdown:
    with gr.Accordion("Prompt pool", open=False, elem_id="prompt-pool"):
        counts = gr.Markdown(lambda: describe_counts(ctx.store), elem_id="pool-counts")
        with gr.Row():
            paste = gr.Textbox(label="Paste prompts, one per line", lines=4, max_lines=12, scale=3,
                               elem_id="pool-paste")
            files = gr.File(label="…or upload " + ", ".join(FORMATS), file_types=list(FORMATS),
                            file_count="multiple", scale=2, elem_id="pool-upload")
        add = gr.Button("Add to pool", size="sm", elem_id="pool-add")

    @user_errors
    def ui_add(text: str, paths: list | None, who: str, state, request: gr.Request):
        result = add_to_pool(ctx.store, identity_of(ctx, request, who), text=text, files=paths or [])
        gr.Info(result.describe())
        idle = not (state.pair_id or state.streaming or state.prompt_text or state.decided)
        return "", None, describe_counts(ctx.store), workspace.welcome(ctx.store) if idle else gr.skip()

    # the welcome line said "the pool is empty" until a reload; an idle workspace gets the fresh one
    add.click(ui_add, [paste, files, name, ws], [paste, files, counts, status], api_visibility="private")
    return counts


def progress_panel(ctx: AppContext, name: gr.Textbox, pool_counts: gr.Markdown) -> Progress:
    with gr.Accordion("Progress", open=True, elem_id="progress"):
        summary = gr.Markdown(elem_id="counters")
        with gr.Row():
            plot = dict(height=220, y_lim=[0, None], min_width=240)
            verdicts = gr.BarPlot(x="verdict", y="votes", title="By verdict", sort=list(stats.VERDICT_NAMES.values()),
                                  elem_id="plot-verdicts", visible=False, **plot)
            people = gr.BarPlot(x="annotator", y="votes", title="By annotator", sort="-y", elem_id="plot-annotators",
                                visible=False, **plot)
            timeline = gr.LinePlot(x="time", y="pairs", title="Pairs over time", x_axis_format="%H:%M:%S",
                                   elem_id="plot-timeline", visible=False, **plot)
        history = gr.Dataframe(headers=stats.HISTORY_COLUMNS, label="Your last 20 verdicts", interactive=False,
                               wrap=True, max_height=360, elem_id="history")

    def refresh(who: str, request: gr.Request):
        annotator = identity_of(ctx, request, safe_name(who)).name
        timeline = stats.over_time(ctx.store)
        shown = not timeline.empty  # empty plots only draw blank axes: hide them until the first verdict
        plots = (stats.by_verdict(ctx.store), stats.by_annotator(ctx.store), timeline)
        return (stats.summary_markdown(ctx.store), *(gr.update(value=p, visible=shown) for p in plots),
                stats.history(ctx.store, annotator), describe_counts(ctx.store))

    outputs = [summary, verdicts, people, timeline, history, pool_counts]
    gr.Timer(15).tick(refresh, [name], outputs, api_visibility="private", show_progress="hidden")
    return Progress(outputs=outputs, refresh=refresh)


def safe_name(who: str | None) -> str | None:
    """A typed name that the identity check would refuse counts as no name for read-only views."""
    try:
        return clean_name(who)
    except UserError:
        return None
