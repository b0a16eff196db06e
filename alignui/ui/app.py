"""The Gradio app: header, tabs, launch.

Owns: composing the tabs (one module each under alignui/ui/) into one Blocks
and launching it with theme and CSS (Gradio 6 takes them in launch()).
"""

from __future__ import annotations

import gradio as gr

from alignui.config import AppConfig
from alignui.context import AppContext
from alignui.team.identity import login_checker
from alignui.team.spaces import start_periodic_backup, storage_status
from alignui.ui import admin, annotate, arena, data, leaderboard, train
from alignui.ui.common import CSS, Page, theme
from alignui.ui.signin import sign_in_widgets

TABS = (("Annotate", annotate.build), ("Data", data.build), ("Train", train.build), ("Arena", arena.build),
        ("Leaderboard", leaderboard.build), ("Admin", admin.build),)


def header_markdown(ctx: AppContext) -> str:
    lines = [f"## alignui\n**Model:** {ctx.model.describe()} · **Data root:** `{ctx.layout.root.resolve()}`"]
    if ctx.model.notice:
        lines.append(f"> ⚠️ {ctx.model.notice}")
    storage = storage_status(ctx.config)
    if storage.message:  # loud on every tab: data would vanish on restart
        lines.append(f"> ⚠️ **Data is not persistent.** {storage.message}")
    return "\n\n".join(lines)


def build_ui(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="alignui") as demo:
        gr.Markdown(header_markdown(ctx), elem_classes="alignui-header", elem_id="header")
        sign_in_widgets(ctx)
        with gr.Tabs():
            for name, build in TABS:
                with gr.Tab(name, id=name.lower()) as tab:
                    build(ctx, Page(demo, tab))
    return demo


def launch(config: AppConfig, *, block: bool = True, quiet: bool = False, seed: int | None = None):
    """Open the context, build the UI, serve it. Returns (demo, ctx) when `block` is False."""
    print(config.describe(), flush=True)
    ctx = AppContext.open(config, seed=seed)
    print(f"alignui: model {ctx.model.describe()}", flush=True)
    demo = build_ui(ctx)
    demo.queue(default_concurrency_limit=8)
    backups = start_periodic_backup(config, ctx.store)
    demo.launch(server_name=config.host, server_port=config.port, prevent_thread_lock=not block, quiet=quiet,
                theme=theme(), css=CSS, head=annotate.HEAD, show_error=True,
                auth=login_checker(config.users), auth_message="alignui: sign in with your annotator account",
                max_file_size=int(config.max_upload_mb * 1024 * 1024))
    if block:
        if backups is not None:
            backups.stop()
        ctx.close()
    return demo, ctx
