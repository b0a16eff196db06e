"""The UI side of identity: turn a Gradio request (+ the typed name) into an Identity.

Owns: reading the OAuth profile / auth login from the request. Every callback
that records who did something or needs a permission calls `identity_of`.
"""

from __future__ import annotations

import gradio as gr

from alignui.context import AppContext
from alignui.identity import Identity, resolve


def identity_of(ctx: AppContext, request: gr.Request | None, typed_name: str | None = None) -> Identity:
    """The identity behind one request: OAuth profile, else auth login, else the typed name."""
    login = getattr(request, "username", None) if request is not None else None
    return resolve(login_name=login, typed_name=typed_name, admins=ctx.config_admins)
