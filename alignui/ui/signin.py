"""The UI side of identity: turn a Gradio request (+ the typed name) into an Identity.

Owns: reading the Hugging Face OAuth profile and the Gradio auth login from a
request, the effective admin set (configured admins plus those granted in the
Admin tab), and the sign-in widgets (a LoginButton on a Space with OAuth).
Every callback that records who did something or needs a permission calls
`identity_of(ctx, request, typed_name)` with the `gr.Request` Gradio injects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import gradio as gr

from alignui.context import AppContext
from alignui.team.identity import Identity, refusal, resolve


def _session(request: Any) -> Mapping[str, Any]:
    """The signed session cookie's contents, read the way Gradio reads it to inject gr.OAuthProfile
    (gradio.helpers._session_from_request): from the Starlette scope, never through `.session`,
    which asserts when no SessionMiddleware is installed (an app without OAuth)."""
    if request is None:
        return {}
    underlying = getattr(request, "request", None) or request
    scope = getattr(underlying, "scope", None)
    if isinstance(scope, dict):
        return scope.get("session") or {}
    return getattr(underlying, "session", None) or {}


def oauth_username(request: Any) -> str | None:
    """The Hugging Face user name of a signed-in browser session (None when not signed in or expired)."""
    info = _session(request).get("oauth_info")
    if not info or (info.get("expires_at") is not None and info["expires_at"] < time.time()):
        return None
    userinfo = info.get("userinfo") or {}
    return userinfo.get("preferred_username") or None


def admins_of(ctx: AppContext) -> frozenset[str]:
    """Configured admins (ALIGNUI_ADMINS / the Space owner) plus names given the admin role in the Admin tab."""
    return frozenset(ctx.config_admins) | ctx.store.admin_names()


def identity_of(ctx: AppContext, request: gr.Request | None, typed_name: str | None = None) -> Identity:
    """The identity behind one request: OAuth profile, else auth login, else the typed name."""
    login = getattr(request, "username", None) if request is not None else None
    return resolve(oauth_name=oauth_username(request), login_name=login, typed_name=typed_name,
                   admins=admins_of(ctx))


def admin_note() -> gr.Markdown:
    """Where `admin_only` says why some buttons are greyed out; place it at the top of the tab."""
    return gr.Markdown(visible=False, elem_classes=["admin-only-note"])


def admin_only(ctx: AppContext, note: gr.Markdown, buttons: list, what: str) -> None:
    """For a non-admin, grey out `buttons` (privileged actions: `what`, in words) on page load and say why in
    `note`. A courtesy only: the server still refuses the actions themselves (alignui.team.identity.require),
    whoever calls them and however."""
    def on_load(request: gr.Request):
        who = identity_of(ctx, request)
        text = "" if who.is_admin else f"⚠ {refusal(who, what)}."
        return [gr.update(value=text, visible=bool(text))] + [gr.update(interactive=who.is_admin)] * len(buttons)

    gr.on(None, on_load, None, [note, *buttons], api_visibility="private")


def sign_in_widgets(ctx: AppContext) -> None:
    """A 'Sign in with Hugging Face' button where OAuth is on (a Space with hf_oauth: true), and a logout
    link where Gradio's own login page is on; nothing on a local single-user install."""
    if not (ctx.config.oauth or ctx.config.users):
        return
    with gr.Row(elem_id="sign-in"):
        gr.HTML("")  # pushes the button to the right
        if ctx.config.oauth:
            gr.LoginButton(elem_id="login-button", size="sm", scale=0, min_width=220)
        else:
            gr.Button("Log out", link="/logout", size="sm", elem_id="logout-button", scale=0, min_width=120)


def admission(ctx: AppContext, request: gr.Request | None) -> Callable[[], None]:
    """admit_generation for a pool prompt, to be called by a flow just before it generates (drawing from an empty
    pool, a shared pair or a prompt typed meanwhile generate nothing and cost nothing)."""
    return lambda: admit_generation(ctx, request, None)


def admit_generation(ctx: AppContext, request: gr.Request | None, prompt: str | None,
                     identity: Identity | None = None) -> None:
    """Apply the prompt-length and per-user rate limits (ctx.limits, an alignui.team.limits.Limits) to one generation
    request; raises a UserError (shown by user_errors) when refused. Call it first in every callback or API
    function that runs the model for a user (Annotate, Arena)."""
    from alignui.team.limits import client_key

    identity = identity or identity_of(ctx, request)
    client = getattr(getattr(request, "client", None), "host", None)
    headers = dict(getattr(request, "headers", None) or {})
    key = client_key(identity, client, headers, behind_proxy=bool(ctx.config.space_id))
    ctx.limits.check_generation(key, prompt)
