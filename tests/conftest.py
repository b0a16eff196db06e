"""Shared fixtures: real parts only (a DuckDB file, the demo model, a Gradio server, headless Chromium).

- `demo_model_dir`: the demo model, built once in the session's per-machine cache (ALIGNUI_CACHE_DIR = a
  directory under pytest's cache dir; the build is deterministic, so a cached copy is the same model).
- `storage`: a fresh data root (the demo model stays in the cache, as in the app).
- `config` / `ctx`: an AppConfig / AppContext on that root.
- `server`: the app served in-process on a free localhost port; `client`: gradio_client on it.
- `browser` / `page`: Playwright driving Debian's /usr/bin/chromium headless.
"""

from __future__ import annotations

import contextlib
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from alignui.config import AppConfig  # noqa: E402
from alignui.serving.demo_model import ensure_demo_model  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "tests" / "screenshots"


def pytest_collection_modifyitems(config, items):
    """GPU tests skip (with the reason shown) where CUDA is missing; nothing else skips."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none is visible on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what: str, timeout: float = 600.0):
    """Poll `condition` every 0.2 s until it returns something truthy (returned), else fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def job_runner(storage: Path, train_rows: int, test_rows: int):
    """A JobRunner on `storage` (demo base model) with a snapshot 'closer' of that many pairs; cancels its jobs
    and closes the database on exit."""
    from alignui.db import Store
    from alignui.paths import StorageLayout
    from alignui.training.app.runner import JobRunner
    from alignui.training.synthetic import closer_snapshot

    closer_snapshot(storage, "closer", train_rows=train_rows, test_rows=test_rows)
    store = Store(StorageLayout(storage).ensure().db_path)
    runner = JobRunner(StorageLayout(storage), store, default_base_model="demo", poll_s=0.2, kill_grace_s=60)
    try:
        yield runner
    finally:
        runner.shutdown(cancel=True)
        store.close()


@pytest.fixture
def layout(tmp_path):
    """An empty data root (no demo model): for tests of storage, import and export only."""
    from alignui.paths import StorageLayout

    return StorageLayout(tmp_path / "storage").ensure()


@pytest.fixture
def store(layout):
    from alignui.db import Store

    with Store(layout.db_path) as s:
        yield s


def wait_for_port(port: int, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing answered on port {port} within {timeout} s")


def pytest_configure(config):
    """One per-machine cache for the whole test session, as the app has (ALIGNUI_CACHE_DIR, read by AppConfig
    here and by every `python -m alignui` subprocess): pytest's cache dir of this checkout, so the demo model is
    built once and the user's own ~/.cache/alignui is never touched (hermetic)."""
    cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider: a cache beside the tests then
    path = Path(cache.mkdir("alignui-cache")) if cache is not None else REPO / ".pytest_cache" / "d" / "alignui-cache"
    os.environ["ALIGNUI_CACHE_DIR"] = str(path)


def model_status(url: str, auth: tuple[str, str] | None = None) -> dict:
    """The app's /model_status answer (the port answers before the model is loaded); `auth` where logins are on."""
    from gradio_client import Client

    return Client(url, auth=auth, verbose=False).predict(api_name="/model_status")


def wait_for_model(url: str, timeout: float = 300.0, proc: subprocess.Popen | None = None,
                   auth: tuple[str, str] | None = None) -> dict:
    def ready():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        status = model_status(url, auth)
        if status["error"]:
            raise RuntimeError(f"the model did not load: {status['error']}")
        return status if status["ready"] else None

    return wait_for(ready, "the model to load", timeout)


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """The demo model in the session's cache, where the app, `train` and every test find it."""
    return ensure_demo_model(AppConfig().demo_model_dir, log=lambda msg: None)


@pytest.fixture
def storage(tmp_path, demo_model_dir) -> Path:
    """A fresh data root; the demo model is not copied into it (it lives in the per-machine cache)."""
    return tmp_path / "storage"


@pytest.fixture
def config(storage) -> AppConfig:
    return AppConfig(storage=storage, model="demo", port=free_port(), offline=True)


@pytest.fixture
def ctx(config):
    from alignui.context import AppContext

    context = AppContext.open(config, seed=0, log=lambda msg: None)
    yield context
    context.close()


@dataclass
class Served:
    url: str
    ctx: object
    demo: object


@contextlib.contextmanager
def served(config, **changes):
    """The real app launched on `config` with `changes` (accounts, admins, limits, ...) on its free port, the model
    loaded; closed afterwards. The one way every server fixture starts the app."""
    from alignui.ui.app import launch

    app_config = replace(config, **changes)
    demo, context = launch(app_config, block=False, quiet=True, seed=0)
    try:
        context.loader.wait()
        yield Served(url=f"http://127.0.0.1:{app_config.port}/", ctx=context, demo=demo)
    finally:
        demo.close()
        context.close()


@pytest.fixture
def server(config):
    with served(config) as app:
        yield app


def slowed_load(gate, fraction: float = 0.4):
    """A model load for `launch(load=...)`/AppContext.open that reports a demo-build step at `fraction`, holds
    until `gate` is set (or the app closes), then loads the real demo model: a slow first start, on demand."""
    from alignui.serving.demo_model import BuildCancelled
    from alignui.serving.loading import load_model

    def load(config, *, log, progress, cancel, hub):
        progress("building the demo model (once per machine): pre-training on the bundled corpus", fraction)
        while not gate.is_set():
            if cancel.wait(0.05):
                raise BuildCancelled("the demo model build was cancelled")
        return load_model(config, log=log, progress=progress, cancel=cancel, hub=hub)
    return load


@pytest.fixture
def slow_server(config):
    """The app served while its model is still 'building' (slowed_load); `.gate.set()` lets loading finish."""
    import threading

    from alignui.ui.app import launch

    gate = threading.Event()
    demo, context = launch(config, block=False, quiet=True, seed=0, load=slowed_load(gate))
    served = Served(url=f"http://127.0.0.1:{config.port}/", ctx=context, demo=demo)
    served.gate = gate
    yield served
    gate.set()
    demo.close()
    context.close()


@pytest.fixture
def client(server):
    from gradio_client import Client

    return Client(server.url, verbose=False)


class ServerProcess:
    """`python -m alignui serve` in a subprocess, for tests that restart or kill the server."""

    def __init__(self, storage: Path, port: int | None = None):
        self.storage, self.port, self.proc = storage, port or free_port(), None
        self.log = storage.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, auth: tuple[str, str] | None = None) -> "ServerProcess":
        """Start and wait until the model is loaded (`auth`: an account to ask with, when ALIGNUI_USERS is set)."""
        cmd = [sys.executable, "-m", "alignui", "serve", "--storage", str(self.storage), "--model", "demo",
               "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        wait_for_port(self.port, proc=self.proc)
        wait_for_model(self.url, proc=self.proc, auth=auth)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture
def server_process(storage):
    servers: list[ServerProcess] = []

    def make() -> ServerProcess:
        servers.append(ServerProcess(storage, servers[-1].port if servers else None))
        return servers[-1]

    yield make
    for s in servers:
        s.stop(kill=True)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run ./scripts/install-test-deps.sh (installs Debian's chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    p = context.new_page()
    request.node.browser_console = console = []
    p.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    p.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    yield p
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """When a browser test fails, its report says what the page showed (toasts, status line, console) and
    where a screenshot of it is: a flaky failure on CI is then diagnosable from the log alone."""
    report = yield
    page = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and page is not None:
        with contextlib.suppress(Exception):
            shot = screenshot(page, f"failed-{item.name}")
            toasts = page.evaluate("() => [...document.querySelectorAll('.toast-body')].map(t => t.innerText)")
            status = page.evaluate("() => document.querySelector('#status')?.innerText ?? null")
            console = getattr(item, "browser_console", [])[-20:]
            report.sections.append(("browser at failure", "\n".join(
                [f"screenshot: {shot}", f"toasts: {toasts}", f"status: {status}", "console:", *console])))
    return report


def screenshot(page, name: str) -> Path:
    """Save a screenshot under tests/screenshots/ (ignored by git except the ones the README shows)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def reward_storage(tmp_path_factory, demo_model_dir):
    """RLHF stage 1, once per session: a data root holding a closer-pairs snapshot 'closer' (chosen = the answer
    ending with demo_corpus.POLITE_CLOSER, rejected = the same answer without it; 110 held-out questions never
    trained on) and a reward model trained on it by `python -m alignui train reward --preset cpu-demo`.
    Returns (storage, the command's JSON summary)."""
    import json

    from alignui.training.synthetic import closer_snapshot

    storage = tmp_path_factory.mktemp("rlhf") / "storage"
    closer_snapshot(storage, "closer", train_rows=200, test_rows=40, held_out=110, seed=0)
    cmd = [sys.executable, "-m", "alignui", "train", "reward", "--storage", str(storage), "--snapshot", "closer",
           "--preset", "cpu-demo"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    return storage, json.loads(out.stdout.strip().splitlines()[-1])
