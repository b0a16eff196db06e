"""AppContext: what a running app holds open, passed explicitly to every callback.

Owns: opening the data root (restoring the newest backup into an empty one) and the Store, starting the model loader (the model
loads in the background: alignui.serving.loader), and closing all of it in
reverse order. There is no module-level state: the UI and the CLI receive one
AppContext and hand its parts to the functions they call.

Invariants:
- `ctx.model` is the loaded ModelHandle or raises ModelNotReady (a UserError
  with the loading step and progress): callers never see a half-loaded model.
- After `close()` no thread of ours remains (the loader and the model worker are joined).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from alignui.config import AppConfig
from alignui.db import Store
from alignui.serving.endpoints import EndpointRegistry
from alignui.paths import StorageLayout
from alignui.serving.hub import HubAccess
from alignui.serving.loader import LoadStatus, ModelLoader
from alignui.serving.loading import ModelHandle, load_model
from alignui.team.limits import Limits
from alignui.team.restore import RestoreOutcome, restore_on_start

if TYPE_CHECKING:
    from alignui.training.app.runner import JobRunner


@dataclass
class AppContext:
    config: AppConfig
    layout: StorageLayout
    store: Store
    loader: ModelLoader
    rng: random.Random = field(default_factory=random.Random)
    limits: Limits = field(default_factory=Limits)
    #: Guards what is made on first use and kept on the context (the job runner).
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    runner: JobRunner | None = field(default=None, repr=False)  # see job_runner()
    endpoints: EndpointRegistry = field(default_factory=EndpointRegistry)  # --endpoint generators (issue 14)
    #: Called first by close(), last added first: what the app started beside the context (the CLI handoff
    #: file, the backup scheduler).
    closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    #: What restoring from ALIGNUI_BACKUP_REPO did on start (None: nothing to restore); the header says it.
    restore: RestoreOutcome | None = None

    @classmethod
    def open(cls, config: AppConfig, *, seed: int | None = None, log: Callable[[str], None] = print,
             wait: bool = True, load: Callable[..., ModelHandle] = load_model) -> "AppContext":
        """Open the data root and start loading the model; `wait=False` returns at once (the web app)."""
        layout = StorageLayout(config.storage).ensure()
        restore = restore_on_start(config, log=log)  # an empty root on a restarted Space: before the Store opens
        store = Store(layout.db_path)
        loader = ModelLoader(config, log=log, hub=HubAccess.of(config), load=load).start()
        ctx = cls(config=config, layout=layout, store=store, loader=loader, rng=random.Random(seed),
                  limits=Limits.from_config(config),
                  endpoints=EndpointRegistry.from_config(config), restore=restore)
        if wait:
            try:
                loader.wait()
            except BaseException:
                ctx.close()
                raise
        return ctx

    @property
    def model(self) -> ModelHandle:
        """The loaded model; raises ModelNotReady (a UserError saying the step and progress) before."""
        return self.loader.handle()

    @property
    def model_status(self) -> LoadStatus:
        return self.loader.status()

    @property
    def served_ref(self) -> str:
        """What the app serves ('demo' after a fallback); the configured model while it still loads."""
        status = self.loader.status()
        return self.model.ref if status.ready else self.config.model

    @property
    def served_endpoint(self) -> str | None:
        """The registered endpoint that is the served model (--model endpoint:NAME; no local weights), else None."""
        spec = self.config.served_endpoint
        return spec.name if spec is not None else None

    @property
    def hub(self) -> HubAccess:
        """Whether the Hub is reachable: probed once per process, then remembered."""
        return self.loader.hub

    @property
    def device(self) -> str:
        """The device the model is (or will be) on, known early in loading (for form defaults)."""
        return self.loader.device()

    @property
    def config_admins(self) -> frozenset[str]:
        """Names with the admin role (empty: nobody configured, everyone is admin)."""
        return frozenset(getattr(self.config, "admins", ()) or ())

    def job_runner(self) -> "JobRunner":
        """The one JobRunner of this app (made on first use: a CLI command never needs one)."""
        from alignui.training.app.runner import JobRunner

        with self.lock:
            if self.runner is None:  # the base model by default: what the app serves (known once loaded)
                self.runner = JobRunner(self.layout, self.store, default_base_model=lambda: self.served_ref)
            return self.runner

    def close(self) -> None:
        """Close what this context owns, users of the Store first: `closers`, the job runner's index thread, the model
        loader (a demo build in progress ends with it), then the Store (training jobs keep running; the next
        start re-attaches to them)."""
        with self.lock:
            runner, self.runner = self.runner, None
            closers, self.closers = self.closers, []
        for close in reversed(closers):
            close()
        if runner is not None:
            runner.shutdown()
        self.loader.close()
        self.store.close()
