"""Small UI helpers shared by the tabs: turning UserErrors into Gradio errors, the theme and CSS.

Owns: `user_errors` and `api_errors`, the one place where a core UserError
reaches the user: in the browser a warning toast that leaves every input as it
was (no red Error badges), for gradio_client a gr.Error with the same text.
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
#model-loading-bar {min-height: 84px !important;}  /* room for Gradio's progress bar, off the tabs */
.alignui-notice {color: var(--color-accent); font-weight: 600;}
.alignui-response textarea {font-size: 15px; line-height: 1.5;}
"""


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


def refuse(exc: UserError):
    """Show a refusal as a warning toast and change nothing on the page: a single gr.skip() skips every
    output, so no output component turns into a red "Error" badge over the inputs (a gr.Error would)."""
    gr.Warning(str(exc))
    return gr.skip()


def user_errors(fn):
    """Wrap a UI callback (plain or generator): a UserError becomes a warning toast and the page is left as it
    was (`refuse`). Events chained with .success() still run after a refusal: chain only what is harmless or
    checks for itself (e.g. the Annotate tab's `advance` flag). API endpoints use `api_errors`."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except UserError as exc:
                yield refuse(exc)
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            return refuse(exc)
    return wrapper


def api_errors(fn):
    """Wrap a gr.api endpoint (plain or generator): a UserError becomes a gr.Error with the same text, which
    gradio_client raises (an API call has no components to badge)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except UserError as exc:
                raise gr.Error(str(exc), print_exception=False) from exc
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
    return wrapper


@dataclass(frozen=True)
class Page:
    """Where a tab builder runs: the whole Blocks (for page-load events) and its own gr.Tab (for select events).
    Passed in by alignui.ui.app, so no builder reaches into gradio's Context to find them."""

    blocks: gr.Blocks
    tab: gr.Tab

