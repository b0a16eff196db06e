"""Small UI helpers shared by the tabs: turning UserErrors into Gradio errors, the theme and CSS.

Owns: `user_errors`, the one place where a core UserError becomes a gr.Error
(a toast in the browser, an error with the same text for gradio_client), and
the two ways user text reaches a gr.Markdown: `md_text` (shown exactly as
typed) and `safe_markdown` (markdown formatting kept for operator-written text
such as the guidelines).

Invariant: text a user wrote never reaches the page as HTML: no element, no
<img> fetched from a remote host, no id chosen by a user. Toasts render their
message as (sanitised) HTML, so a message's '<' and '&' are sent as entities.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import re

import gradio as gr

from alignui.errors import UserError, quoted

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


def _refused(fn, exc: UserError) -> gr.Error:
    """The gr.Error for a refused request, logged as one line (Gradio would print a traceback for each)."""
    message = str(exc)
    logging.getLogger("alignui").warning("refused %s: %s", fn.__name__, quoted(message, 200))
    return gr.Error(message.replace("&", "&amp;").replace("<", "&lt;"), print_exception=False)


def user_errors(fn):
    """Wrap a callback (plain or generator) so that a UserError reaches the user as a gr.Error."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except UserError as exc:
                raise _refused(fn, exc) from exc
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise _refused(fn, exc) from exc
    return wrapper
