"""AppContext: what a running app holds open, passed explicitly to every callback.

Owns: opening the data root, the Store and the model in the right order, and
closing them. There is no module-level state: the UI and the CLI receive one
AppContext and hand its parts to the functions they call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from alignui.config import AppConfig
from alignui.db import Store
from alignui.team.limits import Limits
from alignui.serving.endpoints import EndpointRegistry
from alignui.serving.loading import ModelHandle, load_model
from alignui.paths import StorageLayout


@dataclass
class AppContext:
    config: AppConfig
    layout: StorageLayout
    store: Store
    model: ModelHandle
    rng: random.Random = field(default_factory=random.Random)
    limits: Limits = field(default_factory=Limits)
    endpoints: EndpointRegistry = field(default_factory=EndpointRegistry)  # --endpoint generators (issue 14)

    @classmethod
    def open(cls, config: AppConfig, *, seed: int | None = None, log: Callable[[str], None] = print) -> "AppContext":
        layout = StorageLayout(config.storage).ensure()
        store = Store(layout.db_path)
        try:
            model = load_model(config, log=log)
        except BaseException:
            store.close()
            raise
        return cls(config=config, layout=layout, store=store, model=model, rng=random.Random(seed),
                   limits=Limits.from_config(config), endpoints=EndpointRegistry.from_config(config))

    @property
    def config_admins(self) -> frozenset[str]:
        """Names with the admin role (empty: nobody configured, everyone is admin)."""
        return frozenset(getattr(self.config, "admins", ()) or ())

    def close(self) -> None:
        self.store.close()
