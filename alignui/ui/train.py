"""Train tab: pick a snapshot, a base model, a method and a preset, adjust the knobs, pre-flight, start.

Thin callbacks only: they unpack widgets and call one function of alignui.training (panel, runner, hub) or
alignui.data.export. The settings form is generated from the methods' config dataclasses (field help and the
seed's guidance become each widget's info line), so a new method (RLHF) shows its own knobs with no code
here. The live view of the selected run (progress, curves, watch-outs, log, verdict, samples) and the Runs
table live in alignui/ui/train_view.py.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from alignui.config import needs_local_weights
from alignui.context import AppContext
from alignui.data.snapshot import list_snapshots
from alignui.training.config import preset_names
from alignui.training.methods import available_methods, get_method
from alignui.training.app.panel import (KEY_FIELDS, FieldSpec, form_fields, method_about, preflight_from_form,
                                        preset_values, start_from_form)
from alignui.training.app.runner import job_runner
from alignui.ui import train_rlhf, train_rounds, train_view
from alignui.ui.common import Page, user_errors
from alignui.ui.signin import admin_note, admin_only, identity_of

INTRO = ("### Train an adapter\nPick the votes (a snapshot), a base model and a preset, check the pre-flight "
         "report, start. Training runs in a separate process: the app stays responsive, and a crash, cancel or "
         "out-of-memory never takes it down. A finished adapter appears in the Arena.")
TRISTATE = {None: "auto", True: "on", False: "off"}
SHARED_GROUPS = ("model", "lora", "training", "data", "run", "scale")  # TrainConfig's groups; methods add their own


def snapshot_choices(ctx: AppContext) -> list[tuple[str, str]]:
    return [(f"{r.id} ({r.manifest.get('rows', '?')} train / {r.manifest.get('test_rows', '?')} test)", r.id)
            for r in list_snapshots(ctx.layout.root)]


def widget(spec: FieldSpec, method: str):
    """One form widget for a config field (visible when the selected method has the field)."""
    common = dict(label=spec.name.replace("_", " "), info=spec.info, elem_id=f"train-{spec.name}",
                  visible=method in spec.methods, min_width=190)
    if spec.kind == "bool":
        return gr.Checkbox(value=bool(spec.default), **common)
    if spec.kind == "tristate":
        return gr.Dropdown(["auto", "on", "off"], value=TRISTATE[spec.default], **common)
    if spec.kind == "choice":
        return gr.Dropdown(list(spec.choices or ()), value=spec.default, **common)
    if spec.kind in ("int", "float"):
        return gr.Number(value=spec.default, precision=0 if spec.kind == "int" else None, **common)
    return gr.Textbox(value="" if spec.default is None else str(spec.default), **common)


def default_preset(presets: list[str], device: str) -> str | None:
    """The preset for this machine: a GPU preset on CUDA, else the CPU one (else the file's default)."""
    wanted = "gpu" if device == "cuda" else "cpu"
    return next((p for p in presets if p.startswith(wanted)), presets[0] if presets else None)


def with_default(spec: FieldSpec, values: dict[str, Any]) -> FieldSpec:
    from dataclasses import replace

    return replace(spec, default=values[spec.name]) if spec.name in values else spec


def widget_value(spec: FieldSpec, value: Any) -> Any:
    return TRISTATE[value] if spec.kind == "tristate" else value


def group_members(specs: list[FieldSpec]) -> dict[str, list[FieldSpec]]:
    """The non-key fields by group (the methods' own groups first)."""
    groups = sorted({s.group for s in specs if not s.key}, key=lambda g: (g in SHARED_GROUPS, g))
    return {g: [s for s in specs if s.group == g and not s.key] for g in groups}


def build_form(specs: list[FieldSpec], method: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Key knobs open, the rest folded by group; returns (name -> widget, group -> its column)."""
    widgets: dict[str, Any] = {}
    columns: dict[str, Any] = {}
    with gr.Accordion("Key settings", open=True, elem_id="train-key-settings"):
        with gr.Row():
            for spec in sorted([s for s in specs if s.key], key=lambda s: KEY_FIELDS.index(s.name)):
                widgets[spec.name] = widget(spec, method)
    with gr.Accordion("More settings", open=False, elem_id="train-more-settings"):
        for group, members in group_members(specs).items():
            with gr.Column(visible=any(method in s.methods for s in members)) as column:
                gr.Markdown(f"**{group}**")
                with gr.Row():
                    for spec in members:
                        widgets[spec.name] = widget(spec, method)
            columns[group] = column
    return widgets, columns


def build(ctx: AppContext, page: Page) -> None:
    runner = job_runner(ctx)
    methods = available_methods()
    specs = form_fields(methods)
    first = methods[0].name
    presets = preset_names(get_method(first).presets_path)
    chosen = default_preset(presets, ctx.device)
    specs = [with_default(s, preset_values(first, chosen)) for s in specs] if chosen else specs
    gr.Markdown(INTRO)
    note = admin_note()
    with gr.Row():
        snapshots = snapshot_choices(ctx)
        snapshot = gr.Dropdown(snapshots, value=snapshots[0][1] if snapshots else None, label="Snapshot",
                               info="the exported votes to train on", scale=3, elem_id="train-snapshot")
        refresh = gr.Button("↻", scale=0, min_width=50, elem_id="train-refresh")
        export = gr.Button("Export now", scale=1, elem_id="train-export")
        base = gr.Textbox(ctx.served_ref, label="Base model", info=_base_info(ctx), scale=3, elem_id="train-base")
        method = gr.Dropdown([(m.label, m.name) for m in methods], value=first, label="Method", scale=2,
                             elem_id="train-method")
        preset = gr.Dropdown(presets, value=chosen, label="Preset", info="fills the settings below", scale=2,
                             elem_id="train-preset")
    about = gr.Markdown(method_about(first), elem_id="train-method-about")
    method.change(method_about, method, about, api_visibility="private")
    widgets, columns = build_form(specs, first)
    rlhf = train_rlhf.build_options(ctx, first)  # RLHF's own choices, shown while the method is RLHF
    with gr.Row():
        check = gr.Button("Pre-flight check", elem_id="train-preflight")
        start = gr.Button("Start training", variant="primary", elem_id="train-start")
    message = gr.Markdown(elem_id="train-message")
    selected = gr.State("")
    train_rlhf.build_live(ctx, runner, rlhf, snapshot, base, method, widgets, start, selected, message)
    push = train_view.build(ctx, runner, selected, message)
    train_rounds.build(ctx, runner, selected)  # training in rounds: the Next round section
    _wire_setup(ctx, specs, widgets, columns, snapshot, refresh, export, method, preset)
    _wire_fresh(ctx, page, snapshot, base)
    _wire_start(ctx, runner, specs, widgets, snapshot, base, method, check, start, message, selected)
    admin_only(ctx, note, [export, start, rlhf.go, push], "train, export or push adapters")


def _base_info(ctx) -> str:
    """The base model box's hint: the served model by default; with --model endpoint:NAME, that a run needs a
    local base (the served endpoint has no weights here)."""
    spec = ctx.config.served_endpoint
    return "the served model by default" if spec is None else "⚠️ " + needs_local_weights(ctx.served_ref, spec)


def _wire_fresh(ctx, page: Page, snapshot, base) -> None:
    """Snapshot choices and the served model as they are now: on every page load and whenever the tab is
    opened (an export in the Data tab adds a snapshot); the chosen snapshot stays chosen while it exists."""
    def ui_fresh(current: str | None):
        choices = snapshot_choices(ctx)
        ids = [value for _, value in choices]
        return (gr.update(choices=choices, value=current if current in ids else (ids[0] if ids else None)),
                ctx.served_ref)

    page.blocks.load(ui_fresh, [snapshot], [snapshot, base], api_visibility="private", show_progress="hidden")
    page.tab.select(ui_fresh, [snapshot], [snapshot, base], api_visibility="private", show_progress="hidden")


def _wire_setup(ctx, specs, widgets, columns, snapshot, refresh, export, method, preset) -> None:
    names = [s.name for s in specs]
    by_name = {s.name: s for s in specs}

    def ui_refresh():
        choices = snapshot_choices(ctx)
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    refresh.click(ui_refresh, None, snapshot, api_visibility="private")

    @user_errors
    def ui_export(request: gr.Request):
        from alignui.data.export import ExportOptions, export_snapshot

        result = export_snapshot(ctx.store, ctx.layout, ExportOptions(), identity_of(ctx, request))
        return gr.update(choices=snapshot_choices(ctx), value=result.ref.id)

    export.click(ui_export, None, snapshot, api_visibility="private")

    groups = group_members(specs)

    @user_errors
    def ui_method(name: str):
        presets = preset_names(get_method(name).presets_path)
        chosen = default_preset(presets, ctx.device)
        # fill the values here too: the preset name may stay the same (cpu-demo), and then preset.change never fires
        values = preset_values(name, chosen) if chosen else {}
        return (gr.update(choices=presets, value=chosen),
                *[gr.update(visible=name in by_name[n].methods,
                            **({"value": widget_value(by_name[n], values[n])} if n in values else {})) for n in names],
                *[gr.update(visible=any(name in s.methods for s in members)) for members in groups.values()])

    method.change(ui_method, method, [preset, *[widgets[n] for n in names], *[columns[g] for g in groups]],
                  api_visibility="private")

    @user_errors
    def ui_preset(name: str | None, method_name: str):
        if not name:
            return [gr.skip() for _ in names]
        values = preset_values(method_name, name)
        return [gr.update(value=widget_value(by_name[n], values[n])) if n in values else gr.skip() for n in names]

    preset.change(ui_preset, [preset, method], [widgets[n] for n in names], api_visibility="private")


def _wire_start(ctx, runner, specs, widgets, snapshot, base, method, check, start, message, selected) -> None:
    names = [s.name for s in specs]
    inputs = {snapshot, base, method, *widgets.values()}  # a set: Gradio passes one dict {component: value}

    def form(data: dict) -> tuple[str, str, str, dict[str, Any]]:
        return data[snapshot], data[base], data[method], {n: data[widgets[n]] for n in names}

    @user_errors
    def ui_check(data: dict):
        snap, base_model, method_name, values = form(data)
        return preflight_from_form(ctx.layout.root, method_name, snap, base_model, values)

    check.click(ui_check, inputs, message, api_visibility="private")

    @user_errors
    def ui_start(data: dict, request: gr.Request):
        snap, base_model, method_name, values = form(data)
        run, text = start_from_form(runner, method_name, snap, base_model, values, identity_of(ctx, request))
        return run.id, text

    start.click(ui_start, inputs, [selected, message], api_visibility="private")
