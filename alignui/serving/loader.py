"""The model loads in the background: the web page answers at once and shows what is happening.

Owns: `ModelLoader`, one thread (owned and joined by the AppContext) that runs
alignui.serving.loading.load_model and records its current step and progress;
`LoadStatus`, what the page and the API show meanwhile; `ModelNotReady`, the
one-line refusal a generation gets before the model is ready.

Invariants:
- With `--model endpoint:NAME` (alignui.serving.remote) the handle is ready before torch is even imported;
  the device (for the Train tab's presets) is found afterwards.
- `handle()` never blocks: it returns the loaded model or raises a UserError
  ("the model is still loading (step, 42%) ..." or why loading failed).
- `close()` cancels a demo build in progress (its child process is killed),
  joins the thread and stops the model's worker: afterwards no thread of ours remains.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Callable

from alignui.config import AppConfig
from alignui.errors import UserError
from alignui.serving.demo_model import BuildCancelled
from alignui.serving.hub import HubAccess
from alignui.serving.loading import ModelHandle, load_model, pick_device


class ModelNotReady(UserError):
    """A generation was asked for before the model finished loading."""


@dataclass(frozen=True)
class LoadStatus:
    """Where loading stands: `fraction` is 0..1 when the step can tell (the demo build can), else None."""

    step: str = "starting"
    fraction: float | None = None
    ready: bool = False
    error: str | None = None
    started: float = 0.0
    finished: float | None = None

    @property
    def percent(self) -> str:
        return f"{self.fraction * 100:.0f}%" if self.fraction is not None else "…"

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def line(self) -> str:
        """One line for a refused generation, a status bar or a log."""
        if self.error:
            return f"the model could not be loaded: {self.error}"
        if self.ready:
            return "the model is ready"
        return f"the model is still loading ({self.step}, {self.percent}); try again in a moment"

    def as_dict(self) -> dict:
        return {"ready": self.ready, "step": self.step, "progress": self.fraction, "error": self.error,
                "elapsed_s": round(self.elapsed_s, 1)}


class ModelLoader:
    """Loads the model on its own thread; ask `status()` any time, `handle()` once ready."""

    def __init__(self, config: AppConfig, *, log: Callable[[str], None] = print, hub: HubAccess | None = None,
                 load: Callable[..., ModelHandle] = load_model):
        self.config, self.log, self.hub, self._load = config, log, hub or HubAccess.of(config), load
        self._lock = threading.Lock()
        self._status = LoadStatus(started=time.monotonic())
        self._handle: ModelHandle | None = None
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._device: str | None = None
        self._device_known = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alignui-model-load", daemon=True)

    def start(self) -> "ModelLoader":
        self._thread.start()
        return self

    def _report(self, step: str, fraction: float | None = None) -> None:
        with self._lock:
            self._status = replace(self._status, step=step, fraction=fraction)

    def _run(self) -> None:
        handle, error = None, None
        try:
            remote = self.config.served_endpoint is not None  # nothing to load: ready before torch is imported
            if not remote:
                self._report("choosing the device (importing torch)")
                self._device = pick_device(self.config.device)
                self._device_known.set()
            handle = self._load(self.config, log=self.log, progress=self._report, cancel=self._cancel, hub=self.hub)
            if remote:
                self._publish(handle, None)
                self._device = _training_device(self.config.device)
                self._device_known.set()
                return
        except BuildCancelled:
            error = "loading was cancelled because the app is closing"
        except UserError as exc:
            error = str(exc)
        except Exception as exc:  # shown on the page and to every refused generation, with the log holding the rest
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
            self.log("alignui: loading the model failed:\n" + traceback.format_exc())
        self._device_known.set()
        self._publish(handle, error)

    def _publish(self, handle: ModelHandle | None, error: str | None) -> None:
        with self._lock:
            self._handle = handle
            self._status = replace(self._status, ready=handle is not None, error=error,
                                   step="ready" if handle is not None else "failed",
                                   fraction=1.0 if handle is not None else self._status.fraction,
                                   finished=time.monotonic())
        self._done.set()
        if handle is not None:
            self.log(f"alignui: model {handle.describe()} ready after {self._status.elapsed_s:.1f} s")
        else:
            self.log(f"alignui: {self._status.line()}")

    def device(self, timeout: float = 60.0) -> str:
        """The device the model goes to, known early in loading (form defaults need it before the model)."""
        self._device_known.wait(timeout)
        return self._device or "cpu"

    def status(self) -> LoadStatus:
        with self._lock:
            return self._status

    def handle(self) -> ModelHandle:
        """The loaded model; a ModelNotReady (or, if loading failed, a UserError) otherwise."""
        with self._lock:
            if self._handle is not None:
                return self._handle
            status = self._status
        if status.error:
            raise UserError(status.line() + "; fix the cause (see the server log) and restart the app")
        raise ModelNotReady(status.line())

    def wait(self, timeout: float | None = None) -> ModelHandle:
        """Block until loading ended (tests, CLI); then as `handle()`."""
        if not self._done.wait(timeout):
            raise ModelNotReady(self.status().line())
        return self.handle()

    def close(self, timeout: float = 60.0) -> None:
        self._cancel.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._lock:
            handle = self._handle
        if handle is not None:
            handle.close()


def _training_device(preference: str) -> str:
    """Where a training run would go (the Train tab's presets) when the served model is an endpoint: the model is
    not here, so a device that is missing only changes the presets offered (a run refuses it itself)."""
    try:
        return pick_device(preference)
    except UserError:
        return "cpu"
