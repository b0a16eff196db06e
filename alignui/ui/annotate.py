"""Annotate tab: a prompt, two responses streaming side by side, verdict buttons.

Thin callbacks only: unpack widgets, call alignui.annotation, format the answer.
Also registers the named API endpoints /generate_pair and /submit_vote with
exactly the signatures of the design's contract.
"""

from __future__ import annotations

import functools

import gradio as gr

from alignui.annotation import stream_annotation_pair, submit_vote, user_turn
from alignui.context import AppContext
from alignui.generation import PairSettings
from alignui.ui.common import GPU_QUEUE, user_errors

BUTTONS = (("a", "A is better"), ("b", "B is better"), ("tie", "Tie"), ("both_bad", "Both bad"), ("skip", "Skip"))


def _generate(ctx: AppContext, prompt: str, annotator: str | None):
    for step in stream_annotation_pair(ctx.store, ctx.model, user_turn(prompt), PairSettings(), ctx.rng,
                                       annotator=annotator or None):
        yield step.text_a, step.text_b, (step.pair.id if step.pair else "")


def build(ctx: AppContext) -> None:
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", placeholder="Ask the model something, then press Enter",
                            scale=5, autofocus=True, elem_id="prompt")
        annotator = gr.Textbox(label="Your name", placeholder="annotator", scale=1, elem_id="annotator")
    generate = gr.Button("Generate pair", variant="primary", elem_id="generate")
    with gr.Row(equal_height=True):
        text_a = gr.Textbox(label="Response A", lines=8, interactive=False, elem_id="response-a",
                            elem_classes="alignui-response")
        text_b = gr.Textbox(label="Response B", lines=8, interactive=False, elem_id="response-b",
                            elem_classes="alignui-response")
    pair_id = gr.State("")
    with gr.Row():
        buttons = [gr.Button(label, elem_id=f"vote-{verdict}") for verdict, label in BUTTONS]
    status = gr.Markdown(elem_id="status")

    @user_errors
    def ui_generate(text: str, who: str):
        for a, b, pid in _generate(ctx, text, who):
            yield a, b, pid, (f"Pair `{pid}` is ready: which response is better?" if pid else "Generating…")

    for trigger in (generate.click, prompt.submit):
        trigger(ui_generate, [prompt, annotator], [text_a, text_b, pair_id, status], api_visibility="private",
                concurrency_id=GPU_QUEUE, concurrency_limit=1)

    @user_errors
    def ui_vote(verdict: str, pid: str, who: str) -> str:
        if not pid:
            return "Generate a pair first, then vote."
        return submit_vote(ctx.store, pid, verdict, annotator=who or None)

    for (verdict, _), button in zip(BUTTONS, buttons):
        button.click(functools.partial(ui_vote, verdict), [pair_id, annotator], status, api_visibility="private")
    _register_api(ctx)


def _register_api(ctx: AppContext) -> None:
    @user_errors
    def generate_pair(prompt: str) -> tuple[str, str, str]:
        """Generate two responses to `prompt`; returns (text_a, text_b, pair_id)."""
        yield from _generate(ctx, prompt, None)

    @user_errors
    def submit_vote_api(pair_id: str, verdict: str) -> str:
        """Record a verdict (a, b, tie, both_bad or skip) on a pair; returns a status line."""
        return submit_vote(ctx.store, pair_id, verdict)

    gr.api(generate_pair, api_name="generate_pair", concurrency_id=GPU_QUEUE, concurrency_limit=1)
    gr.api(submit_vote_api, api_name="submit_vote")
