"""Annotate tab: a prompt, two responses streaming side by side, verdicts by button or key.

Thin callbacks only: unpack widgets, call one alignui.annotation.workspace step,
map the View it returns onto the widgets. The annotator's name and generation
settings are remembered in the browser (gr.BrowserState); the workspace
(pair on screen, undo stack, conversation) is per session (gr.State).
Also registers the named API endpoints /generate_pair and /submit_vote with
exactly the signatures of the design's contract, plus /draw_prompt.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import replace

import gradio as gr

from alignui.annotation import workspace as flow
from alignui.annotation.pairs import stream_annotation_pair, submit_vote, user_turn
from alignui.annotation.prefs import AnnotationPrefs, browser_secret
from alignui.context import AppContext
from alignui.errors import UserError
from alignui.serving.generation import PairSettings
from alignui.team.identity import require_name
from alignui.serving.generators import Generators, PairSource, generator_choices
from alignui.annotation.pool import draw
from alignui.ui import annotate_panels as panels
from alignui.ui.annotate_keys import (ACTION_KEYS, FOCUS_EDITOR, FOCUS_EMPTY_NAME, FOCUS_EMPTY_PROMPT, VOTE_KEYS,
                                      key_hint)
from alignui.ui.annotate_keys import HEAD as KEYS_HEAD
from alignui.ui.common import Page, gpu_queue, api_errors, refuse, user_errors
from alignui.ui.signin import admission, admit_generation, identity_of
from alignui.ui.tab_events import NewestPerTab, box_left, box_when_changed, stamped
from alignui.vocab import BUTTON_LABELS

__all__ = ["build", "HEAD"]

BUTTONS = tuple(BUTTON_LABELS.items())
CSS = """
#vote-row button {font-size: 16px; min-height: 44px;}
#action-row button {font-size: 14px;}
#status {min-height: 1.6em;}
@media (max-width: 900px) { #vote-row button {font-size: 14px; padding-left: 4px; padding-right: 4px;} }
"""
#: Passed to launch(head=...) by alignui.ui.app: the keyboard shortcuts and this tab's CSS.
HEAD = KEYS_HEAD + "<style>" + CSS + "</style>"


def _as_text(messages: list[dict]) -> list[dict]:
    """Turns for the Chatbot, HTML-escaped: it renders HTML (sanitized, but an <img> would still be fetched)."""
    return [{"role": m["role"], "content": html.escape(m["content"])} for m in messages]


def _show(view: flow.View) -> tuple:
    """A View as the values of VIEW outputs: ws, text_a, text_b, prompt, status, conversation, truncate."""
    return (view.ws, view.text_a, view.text_b, view.prompt, view.status,
            gr.update(value=_as_text(view.conversation), visible=bool(view.conversation)),
            gr.update(visible=view.too_long))


def _shown(views, typed: str | None = None) -> Iterator[tuple]:
    """Views as VIEW outputs, the prompt box only when its text changes (tab_events.box_when_changed)."""
    return box_when_changed(views, _show, 3, typed)


def _layout(ctx: AppContext, name: gr.Textbox, page: Page) -> dict:
    panels.guidelines_panel(ctx, name, page.blocks)
    w: dict = {}
    with gr.Row(equal_height=True):
        w["prompt"] = gr.Textbox(label="Prompt", lines=1, max_lines=8, scale=6, elem_id="prompt",
                                 placeholder="Type a prompt and press Enter · N draws one from the pool · "
                                             "/ jumps here · Esc leaves")
        w["generate"] = gr.Button("Generate ↵", variant="primary", scale=1, min_width=110, elem_id="generate")
        name.render()
    w["conversation"] = gr.Chatbot(label="Conversation so far (the next turn is compared below)", visible=False,
                                   height=240, render_markdown=False, elem_id="conversation")
    with gr.Row(equal_height=True):
        w["text_a"] = gr.Textbox(label="Response A", lines=8, max_lines=24, interactive=False, elem_id="response-a",
                                 elem_classes="alignui-response")
        w["text_b"] = gr.Textbox(label="Response B", lines=8, max_lines=24, interactive=False, elem_id="response-b",
                                 elem_classes="alignui-response")
    with gr.Row(elem_id="vote-row"):
        w["votes"] = [gr.Button(f"{label}  {key_hint(VOTE_KEYS[verdict][0])}", elem_id=f"vote-{verdict}",
                                variant="primary" if verdict in ("a", "b") else "secondary", min_width=100)
                      for verdict, label in BUTTONS]
    w["status"] = gr.Markdown(elem_id="status")  # right under the buttons: "Saved" is seen at 1280x800
    with gr.Row(elem_id="action-row", equal_height=True):
        w["edit_on"] = gr.Checkbox(False, label=f"✎ Edit the winner before saving {key_hint(ACTION_KEYS['edit-winner'])}",
                                   elem_id="edit-winner", scale=2)
        w["continue_on"] = gr.Checkbox(False, label="↪ Continue the conversation with the winner "
                                                    f"{key_hint(ACTION_KEYS['continue-conv'])}",
                                       elem_id="continue-conv", scale=2)
        w["undo"] = gr.Button(f"↶ Undo {key_hint(ACTION_KEYS['undo'])}", size="sm", elem_id="undo", scale=1)
        w["next"] = gr.Button(f"Next prompt {key_hint(ACTION_KEYS['next-prompt'])}", size="sm",
                              elem_id="next-prompt", scale=1)
    w["truncate"] = gr.Button("Truncate and generate (keeps the end of the conversation)", visible=False,
                              size="sm", elem_id="truncate")
    with gr.Group(visible=False, elem_id="editor") as w["editor"]:
        w["edit_box"] = gr.Textbox(label="Edit the chosen response · Ctrl+Enter saves · Esc cancels", lines=6,
                                   max_lines=24, elem_id="edit-chosen")
        with gr.Row():
            w["save_edit"] = gr.Button("Save with edit  [Ctrl+Enter]", variant="primary", size="sm",
                                       elem_id="save-edit")
            w["cancel_edit"] = gr.Button("Cancel  [Esc]", size="sm", elem_id="cancel-edit")
    return w


class _AnnotateTab:
    """The tab's widgets and its thin callbacks (one object per built app, no global state)."""

    def __init__(self, ctx: AppContext, page: Page):
        self.page = page
        self.ctx = ctx
        # "multiple": a new prompt (or Next) while a pair streams runs at once and replaces it (NewestPerTab);
        # Gradio's default ("once") drops a trigger while the same event is still running
        self.gpu = dict(gpu_queue(ctx), api_visibility="private", trigger_mode="multiple")
        secret = browser_secret(ctx.store)
        self.name_state = gr.BrowserState("", storage_key="alignui-annotator", secret=secret)
        self.prefs_state = gr.BrowserState(AnnotationPrefs().to_dict(), storage_key="alignui-generation", secret=secret)
        self.ws = gr.State(flow.Workspace())
        self.verdict = gr.State("")
        self.saved = gr.State(False)  # did the last verdict click save one (else: do not auto-advance)
        self.pressed = gr.State("")  # the prompt box as it was when Enter / Generate was pressed (ui_sync_pressed)
        self.name = gr.Textbox(label="Your name", placeholder="remembered in this browser", scale=2, min_width=140,
                               elem_id="annotator", render=False)
        self.w = w = _layout(ctx, self.name, page)
        self.settings = panels.settings_panel(ctx, self.prefs_state)
        self.progress = panels.progress_panel(ctx, self.name, panels.pool_panel(ctx, self.name, self.ws, w["status"]))
        self.view_out = [self.ws, w["text_a"], w["text_b"], w["prompt"], w["status"], w["conversation"], w["truncate"]]
        self.unchanged = tuple(gr.skip() for _ in self.view_out)
        self.newest = NewestPerTab(self.unchanged)
        self.press = gr.Number(0, visible=False, elem_id="press-ticket")  # set by `stamped` as each event is sent
        self.editor_out = [w["editor"], w["edit_box"], self.verdict, w["edit_on"], w["continue_on"]]
        self.closed_editor = (gr.update(visible=False), "", "", False, False)

    def who(self, typed: str, request: gr.Request | None) -> str:
        return identity_of(self.ctx, request, typed).name

    @staticmethod
    def owned(state, request: gr.Request | None):
        """`state` with its browser session as the owner the shared decode batch admits it by when nobody is
        named (named annotators are admitted by name): two anonymous tabs take turns, not one turn between them."""
        session = getattr(request, "session_hash", None) or ""
        return replace(state, owner=f"session:{session}" if session else "")

    def generators(self) -> Generators:
        return Generators(self.ctx.model, self.ctx.store, self.ctx.endpoints)

    # -- callbacks -------------------------------------------------------------------------------
    def generating(self, truncate: bool):
        @user_errors
        def ui_generate(state, text, prefs, typed, press=0.0, request: gr.Request = None):
            admit_generation(self.ctx, request, text)
            yield from self.newest.run(request, _shown(flow.generate(
                self.ctx.store, self.ctx.model, self.owned(state, request), text, AnnotationPrefs.from_dict(prefs),
                self.ctx.rng, annotator=self.who(typed, request), truncate=truncate, generators=self.generators()),
                typed=text), press)
        return ui_generate

    @user_errors
    def ui_next(self, state, prefs, typed, press=0.0, request: gr.Request = None):
        yield from self.newest.run(request, _shown(flow.next_prompt(
            self.ctx.store, self.ctx.model, self.owned(state, request), AnnotationPrefs.from_dict(prefs), self.ctx.rng,
            annotator=self.who(typed, request), generators=self.generators(),
            admit=admission(self.ctx, request))), press)

    @user_errors
    def ui_after_vote(self, state, saved, prefs, typed, box, press=0.0, request: gr.Request = None):
        if state.pair_id or not saved:  # the editor is open, or the verdict was refused: nothing to advance
            yield self.unchanged
            return
        yield from self.newest.run(request, _shown(flow.after_vote(
            self.ctx.store, self.ctx.model, self.owned(state, request), AnnotationPrefs.from_dict(prefs), self.ctx.rng,
            annotator=self.who(typed, request), generators=self.generators(), typed=box,
            admit=admission(self.ctx, request)), typed=box), press)

    def voting(self, verdict: str):
        def ui_vote(state, typed, edit_on, continue_on, text_a, text_b, request: gr.Request):
            try:  # a name is asked for only once there is a pair (else the vote's own refusal says what is wrong)
                if state.pair_id:
                    require_name(identity_of(self.ctx, request, typed))
            except UserError as exc:  # nobody signed in and no name typed: ask for one (the name box takes focus)
                refuse(exc)
                return (*(gr.skip() for _ in self.view_out + self.editor_out), False)
            if edit_on and verdict in ("a", "b") and state.pair_id:  # open the editor; save on Ctrl+Enter
                label = f"Edit response {verdict.upper()} before saving it as the winner · Ctrl+Enter saves · Esc cancels"
                opened = (gr.update(visible=True), gr.update(value=text_a if verdict == "a" else text_b, label=label),
                          verdict, edit_on, continue_on)
                return (*(gr.skip() for _ in self.view_out), *opened, False)
            return self.saving(state, typed, verdict, continue_on, None, request)
        return ui_vote

    def saving(self, state, typed, verdict, continue_on, edited, request):
        """Save a verdict; a refusal is a warning that changes nothing (the checkboxes included) and sets
        `saved` False, so the chained auto-advance does not run."""
        try:
            identity = identity_of(self.ctx, request, typed)
            who = (require_name(identity) if state.pair_id else identity).name
            view = flow.vote(self.ctx.store, state, verdict, annotator=who, edited=edited, continue_after=continue_on)
        except UserError as exc:
            refuse(exc)
            return (*(gr.skip() for _ in self.view_out + self.editor_out), False)
        # the prompt box is left to the auto-advance chained after (flow.after_vote): set here, it lost a next prompt
        return (*box_left(_show(view), 3), *self.closed_editor, True)

    def ui_save_edit(self, state, typed, edited, verdict, continue_on, request: gr.Request):
        return self.saving(state, typed, verdict, continue_on, edited, request)

    @user_errors
    def ui_undo(self, state, typed, request: gr.Request):
        return (*_show(flow.undo(self.ctx.store, state, annotator=self.who(typed, request))), *self.closed_editor)

    def ui_load(self, remembered_name, remembered_prefs, request: gr.Request):
        """Fill in what the browser remembered; a signed-in user's name is shown, not typed."""
        identity = identity_of(self.ctx, request, panels.safe_name(remembered_name))
        name = (gr.update(value=identity.name, interactive=False, label="Signed in as") if identity.signed_in
                else remembered_name or "")
        choices = generator_choices(self.ctx.store, self.ctx.endpoints, self.ctx.served_ref,
                                    self.ctx.served_endpoint)  # no model needed
        return (name, flow.welcome(self.ctx.store), *panels.restore_settings(remembered_prefs, choices))

    # -- wiring ----------------------------------------------------------------------------------
    def ticketed(self, inputs: list) -> dict:
        """`inputs` and the press ticket after them, which `stamped` fills in as the page sends the event."""
        return dict(inputs=[*inputs, self.press], js=stamped(len(inputs)))

    def refresh_after(self, event) -> None:
        event.success(self.progress.refresh, [self.name], self.progress.outputs, api_visibility="private",
                      show_progress="hidden")

    def ui_sync_prefs(self, *values):
        """The settings as they are on screen, into the remembered state a generation reads. Every generating
        event runs this first: a page load that restores the settings can race the widgets' own change events,
        and then the remembered state could hold other values than the ones shown (seen on a busy host)."""
        try:
            return panels.prefs_of(values).to_dict()
        except UserError:  # an invalid value on screen was refused when typed: keep what was remembered
            return gr.skip()

    def ui_sync_pressed(self, *values):
        """ui_sync_prefs, and the prompt box as it was at the press, which the chained generation reads: read at
        that event's own dispatch, after this one's round trip, it held whatever was typed meanwhile (a next prompt
        begun under load was generated and stored as the prompt)."""
        return self.ui_sync_prefs(*values[:-1]), values[-1]

    def advance_after(self, event) -> None:
        """After a saved verdict: refresh the counters and make the next pair ready without a click."""
        self.refresh_after(event)
        synced = event.success(self.ui_sync_prefs, self.settings, [self.prefs_state], api_visibility="private",
                               show_progress="hidden")
        synced.then(self.ui_after_vote, outputs=self.view_out, **self.ticketed([self.ws, self.saved, self.prefs_state,
                                                                                 self.name, self.w["prompt"]]),
                    **self.gpu).then(None, js=FOCUS_EMPTY_PROMPT)

    def wire(self) -> None:
        w, ws, name, prefs = self.w, self.ws, self.name, self.prefs_state
        gen_inputs = self.ticketed([ws, self.pressed, prefs, name])
        sync = dict(fn=self.ui_sync_prefs, inputs=self.settings, outputs=[prefs], api_visibility="private",
                    show_progress="hidden", trigger_mode="multiple")  # "once" dropped an Enter while one ran
        sync_pressed = sync | dict(fn=self.ui_sync_pressed, inputs=[*self.settings, w["prompt"]],
                                   outputs=[prefs, self.pressed])
        gr.on([w["prompt"].submit, w["generate"].click], **sync_pressed).then(
            self.generating(False), outputs=self.view_out, **gen_inputs, **self.gpu)
        w["truncate"].click(**sync_pressed).then(self.generating(True), outputs=self.view_out, **gen_inputs,
                                                 **self.gpu)
        w["next"].click(**sync).then(self.ui_next, outputs=self.view_out, **self.ticketed([ws, prefs, name]),
                                     **self.gpu).then(None, js=FOCUS_EMPTY_PROMPT)
        vote_inputs = [ws, name, w["edit_on"], w["continue_on"], w["text_a"], w["text_b"]]
        for (verdict, _), button in zip(BUTTONS, w["votes"]):
            clicked = button.click(self.voting(verdict), vote_inputs, self.view_out + self.editor_out + [self.saved],
                                   api_visibility="private")
            clicked.then(None, js=FOCUS_EDITOR).then(None, js=FOCUS_EMPTY_NAME)
            self.advance_after(clicked)
        self.advance_after(w["save_edit"].click(self.ui_save_edit, [ws, name, w["edit_box"], self.verdict,
                                                                    w["continue_on"]],
                                                self.view_out + self.editor_out + [self.saved],
                                                api_visibility="private"))
        w["cancel_edit"].click(lambda: self.closed_editor, None, self.editor_out, api_visibility="private")
        self.refresh_after(w["undo"].click(self.ui_undo, [ws, name], self.view_out + self.editor_out,
                                           api_visibility="private"))
        name.change(lambda typed: typed, [name], [self.name_state], api_visibility="private")
        loaded = self.page.blocks.load(self.ui_load, [self.name_state, prefs], [name, w["status"], *self.settings],
                                         api_visibility="private")
        self.refresh_after(loaded)


def build(ctx: AppContext, page: Page) -> None:
    _AnnotateTab(ctx, page).wire()
    _register_api(ctx)


def _register_api(ctx: AppContext) -> None:
    def generators() -> Generators:
        return Generators(ctx.model, ctx.store, ctx.endpoints)

    @api_errors
    def generate_pair(prompt: str, model_a: str = "", model_b: str = "",
                      request: gr.Request = None) -> tuple[str, str, str]:
        """Generate two responses to `prompt`, side A from generator `model_a` and side B from `model_b`
        ("" = the served model; /models lists the names); returns (text_a, text_b, pair_id)."""
        identity = identity_of(ctx, request)
        admit_generation(ctx, request, prompt, identity)
        sides = PairSource.named(generators(), model_a, model_b)
        for step in stream_annotation_pair(ctx.store, ctx.model, user_turn(prompt), PairSettings(), ctx.rng,
                                           annotator=identity.name, sides=sides):
            yield step.text_a, step.text_b, (step.pair.id if step.pair else "")

    def models() -> list[str]:
        """The generator names /generate_pair takes: the served model, its adapters, the endpoints."""
        return generators().names()

    @api_errors
    def submit_vote_api(pair_id: str, verdict: str, request: gr.Request) -> str:
        """Record a verdict (a, b, tie, both_bad or skip) on a pair; returns a status line."""
        return submit_vote(ctx.store, pair_id, verdict, annotator=identity_of(ctx, request).name)

    def draw_prompt(request: gr.Request) -> str:
        """The next prompt from the pool (unannotated first); empty when none is left for this caller."""
        prompt = draw(ctx.store, identity_of(ctx, request).name, ctx.rng)
        return prompt.messages[-1]["content"] if prompt else ""

    gr.api(generate_pair, api_name="generate_pair", **gpu_queue(ctx))
    gr.api(submit_vote_api, api_name="submit_vote")
    gr.api(models, api_name="models")
    gr.api(draw_prompt, api_name="draw_prompt")
