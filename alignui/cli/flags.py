"""The web app's command-line flags, shared by `app.py` and `python -m alignui serve`.

Owns: the flag names and their help. What a flag means, its environment variable and its default live in
alignui.config (config_from: flag, else environment, else default), which reads the parsed namespace.
"""

from __future__ import annotations

import argparse

from alignui.config import DEMO_MODEL, DEVICES


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `app.py` and `python -m alignui serve` (defaults come from the environment)."""
    parser.add_argument("--storage", help="data root (env ALIGNUI_STORAGE; default ./storage, /data on a Space)")
    parser.add_argument("--model", help=f"hub id, local path, '{DEMO_MODEL}', or endpoint:NAME (a registered "
                        "--endpoint as the served model, no local weights) (env ALIGNUI_MODEL)")
    parser.add_argument("--host", help="bind address (env ALIGNUI_HOST / GRADIO_SERVER_NAME; default 127.0.0.1)")
    parser.add_argument("--port", help="port (env ALIGNUI_PORT / GRADIO_SERVER_PORT; default 7860)")
    parser.add_argument("--device", choices=DEVICES, help="env ALIGNUI_DEVICE; default auto")
    parser.add_argument("--load-in-4bit", action="store_true", default=None, help="4-bit base model (CUDA only)")
    parser.add_argument("--cpu-batch-parallel", action="store_true", default=None,
                        help="CPU only: one core per response of a pair in each decode step (env ALIGNUI_CPU_BATCH_PARALLEL=1)")
    parser.add_argument("--cpu-threads", metavar="N",
                        help="CPU only: threads torch runs the served model on (env ALIGNUI_CPU_THREADS; default 0: "
                             "one for the demo model, one per core for others)")
    parser.add_argument("--no-batching", action="store_true", default=None,
                        help="generate one request at a time, not in shared decode steps (env ALIGNUI_BATCHING=0)")
    parser.add_argument("--decode-process", action="store_true", default=None,
                        help="CPU only: shared decode steps in their own process (env ALIGNUI_DECODE_PROCESS=1)")
    parser.add_argument("--endpoint", action="append", metavar="NAME=BASE_URL#MODEL",
                        help="an OpenAI-compatible endpoint as a generator (repeatable; env ALIGNUI_ENDPOINTS, "
                             "comma-separated; key: ALIGNUI_ENDPOINT_API_KEY, else HF_TOKEN, else OPENAI_API_KEY)")
