"""Serving registered LoRA adapters on the ONE loaded base model, two models per batched call.

Owns: loading each finished run's adapter into the base model in place (PEFT multi-adapter; never a
second copy of the base), and generating a pair whose rows come from different models in one
`generate` call with PEFT's mixed-batch inference (`adapter_names=[...]`, "__base__" for the base).

Invariants:
- Outside an arena call the adapter layers are disabled, so every other user of the model (the
  Annotate tab, judges) gets exactly the base model's outputs.
- Loading, enabling and disabling happen on the model's worker thread under `handle.lock`, the same
  lock generation holds, so no generation ever sees a half-switched model.
- One AdapterServer per ModelHandle (`adapter_server(handle)`), because adapters live inside the
  handle's model: two servers would wrap the same modules twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from alignui.db.runs import Run
from alignui.errors import UserError
from alignui.serving.generation import PairSettings, PairUpdate, stream_pair
from alignui.serving.loading import ModelHandle

BASE = "base"
PEFT_BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch


def peft_name(run_id: str) -> str:
    """A PEFT-safe adapter name for a run id (module keys may not contain '.'; ids are user-visible)."""
    return "arena_" + hashlib.sha1(run_id.encode()).hexdigest()[:12]


class MixedBatchModel:
    """What `stream_pair` sees as `handle.model`: the PEFT model, one adapter per batch row."""

    def __init__(self, peft_model: Any, adapter_names: list[str]):
        self.peft_model = peft_model
        self.adapter_names = adapter_names

    @property
    def device(self):
        return self.peft_model.device

    @property
    def config(self):
        return self.peft_model.get_base_model().config

    def generate(self, **kwargs):
        tuner = self.peft_model.base_model
        tuner.enable_adapter_layers()
        try:
            return self.peft_model.generate(adapter_names=self.adapter_names, **kwargs)
        finally:
            tuner.disable_adapter_layers()


class AdapterServer:
    """Adapters of finished runs, loaded lazily into the handle's base model."""

    def __init__(self, handle: ModelHandle):
        self.handle = handle
        self.peft_model: Any = None
        self.loaded: dict[str, str] = {}  # run id -> adapter path it was loaded from
        self.failed: dict[str, tuple[str, UserError]] = {}  # run id -> (adapter path, why it cannot be served)

    def _load(self, run_id: str, path: str) -> None:
        self.load_named(peft_name(run_id), path)

    def load_named(self, name: str, path: str) -> None:
        """Load the adapter at `path` as PEFT adapter `name` (on the model's worker; a decode process's child too)."""
        from peft import PeftModel

        with self.handle.lock:
            if self.peft_model is None:
                self.peft_model = PeftModel.from_pretrained(self.handle.model, path, adapter_name=name)
            else:
                if name in self.peft_model.peft_config:
                    self.peft_model.delete_adapter(name)
                self.peft_model.load_adapter(path, adapter_name=name)
            self.peft_model.eval()
            self.peft_model.base_model.disable_adapter_layers()

    def ensure(self, run: Run) -> str:
        """Load `run`'s adapter unless it already is; return its PEFT name. UserError when it cannot be served."""
        if self.handle.endpoint is not None:  # --model endpoint:NAME: there is no local base model
            from alignui.serving.remote import ADAPTERS_NOTE

            raise UserError(f"run {run.id} cannot be served: " + ADAPTERS_NOTE.format(ref=self.handle.ref))
        known = self.failed.get(run.id)
        if known and known[0] == run.adapter_path:  # a failure is remembered until the run's adapter changes
            raise known[1]
        try:
            if not run.adapter_path or not Path(run.adapter_path).is_dir():
                raise UserError(f"the adapter of run {run.id} is missing (expected at {run.adapter_path}); "
                                "retrain it or remove the run")
            if self.loaded.get(run.id) != run.adapter_path:
                try:
                    self.handle.submit(self._load, run.id, run.adapter_path).result()
                except (ValueError, RuntimeError, KeyError, OSError) as exc:
                    raise UserError(f"the adapter of run {run.id} does not fit the loaded base model "
                                    f"{self.handle.ref} ({type(exc).__name__}: {str(exc)[:200]}); serve the base "
                                    "model it was trained on") from exc
                self.loaded[run.id] = run.adapter_path
        except UserError as err:
            self.failed[run.id] = (run.adapter_path, err)
            raise
        self.failed.pop(run.id, None)
        return peft_name(run.id)

    def paths(self) -> dict[str, str]:
        """PEFT name -> the adapter directory it was loaded from, for every loaded adapter."""
        return {peft_name(run_id): path for run_id, path in dict(self.loaded).items()}

    def view(self, adapter_names: list[str]) -> ModelHandle:
        """A ModelHandle that shares the base's lock and worker but generates row i with adapter_names[i]."""
        if self.peft_model is None:
            return self.handle
        return replace(self.handle, model=MixedBatchModel(self.peft_model, adapter_names))

    def stream_two(self, messages, left: Run | None, right: Run | None, settings: PairSettings, *,
                   owner: str = "") -> Iterator[PairUpdate]:
        """Stream a pair whose side A comes from `left` and side B from `right` (None: the base model).

        The result's generations carry the model_ref of their side ('base' or the run id).
        """
        names = [self.ensure(run) if run is not None else PEFT_BASE for run in (left, right)]
        refs = [run.id if run is not None else BASE for run in (left, right)]
        for update in stream_pair(self.view(names), messages, settings, owner=owner):
            if update.result is not None:
                update = replace(update, result=tuple(replace(g, model_ref=ref) for g, ref in zip(update.result, refs)))
            yield update


def adapter_server(handle: ModelHandle) -> AdapterServer:
    """The one AdapterServer of `handle` (kept on the handle: the adapters live in its model)."""
    with handle.lock:
        if handle.adapters is None:
            handle.adapters = AdapterServer(handle)
        return handle.adapters
