"""Small UI helpers shared by the tabs: turning UserErrors into Gradio errors, the theme and CSS.

Owns: `user_errors`, the one place where a core UserError becomes a gr.Error
(a toast in the browser, an error with the same text for gradio_client).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import gradio as gr

from alignui.errors import UserError

#: The one Gradio concurrency group for everything that runs the model (generation, arena, judging):
#: one user cannot starve the others, and the model worker is never asked to do two things at once.
GPU_QUEUE = "gpu"

CSS = """
.alignui-header {border-bottom: 1px solid var(--border-color-primary); padding-bottom: 4px;}
.alignui-notice {color: var(--color-accent); font-weight: 600;}
.alignui-response textarea {font-size: 15px; line-height: 1.5;}
"""


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


def user_errors(fn):
    """Wrap a callback (plain or generator) so that a UserError reaches the user as a gr.Error."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except UserError as exc:
                raise gr.Error(str(exc)) from exc
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise gr.Error(str(exc)) from exc
    return wrapper


@dataclass(frozen=True)
class Page:
    """Where a tab builder runs: the whole Blocks (for page-load events) and its own gr.Tab (for select events).
    Passed in by alignui.ui.app, so no builder reaches into gradio's Context to find them."""

    blocks: gr.Blocks
    tab: gr.Tab

