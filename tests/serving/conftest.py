"""OpenAI-compatible servers for the endpoint tests: real HTTP, real streaming.

- `openai_server` (session): `transformers serve` (HF's own OpenAI-compatible server, pip
  `transformers[serving]`) in a subprocess on a copy of the demo model, on a free localhost port.
- `long_openai_server` (function): the same on a copy whose end-of-sequence id is the pad id, which the
  model never samples, so every answer runs to max_tokens (~128 tokens, seconds): a kill lands mid-stream.
- `stub_server` (function): a MINIMAL STUB written here (stdlib http.server), used only for the answers
  `transformers serve` cannot give: HTTP 401 for a wrong key, a non-OpenAI body, a stream cut without a
  finish_reason, and a record of the Authorization header each request carried.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import free_port, wait_for


@dataclass
class OpenAIServer:
    model_dir: Path
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return str(self.model_dir)  # transformers serve names a local model by the path it was given

    def spec(self, name: str = "local") -> str:
        return f"{name}={self.base_url}#{self.model}"

    def start(self) -> "OpenAIServer":
        cmd = ["transformers", "serve", str(self.model_dir), "--host", "127.0.0.1", "--port", str(self.port),
               "--device", "cpu", "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                     env={**os.environ, "HF_HUB_OFFLINE": "1"})
        wait_for(self._healthy, f"transformers serve on port {self.port} (log: {self.log})", timeout=180)
        return self

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"transformers serve exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def never_ending_copy(src: Path, dst: Path) -> Path:
    """The demo model with eos = the pad id (never sampled): answers always run to the token limit."""
    shutil.copytree(src, dst)
    for name in ("config.json", "generation_config.json"):
        data = json.loads((dst / name).read_text())
        data["eos_token_id"] = data.get("pad_token_id", 0)
        (dst / name).write_text(json.dumps(data))
    return dst


@pytest.fixture(scope="session")
def openai_server(tmp_path_factory, demo_model_dir):
    root = tmp_path_factory.mktemp("openai")
    server = OpenAIServer(Path(shutil.copytree(demo_model_dir, root / "demo")), root / "serve.log").start()
    yield server
    server.kill()


@pytest.fixture
def long_openai_server(tmp_path, demo_model_dir):
    server = OpenAIServer(never_ending_copy(demo_model_dir, tmp_path / "never-ending"), tmp_path / "serve.log")
    yield server.start()
    server.kill()


@dataclass
class Stub:
    """What the stub answers (`mode`) and the Authorization header of every request it got."""

    mode: str = "ok"
    key: str | None = None
    seen_auth: list = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    body = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


def _handler(stub: Stub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            auth = self.headers.get("authorization")
            stub.seen_auth.append(auth)
            if stub.key is not None and auth != f"Bearer {stub.key}":
                return self._send(401, b'{"error": {"message": "bad key ' + (auth or "").encode() + b'"}}')
            if stub.mode == "html":
                return self._send(200, b"<html><body>Welcome to nginx!</body></html>", "text/html")
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            self.wfile.write(_chunk("Hello") + _chunk(" there"))
            if stub.mode == "ok":
                self.wfile.write(_chunk(None, "stop") + b"data: [DONE]\n\n")
            self.wfile.flush()  # mode "cut": the connection closes with no finish_reason

        def _send(self, status: int, body: bytes, kind: str = "application/json"):
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def stub_server():
    stub = Stub()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield stub
    httpd.shutdown()
    httpd.server_close()
