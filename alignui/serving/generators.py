"""Generators by name: the served model, its LoRA adapters and the OpenAI-compatible endpoints, and a pair
whose two sides may come from any two of them.

Owns: the names `/models` lists (the served model's name first, then every finished adapter newest
first, then the endpoints), resolving a name ("" = the served model) to a `Generator`, and
`Generators.stream_pair`, which streams side A from one generator and side B from another.

Invariants:
- Two in-process sides (the model, adapters) share one batched `generate` call, as before; a side on
  an endpoint streams over HTTP beside it, each side in its own thread, merged into PairUpdates.
- A failure on either side stops the other side (the endpoint stream is closed, the local rows stop at
  the next step), discards its text and raises; the result (both NewGenerations) exists only when
  both sides finished, so callers that save on the result save nothing.
- Each NewGeneration's model_ref is its generator's name ('base' in the arena for the served model),
  and its params say the generator's kind and settings (an endpoint's URL and model, never its key).
- When the served model is an endpoint (--model endpoint:NAME, alignui.serving.remote), '' resolves to
  that endpoint (named 'endpoint:NAME'), its registry NAME means the same, and no adapter is offered.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

from alignui.db import Store
from alignui.db.records import Messages
from alignui.db.runs import Run
from alignui.errors import UserError
from alignui.serving.adapters import BASE, PEFT_BASE, adapter_server
from alignui.serving.endpoints import EndpointRegistry, SideUpdate
from alignui.serving.endpoints import Endpoint
from alignui.serving.generation import PairSettings, PairUpdate, SamplingSettings, stream_rows
from alignui.serving.loading import ModelHandle
from alignui.serving.remote import ADAPTERS_NOTE

SERVED = ""  # the name that always means the served model


@dataclass(frozen=True)
class Generator:
    """One source of responses. kind: 'model' (the served base), 'adapter' (a run's LoRA) or 'endpoint'."""

    name: str
    kind: str
    run: Run | None = None
    endpoint: Endpoint | None = None

    @property
    def local(self) -> bool:
        return self.kind != "endpoint"

    def record(self) -> dict:
        if self.endpoint is not None:
            return self.endpoint.record()
        return {"kind": self.kind, "name": self.name}


def generator_choices(store: Store, endpoints: EndpointRegistry, served_name: str,
                      served_endpoint: str | None = None) -> list[tuple[str, str]]:
    """The picker's (label, name) list; needs no loaded model (a page may open while the model still loads).
    `served_endpoint`: the endpoint that is the served model (--model endpoint:NAME): no adapters then (no local
    base to apply them to), and that endpoint only once, as the served model."""
    adapters = [] if served_endpoint else [(f"{run.id} (adapter)", run.id) for run in store.list_adapters()]
    remote = [(f"{name} (endpoint: {endpoints.get(name).spec.model})", name) for name in endpoints.names
              if name != served_endpoint]
    return [(f"{served_name} (served model)", SERVED)] + adapters + remote


@dataclass(frozen=True)
class Generators:
    """Everything that can answer a prompt in this app. `base_name` is what the served model is stored as."""

    handle: ModelHandle
    store: Store
    endpoints: EndpointRegistry
    base_name: str | None = None  # None: the handle's ref (annotation); the arena passes 'base'

    @property
    def served_name(self) -> str:
        return self.base_name or self.handle.ref

    def names(self) -> list[str]:
        """The served model's name, the finished adapters (newest first), the endpoints."""
        return [self.served_name] + [name for _, name in self.choices()[1:]]

    def choices(self) -> list[tuple[str, str]]:
        """(label, name) for a picker: the served model as '', then adapters, then endpoints, each labelled."""
        return generator_choices(self.store, self.endpoints, self.served_name, self._served_endpoint())

    def _served_endpoint(self) -> str | None:
        """The name of the endpoint that is the served model (--model endpoint:NAME), else None."""
        return self.handle.endpoint.name if self.handle.endpoint is not None else None

    def _served(self) -> Generator:
        """The served model as a generator: in-process, or the endpoint that is the served model."""
        if self.handle.endpoint is not None:
            return Generator(self.served_name, "endpoint", endpoint=self.handle.endpoint)
        return Generator(self.served_name, "model")

    def resolve(self, name: str | None) -> Generator:
        """A generator by name ('' or 'base' or the served model's name: the served model); UserError if unknown."""
        name = (name or "").strip()
        if name in (SERVED, BASE, self.handle.ref, self.served_name) or name == self._served_endpoint():
            return self._served()
        endpoint = self.endpoints.get(name)
        if endpoint is not None:
            return Generator(name, "endpoint", endpoint=endpoint)
        runs = {} if self.handle.endpoint is not None else {run.id: run for run in self.store.list_adapters()}
        if name in runs:
            return Generator(name, "adapter", run=runs[name])
        note = "; " + ADAPTERS_NOTE.format(ref=self.handle.ref) if self.handle.endpoint is not None else ""
        raise UserError(f"unknown generator {name[:80]!r}: use one of {self.names()} (the /models API lists them; "
                        f"'' is the served model){note}")

    def stream_pair(self, messages: Messages, a: Generator, b: Generator, settings: PairSettings, *,
                    truncate: bool = False, owner: str = "") -> Iterator[PairUpdate]:
        """Side A from `a`, side B from `b`; the last update carries both NewGenerations. `owner`: who the pair is
        for (fair admission into the shared decode batch)."""
        if a.local and b.local:
            yield from self._local_pair(messages, a, b, settings, truncate, owner)
            return
        cancel = threading.Event()
        sides = [self._side(messages, gen, side, settings.seed, label, cancel, truncate, owner)
                 for gen, side, label in zip((a, b), settings.sides, "ab")]
        yield from merge_sides(sides, cancel)

    def _local_pair(self, messages, a: Generator, b: Generator, settings: PairSettings, truncate: bool,
                    owner: str = "") -> Iterator[PairUpdate]:
        handle = self.handle
        if a.run is not None or b.run is not None:
            server = adapter_server(self.handle)
            handle = server.view([server.ensure(g.run) if g.run is not None else PEFT_BASE for g in (a, b)])
        for texts, done, gens in stream_rows(handle, messages, list(settings.sides), settings.seed,
                                             truncate=truncate, owner=owner):
            if gens is not None:
                gens = tuple(_as(g, gen) for g, gen in zip(gens, (a, b)))
            yield PairUpdate(texts[0], texts[1], done, result=gens)

    def _side(self, messages, gen: Generator, side: SamplingSettings, seed: int, label: str,
              cancel: threading.Event, truncate: bool, owner: str = "") -> Iterator[SideUpdate]:
        """One side alone: an endpoint's stream, or one in-process row (the model or an adapter)."""
        if gen.endpoint is not None:
            yield from _endpoint_side(gen, messages, side, seed, label, cancel)
            return
        handle = self.handle
        if gen.run is not None:
            server = adapter_server(self.handle)
            handle = server.view([server.ensure(gen.run)])
        for texts, _, gens in stream_rows(handle, messages, [side], seed, truncate=truncate, labels=label,
                                          cancel=cancel, owner=owner):
            yield SideUpdate(texts[0], _as(gens[0], gen) if gens else None)


def _endpoint_side(gen: Generator, messages, side: SamplingSettings, seed: int, label: str,
                   cancel: threading.Event) -> Iterator[SideUpdate]:
    """An endpoint's stream, its generation stored under the generator's name (the served endpoint is
    'endpoint:NAME', or 'base' in the arena; a picked endpoint keeps its NAME)."""
    for update in gen.endpoint.stream(messages, side, seed, label=label, cancel=cancel):
        yield update if update.generation is None else replace(
            update, generation=replace(update.generation, model_ref=gen.name))


def _as(generation, gen: Generator):
    """The generation recorded under its generator's name, with the generator's kind in its params."""
    return replace(generation, model_ref=gen.name, params={**generation.params, "generator": gen.record()})


def merge_sides(sides: list[Iterator[SideUpdate]], cancel: threading.Event) -> Iterator[PairUpdate]:
    """Run each side's stream in its own thread and yield PairUpdates as either side moves.

    The first failure sets `cancel` (the other side stops) and is raised here; leaving early (the consumer
    closed this generator) sets `cancel` too.
    """
    updates: queue.Queue = queue.Queue()

    def pump(i: int, side: Iterator[SideUpdate]) -> None:
        try:
            for update in side:
                updates.put((i, update, None))
                if cancel.is_set():
                    break
        except BaseException as exc:  # handed to the consuming thread
            updates.put((i, None, exc))
        finally:
            updates.put((i, None, StopIteration()))
            close = getattr(side, "close", None)
            if close is not None:
                close()

    threads = [threading.Thread(target=pump, args=(i, s), daemon=True, name=f"alignui-side-{'ab'[i]}")
               for i, s in enumerate(sides)]
    for t in threads:
        t.start()
    texts, results, running = ["", ""], [None, None], 2
    try:
        while running:
            i, update, exc = updates.get()
            if isinstance(exc, StopIteration):
                running -= 1
                continue
            if exc is not None:
                raise exc
            texts[i] = update.text
            results[i] = update.generation or results[i]
            yield PairUpdate(texts[0], texts[1], (results[0] is not None, results[1] is not None))
    finally:
        cancel.set()
    if None in results:  # a side ended without a generation (cancelled): nothing to save
        raise UserError("the pair was stopped before both sides finished; nothing was saved")
    yield PairUpdate(texts[0], texts[1], (True, True), result=tuple(results))


@dataclass(frozen=True)
class PairSource:
    """Which generator answers side A and which side B (what a caller picked by name)."""

    generators: Generators
    a: Generator
    b: Generator

    @classmethod
    def named(cls, generators: Generators, name_a: str | None = "", name_b: str | None = "") -> "PairSource":
        return cls(generators, generators.resolve(name_a), generators.resolve(name_b))

    @property
    def any_local(self) -> bool:
        return self.a.local or self.b.local

    def stream(self, messages: Messages, settings: PairSettings, *, truncate: bool = False, owner: str = ""
               ) -> Iterator[PairUpdate]:
        return self.generators.stream_pair(messages, self.a, self.b, settings, truncate=truncate, owner=owner)
