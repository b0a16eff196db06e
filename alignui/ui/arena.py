"""Arena tab: a prompt, two anonymous models streaming side by side, one vote, then the reveal.

Thin callbacks: unpack widgets, call one alignui.arena.battle function, format the answer. Blindness: no
element id, label, choice or value on this tab names a model before the vote (the battle id in the
session state is opaque); the reveal (the line below and the panels' headers) is written only by the vote
callback, and Next battle puts the blind labels back. With fewer than two models the tab says so up front. Registers the named API
endpoints /arena_battle (prompt) -> (text_a, text_b, battle_id) and /arena_vote (battle_id, verdict)
-> "model_a vs model_b".
"""

from __future__ import annotations

import html

import gradio as gr

from alignui.serving.remote import ADAPTERS_NOTE
from alignui.serving.adapters import adapter_server
from alignui.arena.battle import MODES, ArenaSettings, draw_heldout_prompt, play, readiness, vote
from alignui.context import AppContext
from alignui.ui.common import Page, gpu_queue, api_errors, user_errors
from alignui.ui.signin import admit_generation, identity_of
from alignui.vocab import ARENA_VERDICTS, BUTTON_LABELS

BUTTONS = tuple((v, BUTTON_LABELS[v]) for v in ARENA_VERDICTS)
INTRO = ("### Blind arena\nTwo models answer the same prompt; you do not know which is which. Vote for the better "
         "answer and the names are revealed. Leave the prompt empty (or press *Draw*) to use a held-out prompt "
         "that no training run has seen.")
ASK = "Which answer is better? Your vote reveals the models."
#: The panels' labels during a battle: the same for every battle, so they name no model.
BLIND = ("Model A", "Model B")
FOCUS_PROMPT = "() => { setTimeout(() => document.querySelector('#arena-prompt textarea')?.focus(), 100); }"


def _buttons(active: bool) -> list:
    return [gr.update(interactive=active) for _ in BUTTONS]


def _question(text: str) -> str:
    """The prompt being judged, shown above the answers (escaped: it is user or dataset text)."""
    return f"**Prompt being judged:** {html.escape(text)}" if text else ""


def _endpoint_note(ctx: AppContext) -> str:
    """With --model endpoint:NAME, 'base' is that endpoint and no adapter can be a contestant: say so."""
    if not ctx.served_endpoint:
        return ""
    return "\n\nℹ️ Here 'base' is the served endpoint; " + ADAPTERS_NOTE.format(ref=ctx.served_ref) + "."


def build(ctx: AppContext, page: Page) -> None:
    def server():  # the model loads in the background: ask for it when a battle starts
        return adapter_server(ctx.model)

    with gr.Column(elem_id="arena-tab"):
        gr.Markdown(INTRO + _endpoint_note(ctx))
        notice = gr.Markdown(visible=False, elem_id="arena-notice")  # "nothing to compare yet", up front
        with gr.Row(equal_height=True):
            prompt = gr.Textbox(label="Prompt", placeholder="Type a prompt, or leave empty for a held-out one",
                                scale=6, lines=1, max_lines=6, elem_id="arena-prompt")
            draw = gr.Button("Draw", scale=1, min_width=90, elem_id="arena-draw")
            go = gr.Button("Battle", variant="primary", scale=1, min_width=110, elem_id="arena-go")
        mode = gr.Dropdown([(label, key) for key, label in MODES.items()], value="base_vs_newest",
                           label="Who meets whom", elem_id="arena-mode")
        question = gr.Markdown(elem_id="arena-question")
        with gr.Column(elem_id="arena-battle"), gr.Row(equal_height=True):
            text_a = gr.Textbox(label=BLIND[0], lines=8, max_lines=24, interactive=False, elem_id="arena-a",
                                elem_classes="alignui-response")
            text_b = gr.Textbox(label=BLIND[1], lines=8, max_lines=24, interactive=False, elem_id="arena-b",
                                elem_classes="alignui-response")
        with gr.Row(elem_id="arena-votes"):
            buttons = [gr.Button(label, interactive=False, elem_id=f"arena-vote-{v}") for v, label in BUTTONS]
        reveal = gr.Markdown(elem_id="arena-reveal")
        again = gr.Button("Next battle", visible=False, variant="primary", elem_id="arena-next")
    battle_id = gr.State("")
    drawn_id = gr.State("")

    @user_errors
    def ui_draw():
        drawn = draw_heldout_prompt(ctx.store, ctx.rng)
        return drawn.last_user_text, drawn.id

    draw.click(ui_draw, None, [prompt, drawn_id], api_visibility="private")

    @user_errors
    def ui_battle(text: str, how: str, drawn: str, request: gr.Request):
        identity = identity_of(ctx, request)
        admit_generation(ctx, request, text, identity)
        who, models = identity.name, server()
        for step in play(ctx.store, models, text, ctx.rng, settings=ArenaSettings(mode=how or "base_vs_newest"),
                         drawn_id=drawn or None, annotator=who, endpoints=ctx.endpoints):
            done = bool(step.battle_id)
            yield (gr.update(value=step.text_a, label=BLIND[0]), gr.update(value=step.text_b, label=BLIND[1]),
                   step.battle_id, ASK if done else "Generating both answers…", _question(step.question),
                   gr.update(visible=False), *_buttons(done))

    for trigger in (go.click, prompt.submit):
        trigger(ui_battle, [prompt, mode, drawn_id], [text_a, text_b, battle_id, reveal, question, again, *buttons],
                api_visibility="private", **gpu_queue(ctx))

    _wire_votes(ctx, buttons, battle_id, [reveal, battle_id, text_a, text_b, again, *buttons])
    _wire_next(again, [text_a, text_b, prompt, drawn_id, reveal, question, battle_id, again, *buttons])
    _wire_notice(ctx, page, notice)
    _register_api(ctx, server)


def _wire_votes(ctx: AppContext, buttons: list, battle_id: gr.State, outputs: list) -> None:
    """One vote per battle; the answer reveals the models in the line below and in the panels' headers
    (`outputs`: reveal, battle id, both panels, Next battle, the vote buttons)."""
    def vote_for(verdict: str):
        @user_errors
        def ui_vote(bid: str, request: gr.Request):
            if not bid:
                return ("Start a battle first, then vote.", bid, gr.skip(), gr.skip(), gr.skip(), *_buttons(False))
            shown = vote(ctx.store, bid, verdict, annotator=identity_of(ctx, request).name)
            named = (gr.update(label=f"Model A: {shown.model_a}"), gr.update(label=f"Model B: {shown.model_b}"))
            return (shown.markdown, "", *named, gr.update(visible=True), *_buttons(False))
        return ui_vote

    for (verdict, _), button in zip(BUTTONS, buttons):
        button.click(vote_for(verdict), [battle_id], outputs, api_visibility="private")


def _wire_next(again: gr.Button, board: list) -> None:
    """Next battle: a clean board (`board`: both panels, prompt, drawn id, reveal, question, battle id, the
    button itself, the vote buttons), blind labels again, the prompt box focused."""
    def ui_next():
        return (gr.update(value="", label=BLIND[0]), gr.update(value="", label=BLIND[1]), "", "", "", "", "",
                gr.update(visible=False), *_buttons(False))

    again.click(ui_next, None, board, api_visibility="private").then(None, js=FOCUS_PROMPT)


def _wire_notice(ctx: AppContext, page: Page, notice: gr.Markdown) -> None:
    """'Nothing to compare yet', said when the page loads and whenever the tab is opened."""
    def ui_notice():
        text = readiness(ctx.store, ctx.endpoints)
        return gr.update(value=f"⚠️ {text}" if text else "", visible=bool(text))

    gr.on([page.blocks.load, page.tab.select], ui_notice, None, notice, api_visibility="private",
          show_progress="hidden")


def _register_api(ctx: AppContext, server) -> None:
    @api_errors
    def arena_battle(prompt: str, request: gr.Request) -> tuple[str, str, str]:
        """A blind battle on `prompt` (empty: a held-out prompt); returns (text_a, text_b, battle_id)."""
        identity = identity_of(ctx, request)
        admit_generation(ctx, request, prompt, identity)
        for step in play(ctx.store, server(), prompt, ctx.rng, annotator=identity.name, endpoints=ctx.endpoints):
            yield step.text_a, step.text_b, step.battle_id

    @api_errors
    def arena_vote(battle_id: str, verdict: str, request: gr.Request) -> str:
        """Vote a, b, tie or both_bad on a battle, once; returns the revealed "model_a vs model_b"."""
        return vote(ctx.store, battle_id, verdict, annotator=identity_of(ctx, request).name).text

    gr.api(arena_battle, api_name="arena_battle", **gpu_queue(ctx))
    gr.api(arena_vote, api_name="arena_vote")
