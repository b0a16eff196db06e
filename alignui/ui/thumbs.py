"""Thumbs tab: one response at a time, rated 👍 (desirable) or 👎 (undesirable) by button or key, for KTO.

Thin callbacks only: unpack widgets, call one alignui.annotation.thumbs step, map the ThumbsView onto the
widgets. Generation settings (temperature, top-p, max new tokens, system prompt, auto-advance) are the ones
the Annotate tab remembers in this browser; the name comes from the sign-in, else the name the Annotate tab
remembers (a name typed here is used but not remembered: two BrowserStates on one key do not stay in step). Keys: + (or =, 1) thumbs up, - (or 2) thumbs down, S skip, N next pool
prompt, / the prompt box; they fire only while this tab is on screen (the Annotate tab's listener fires only
while its own buttons are), so the two key maps never collide.

Also registers the named API endpoints /generate_single (prompt) -> (text, item_id) and
/submit_thumb (item_id, label 'up'|'down'|'skip') -> status line, under the same identity, ownership and
rate-limit rules as /generate_pair and /submit_vote.
"""

from __future__ import annotations

import json

import gradio as gr

from alignui.annotation import thumbs as flow
from alignui.annotation.prefs import AnnotationPrefs, browser_secret
from alignui.context import AppContext
from alignui.errors import UserError
from alignui.ui.common import Page, gpu_queue, api_errors, refuse, user_errors
from alignui.ui.signin import admission, admit_generation, identity_of
from alignui.ui.tab_events import box_left, box_when_changed
from alignui.vocab import user_turn

__all__ = ["build", "HEAD"]

KEYS = {"+": "thumb-up", "=": "thumb-up", "1": "thumb-up", "-": "thumb-down", "2": "thumb-down",
        "s": "thumb-skip", "n": "thumb-next"}
HISTORY = ["when", "label", "prompt", "response", "id"]

_SCRIPT = """
(() => {
  if (window.__alignuiThumbKeys) return;
  window.__alignuiThumbKeys = true;
  const KEYS = %s;
  const shown = (el) => el && el.offsetParent !== null;
  const NOT_TEXT = ['checkbox', 'radio', 'button', 'submit', 'range', 'file', 'color'];
  const isTyping = (t) => t && t.matches && (t.isContentEditable || t.matches('textarea, select') ||
                                            (t.matches('input') && !NOT_TEXT.includes((t.type || '').toLowerCase())));
  document.addEventListener('keydown', (e) => {
    if (!shown(document.getElementById('thumb-up'))) return;  // the Thumbs tab is not on screen
    const t = e.target;
    if (isTyping(t)) {
      if (e.key === 'Escape') { t.blur(); e.preventDefault(); }
      if (e.key === 'Enter' && !e.shiftKey && t.closest && t.closest('#thumb-prompt')) { setTimeout(() => t.blur(), 0); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    if (e.key === '/') {
      const box = document.querySelector('#thumb-prompt textarea');
      if (box) { e.preventDefault(); box.focus(); }
      return;
    }
    const el = document.getElementById(KEYS[e.key.toLowerCase()] || '');
    if (shown(el) && !el.disabled) { el.click(); e.preventDefault(); }
  });
})();
"""
#: Passed to launch(head=...) by alignui.ui.app beside the Annotate tab's keys.
HEAD = "<script>" + _SCRIPT % json.dumps(KEYS) + "</script>"


def _show(view: flow.ThumbsView) -> tuple:
    """A ThumbsView as the values of the view outputs: state, response, prompt, status."""
    return view.state, view.text, view.prompt, view.status


class _ThumbsTab:
    """The tab's widgets and thin callbacks (one object per built app, no global state)."""

    def __init__(self, ctx: AppContext, page: Page):
        self.ctx, self.page = ctx, page
        self.gpu = dict(api_visibility="private", **gpu_queue(ctx))  # the one model queue (ui.common)
        secret = browser_secret(ctx.store)
        self.name_state = gr.BrowserState("", storage_key="alignui-annotator", secret=secret)  # read only
        self.prefs = gr.BrowserState(AnnotationPrefs().to_dict(), storage_key="alignui-generation", secret=secret)
        self.state = gr.State(flow.ThumbsState())
        self.saved = gr.State(False)  # did the last thumb save (else: do not auto-advance)
        gr.Markdown("One response at a time: **👍 [+]** if it is good, **👎 [-]** if not (cheaper than a pair; KTO "
                    "trains on these). Settings are the Annotate tab's. **N** draws the next pool prompt.")
        with gr.Row(equal_height=True):
            self.prompt = gr.Textbox(label="Prompt", lines=1, max_lines=8, scale=6, elem_id="thumb-prompt",
                                     placeholder="Type a prompt and press Enter · N draws one from the pool · / jumps here")
            self.generate = gr.Button("Generate ↵", variant="primary", scale=1, min_width=110, elem_id="thumb-generate")
            self.name = gr.Textbox(label="Your name", placeholder="remembered in this browser", scale=2,
                                   min_width=140, elem_id="thumb-annotator")
        self.response = gr.Textbox(label="Response", lines=8, max_lines=24, interactive=False,
                                   elem_id="thumb-response", elem_classes="alignui-response")
        with gr.Row(elem_id="thumb-row"):
            self.up = gr.Button("👍 Good  [+]", variant="primary", elem_id="thumb-up", min_width=100)
            self.down = gr.Button("👎 Bad  [-]", variant="primary", elem_id="thumb-down", min_width=100)
            self.skip = gr.Button("Skip  [S]", elem_id="thumb-skip", min_width=100)
            self.next = gr.Button("Next prompt  [N]", size="sm", elem_id="thumb-next", min_width=100)
        self.status = gr.Markdown(elem_id="thumb-status")
        self.counts = gr.Markdown(elem_id="thumb-counts")
        with gr.Accordion("Your last 20 thumbs", open=False, elem_id="thumb-history-box"):
            self.history = gr.Dataframe(headers=HISTORY, interactive=False, wrap=True, max_height=360,
                                        elem_id="thumb-history")
        self.view_out = [self.state, self.response, self.prompt, self.status]

    def who(self, typed: str, request: gr.Request | None) -> str:
        return identity_of(self.ctx, request, typed or None).name

    # -- callbacks -------------------------------------------------------------------------------
    @user_errors
    def ui_generate(self, state, text, prefs, typed, request: gr.Request):
        admit_generation(self.ctx, request, text)
        yield from box_when_changed(flow.generate(self.ctx.store, self.ctx.model, state, text,
                                                  AnnotationPrefs.from_dict(prefs), self.ctx.rng,
                                                  annotator=self.who(typed, request)), _show, 2, typed=text)

    @user_errors
    def ui_next(self, state, prefs, typed, request: gr.Request):
        yield from box_when_changed(flow.next_prompt(self.ctx.store, self.ctx.model, state,
                                                     AnnotationPrefs.from_dict(prefs), self.ctx.rng,
                                                     annotator=self.who(typed, request),
                                                     admit=admission(self.ctx, request)), _show, 2)

    def rating(self, label: str):
        def ui_thumb(state, typed, request: gr.Request):
            """Save the thumb; a refusal is a warning that changes nothing and sets `saved` False."""
            try:
                view = flow.rate(self.ctx.store, state, label, annotator=self.who(typed, request))
            except UserError as exc:
                refuse(exc)
                return (*(gr.skip() for _ in self.view_out), False)
            return (*box_left(_show(view), 2), True)  # the prompt box is left to ui_after: a prompt typed stays
        return ui_thumb

    @user_errors
    def ui_after(self, state, saved, prefs, typed, box, request: gr.Request):
        """After a saved thumb: flow.after_rating (the next pool prompt, or the prompt typed meanwhile kept)."""
        prefs = AnnotationPrefs.from_dict(prefs)
        shown = False
        if saved:
            for out in box_when_changed(flow.after_rating(self.ctx.store, self.ctx.model, state, prefs, self.ctx.rng,
                                                          annotator=self.who(typed, request), typed=box,
                                                          admit=admission(self.ctx, request)),
                                        _show, 2, typed=box):
                shown = True
                yield out
        if not shown:
            yield tuple(gr.skip() for _ in self.view_out)

    def ui_counts(self, typed, request: gr.Request):
        who = identity_of(self.ctx, request, typed or None)
        rows = self.ctx.store.ratings_by_annotator(who.name)
        table = [[r.decided_at, r.label, r.prompt[:80], r.response[:120], r.id] for r in rows.itertuples()]
        return flow.progress_markdown(self.ctx.store, who.name), gr.update(value=table, headers=HISTORY)

    def ui_load(self, remembered, request: gr.Request):
        identity = identity_of(self.ctx, request, remembered or None)
        name = (gr.update(value=identity.name, interactive=False, label="Signed in as") if identity.signed_in
                else remembered or "")
        return (name, *self.ui_counts(remembered, request))

    # -- wiring ----------------------------------------------------------------------------------
    def wire(self) -> None:
        counted = dict(fn=self.ui_counts, inputs=[self.name], outputs=[self.counts, self.history],
                       api_visibility="private", show_progress="hidden")
        gen_inputs = [self.state, self.prompt, self.prefs, self.name]
        gr.on([self.prompt.submit, self.generate.click], self.ui_generate, gen_inputs, self.view_out, **self.gpu)
        self.next.click(self.ui_next, [self.state, self.prefs, self.name], self.view_out, **self.gpu)
        for label, button in (("up", self.up), ("down", self.down), ("skip", self.skip)):
            clicked = button.click(self.rating(label), [self.state, self.name], self.view_out + [self.saved],
                                   api_visibility="private")
            clicked.then(**counted)
            clicked.then(self.ui_after, [self.state, self.saved, self.prefs, self.name, self.prompt], self.view_out,
                         **self.gpu)
        self.name.blur(**counted)  # a typed name shows that annotator's counts and history
        self.page.blocks.load(self.ui_load, [self.name_state], [self.name, self.counts, self.history],
                              api_visibility="private")


def build(ctx: AppContext, page: Page) -> None:
    _ThumbsTab(ctx, page).wire()
    _register_api(ctx)


def _register_api(ctx: AppContext) -> None:
    @api_errors
    def generate_single(prompt: str, request: gr.Request = None) -> tuple[str, str]:
        """Generate one response to `prompt` for a thumbs up/down rating; returns (text, item_id)."""
        identity = identity_of(ctx, request)
        admit_generation(ctx, request, prompt, identity)
        for step in flow.stream_single(ctx.store, ctx.model, user_turn(prompt), AnnotationPrefs(), ctx.rng,
                                       annotator=identity.name):
            yield step.text, (step.rating.id if step.rating else "")

    @api_errors
    def submit_thumb(item_id: str, label: str, request: gr.Request) -> str:
        """Rate a response from /generate_single: 'up' (desirable), 'down' (undesirable) or 'skip'."""
        return flow.submit_thumb(ctx.store, item_id, label, annotator=identity_of(ctx, request).name)

    gr.api(generate_single, api_name="generate_single", **gpu_queue(ctx))
    gr.api(submit_thumb, api_name="submit_thumb")
