"""Small UI helpers shared by the tabs: turning UserErrors into Gradio errors, the theme and CSS.

Owns: `user_errors` and `api_errors`, the one place where a core UserError
reaches the user: in the browser a warning toast that leaves every input as it
was (no red Error badges), for gradio_client a gr.Error with the same text; each
refusal is one log line, never a traceback. Also the two ways user text reaches a
gr.Markdown: `md_text` (shown exactly as typed) and `safe_markdown` (markdown
formatting kept for operator-written text such as the guidelines).

Invariant: text a user wrote never reaches the page as HTML: no element, no
<img> fetched from a remote host, no id chosen by a user. Toasts render their
message as (sanitised) HTML, so a message's '<' and '&' are sent as entities.
"""

from __future__ import annotations

import functools
import html
import inspect
from dataclasses import dataclass
import logging
import re

import gradio as gr

from alignui.errors import UserError, quoted

#: The one Gradio concurrency group for everything that runs the model (generation, arena, judging).
GPU_QUEUE = "gpu"
#: How many model events run at once with batching on: they wait in the scheduler's fair (round-robin per
#: person) queue and share decode steps (alignui.serving.scheduler), not in Gradio's FIFO queue.
BATCHED_EVENTS = 48


def gpu_queue(ctx) -> dict:
    """Concurrency settings of an event that runs the model: many at once with batching (AppConfig.batching),
    else one at a time (the model worker is then never asked to do two things at once)."""
    return dict(concurrency_id=GPU_QUEUE, concurrency_limit=BATCHED_EVENTS if ctx.config.batching else 1)

CSS = """
.alignui-header {border-bottom: 1px solid var(--border-color-primary); padding-bottom: 4px;}
#model-loading-bar {min-height: 84px !important;}  /* room for Gradio's progress bar, off the tabs */
.alignui-notice {color: var(--color-accent); font-weight: 600;}
.alignui-response textarea {font-size: 15px; line-height: 1.5;}
"""


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


_MD_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$>=:])")


def md_text(text: object) -> str:
    """`text` for a gr.Markdown, shown exactly as typed: no HTML, no markdown (links, images, headings), line
    breaks kept."""
    escaped = html.escape(str(text if text is not None else ""), quote=False)
    return _MD_PUNCTUATION.sub(r"\\\1", escaped).replace("\n", "  \n")


def safe_markdown(text: str) -> str:
    """Markdown written by an operator (guidelines): formatting kept, raw HTML shown as text, images off (an
    image would be fetched from wherever its URL points by everyone who opens the page)."""
    escaped = (text or "").replace("&", "&amp;").replace("<", "&lt;")
    return re.sub(r"!\[", r"\\![", escaped)


def _refusal_text(fn, exc: UserError) -> str:
    """A refusal's message, logged as one line (Gradio would print a traceback for each), with '<' and '&' as
    entities (toasts render HTML)."""
    message = str(exc)
    logging.getLogger("alignui").warning("refused %s: %s", getattr(fn, "__name__", "?"), quoted(message, 200))
    return message.replace("&", "&amp;").replace("<", "&lt;")


def _refused(fn, exc: UserError) -> gr.Error:
    """The gr.Error an API caller gets for a refused request."""
    return gr.Error(_refusal_text(fn, exc), print_exception=False)


def refuse(exc: UserError, fn=None):
    """Show a refusal as a warning toast and change nothing on the page: a single gr.skip() skips every
    output, so no output component turns into a red "Error" badge over the inputs (a gr.Error would)."""
    gr.Warning(_refusal_text(fn, exc))
    return gr.skip()


def _on_user_error(fn, answer):
    """`fn` (plain or generator) with a UserError turned into `answer(exc)`, returned (or yielded) in its place;
    an `answer` that raises makes the call fail instead."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except UserError as exc:
                yield answer(exc)
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            return answer(exc)
    return wrapper


def user_errors(fn):
    """Wrap a UI callback (plain or generator): a UserError becomes a warning toast and the page is left as it
    was (`refuse`). Events chained with .success() still run after a refusal: chain only what is harmless or
    checks for itself (e.g. the Annotate tab's `advance` flag). API endpoints use `api_errors`."""
    return _on_user_error(fn, lambda exc: refuse(exc, fn))


def api_errors(fn):
    """Wrap a gr.api endpoint (plain or generator): a UserError becomes a gr.Error with the same text, which
    gradio_client raises (an API call has no components to badge)."""
    def fail(exc: UserError):
        raise _refused(fn, exc) from exc
    return _on_user_error(fn, fail)


@dataclass(frozen=True)
class Page:
    """Where a tab builder runs: the whole Blocks (for page-load events) and its own gr.Tab (for select events).
    Passed in by alignui.ui.app, so no builder reaches into gradio's Context to find them."""

    blocks: gr.Blocks
    tab: gr.Tab

