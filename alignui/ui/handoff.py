"""The app's side of the CLI handoff: the API-only endpoint /cli_handoff.

Owns: registering /cli_handoff (command, options as JSON, token) -> the command's JSON summary. It runs
alignui.data.commands.run_handed on the app's Store, which checks the token before anything else; a wrong
or missing token, like every other refusal, is one line (gr.Error) and runs nothing. The handoff file
itself is written and removed by alignui.ui.app (it needs the port the server got).
"""

from __future__ import annotations

import json

import gradio as gr

from alignui.context import AppContext
from alignui.data.commands import run_handed
from alignui.team.handoff import Handoff
from alignui.ui.common import api_errors


def build(ctx: AppContext, handoff: Handoff) -> None:
    @api_errors
    def cli_handoff(command: str, options: str, token: str) -> str:
        """Run `python -m alignui export|import|stats` for the command line on this machine (token required)."""
        return json.dumps(run_handed(handoff, ctx.store, ctx.layout, command, options, token), default=str)

    gr.api(cli_handoff, api_name="cli_handoff")
