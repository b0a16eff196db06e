"""Cross-request batching: every in-process generation (all annotators, the arena) shares decode steps.

Owns: `BatchScheduler`, one per loaded base model (`batch_scheduler(handle)`), which admits requests
(a pair = 2 rows, one side = 1 row) into one running `DecodeBatch` between decode steps, and
`stream_scheduled`, the caller's side: submit, then yield each row's tokens as they come.

Why a hand-written step loop: transformers' `generate` batches only rows known when it starts, and its
ContinuousBatchingManager (transformers 5.x) takes one GenerationConfig for all requests (no per-row
seed), no PEFT adapter per row, and a paged cache aimed at CUDA kernels.

Invariants:
- Model work runs on the handle's one worker thread (ModelHandle.submit) under `handle.lock`, a few
  steps per task, so other model work (adapter loading, judges) interleaves with a busy batch.
- Each row keeps its own temperature/top_p/max_new_tokens and its own uniforms drawn from a torch.Generator
  seeded from (request seed, row index): a row's samples repeat exactly for the same seed and the same batch
  neighbours; alone vs batched, greedy rows agree (kv_batch's masking), sampled rows agree unless float
  rounding of the batched matmul flips a draw.
- Rows of different adapters share one forward pass (PEFT mixed-adapter batch, `adapter_names=`).
- Admission is round-robin across owners (the annotator a request is for), not FIFO by request: an
  owner with many waiting requests gets one admitted per turn, so every other owner waiting is admitted
  within one round.
- A cancelled request (its consumer closed the stream, or its cancel event was set) leaves the batch at
  the next step and gets no "end": callers that save on the end save nothing.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from alignui.errors import UserError
from alignui.serving.generation import PerRowSampling, SamplingSettings
from alignui.serving.kv_batch import DecodeBatch, supports_joining

#: A waiting caller hears ("waiting",) this often: a sync generator can be closed (Gradio's cancel on a closed
#: tab or a replacing event) only while suspended at a yield, not while blocked waiting for its next token.
IDLE_S = 0.25
#: A streaming caller hears its rows' tokens at most this often (the first at once, the end always): every update
#: costs the web server a round of Gradio's event processing per request, which on a busy CPU host took the time
#: the decode steps needed (bench/concurrent_annotators.py); 20 updates a second still read as a smooth stream.
STREAM_EVERY_S = 0.05
PEFT_BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch (alignui.serving.adapters.PEFT_BASE)


@dataclass(eq=False)
class BatchRow:
    request: "BatchRequest"
    settings: SamplingSettings
    uniforms: list[float]  # the row's draws in [0, 1), one per token, from its own seeded generator
    adapter: str
    tokens: list[int] = field(default_factory=list)
    done: bool = False
    finished_at: float = 0.0


@dataclass(eq=False)
class BatchRequest:
    """One caller's rows over one prompt. The scheduler `send`s ("tokens", tokens, done) after every step (kept as
    `latest`: a reader takes the newest), then one final ("end", tokens, finished_at), ("error", exc) or
    ("cancelled",).

    Why a slot, not a queue: a queue woke every reader at every decode step; with 8 annotators that was 8 thread
    wake-ups (and GIL hand-overs) per step, which the decode worker paid for. A reader now wakes when it asks."""

    owner: str
    prompt: list[int]
    rows: list[BatchRow] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    linked: threading.Event | None = None  # the caller's own cancel event (e.g. the other side failed)
    latest: tuple | None = None  # the newest ("tokens", ...) message
    seq: int = 0  # how many tokens messages were sent
    final: tuple | None = None  # the end, the error or the cancellation: nothing is sent after it
    moved: threading.Event = field(default_factory=threading.Event)  # set on every send
    ended: threading.Event = field(default_factory=threading.Event)  # set with `final`
    relay: Any = None  # called with every message sent (alignui.serving.decode_process passes them on)

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set() or (self.linked is not None and self.linked.is_set())

    @property
    def over(self) -> bool:
        return self.final is not None

    def send(self, *message) -> None:
        if self.final is not None:
            return
        if message[0] == "tokens":
            self.latest, self.seq = message, self.seq + 1  # latest first: a reader that sees the new seq reads it
        else:
            self.final = message
            self.ended.set()
        self.moved.set()
        if self.relay is not None:
            self.relay(message)

    def snapshot(self) -> tuple:
        return tuple(tuple(r.tokens) for r in self.rows), tuple(r.done for r in self.rows)


@dataclass
class SchedulerStats:
    """What the scheduler did (tests and the bench read it): forward passes, rows per pass, admissions."""

    forwards: int = 0
    rows_per_forward: deque = field(default_factory=lambda: deque(maxlen=10_000))
    admitted: deque = field(default_factory=lambda: deque(maxlen=10_000))  # owners, in admission order


def row_seed(seed: int, index: int) -> int:
    return (int(seed) * 1_000_003 + index) % (2**63 - 1)


class BatchScheduler:
    """Runs all in-process decoding of one base model as one batch that requests join and leave."""

    def __init__(self, handle: Any, *, max_rows: int = 32, steps_per_task: int = 4):
        self.handle = handle
        self.max_rows = max_rows
        self.steps_per_task = steps_per_task
        self.stats = SchedulerStats()
        self._cond = threading.Condition()
        self._waiting: OrderedDict[str, deque[BatchRequest]] = OrderedDict()
        self._batch = DecodeBatch()
        self._looping = False
        self._closed = False
        # transformers 5.2x renamed forward's past_key_values to cache (the old name warns); older ones lack it
        params = inspect.signature(handle.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        tok = handle.tokenizer.eos_token_id
        self._eos = set(tok if isinstance(tok, (list, tuple)) else [] if tok is None else [tok])

    def request(self, owner: str, prompt: list[int], sides: list[SamplingSettings], seed: int,
                adapters: list[str] | None = None, linked: threading.Event | None = None) -> BatchRequest:
        req = BatchRequest(owner=owner or "", prompt=list(prompt), linked=linked)
        for i, side in enumerate(sides):
            gen = torch.Generator(device="cpu").manual_seed(row_seed(seed, i))
            uniforms = torch.rand(side.max_new_tokens + 1, generator=gen, dtype=torch.float64).tolist()
            req.rows.append(BatchRow(req, side, uniforms, (adapters or [])[i] if adapters else PEFT_BASE))
        return req

    def waiting(self) -> int:
        """How many requests wait for admission (cancelled ones, dropped at the next admission, not counted)."""
        with self._cond:
            return sum(not req.cancelled for q in self._waiting.values() for req in q)

    def submit(self, req: BatchRequest) -> None:
        with self._cond:
            if self._closed:
                raise UserError("the model is shutting down; try again once the app has restarted")
            self._waiting.setdefault(req.owner, deque()).append(req)
            start, self._looping = not self._looping, True
        if start:
            self._schedule()

    def _schedule(self) -> None:
        try:
            self.handle.submit(self._task)
        except RuntimeError:  # the worker was shut down (the app is closing)
            self.close()
            self.fail_running()

    def _task(self) -> None:
        for _ in range(self.steps_per_task):
            if not self._tick():
                return
        self._schedule()

    def _admit(self) -> list[BatchRequest] | None:
        """Requests to join now, round-robin over owners; None when there is nothing left to do at all."""
        with self._cond:
            if self._closed:
                self._looping = False
                return None
            out, rows = [], len(self._batch)
            while self._waiting:
                owner, waiting = next(iter(self._waiting.items()))
                req = waiting[0]
                if not req.cancelled and rows + len(req.rows) > self.max_rows and rows:
                    break
                waiting.popleft()
                if waiting:
                    self._waiting.move_to_end(owner)
                else:
                    del self._waiting[owner]
                if req.cancelled:
                    req.send("cancelled")
                    continue
                out.append(req)
                rows += len(req.rows)
                self.stats.admitted.append(owner)
            if not out and not self._batch:
                self._looping = False
                return None
            return out

    def _tick(self) -> bool:
        admitted = self._admit()
        if admitted is None:
            return False
        with self.handle.lock, torch.inference_mode():
            for req in admitted:
                self._prefill(req)
            self._prune()
            if self._batch:
                self._step()
        return True

    def _forward(self, adapters: list[str], cache, **kwargs):
        """One forward pass over the rows (row i with adapters[i]); returns (last-position logits, cache)."""
        kwargs.update({self._cache_kw: cache, "use_cache": True, "logits_to_keep": 1})
        out = self._call(adapters, **kwargs)
        return out.logits[:, -1], getattr(out, self._cache_kw, None) or cache

    def _call(self, adapters: list[str], **kwargs):
        self.stats.forwards += 1
        self.stats.rows_per_forward.append(len(adapters))
        server = self.handle.adapters
        if server is None or server.peft_model is None or all(a == PEFT_BASE for a in adapters):
            return self.handle.model(**kwargs)  # adapter layers are disabled outside mixed calls: the base
        tuner = server.peft_model.base_model
        tuner.enable_adapter_layers()
        try:
            return server.peft_model(adapter_names=adapters, **kwargs)
        finally:
            tuner.disable_adapter_layers()

    def _prefill(self, req: BatchRequest) -> None:
        """Run the request's prompt alone (no padding), sample each row's first token, join the batch."""
        from transformers import DynamicCache

        try:
            ids = torch.tensor([req.prompt] * len(req.rows), device=self.handle.model.device)
            logits, cache = self._forward([r.adapter for r in req.rows], DynamicCache(), input_ids=ids,
                                          attention_mask=torch.ones_like(ids))
            tokens = self._sample(req.rows, logits)
        except Exception as exc:  # this request fails alone; the batch goes on
            req.send("error", exc)
            return
        self._batch.join(cache, len(req.prompt), tokens, req.rows)
        self._record(req.rows, tokens)

    def _step(self) -> None:
        rows = list(self._batch.rows)
        try:
            logits, _ = self._forward([r.adapter for r in rows], self._batch.cache, **self._batch.step_inputs())
            tokens = self._sample(rows, logits)
        except Exception as exc:  # every request in the batch fails; the scheduler keeps serving new ones
            for req in {id(r.request): r.request for r in rows}.values():
                req.send("error", exc)
            self._batch = DecodeBatch()
            return
        self._batch.advance(tokens)
        self._record(rows, tokens)
        self._prune()

    def _sample(self, rows: list[BatchRow], logits: torch.Tensor) -> torch.Tensor:
        """One token per row with the row's own temperature (0 = greedy), top_p and generator."""
        logits = logits.float()
        temps = [r.settings.temperature for r in rows]
        filtered = PerRowSampling(temps, [r.settings.top_p for r in rows])(None, logits)
        # Inverse-CDF sampling with each row's next pre-drawn uniform: one batched search, not one multinomial call
        # per row (py-spy: 9% of the model thread at 8 annotators). A greedy row's filtered logits keep only its
        # argmax, so that is what it draws.
        cdf = torch.softmax(filtered, dim=-1).cumsum(-1)
        u = torch.tensor([r.uniforms[len(r.tokens)] for r in rows], dtype=cdf.dtype, device=cdf.device)
        u = u.clamp_max(1 - 2**-23) * cdf[:, -1]  # below the total mass: a token with cdf > u exists
        return torch.searchsorted(cdf, u[:, None], right=True)[:, 0]  # the first index whose cdf exceeds u

    def _record(self, rows: list[BatchRow], tokens: torch.Tensor) -> None:
        """Append each row's token (EOS or its own max_new_tokens finishes it); send each request its tokens."""
        now = time.perf_counter()
        touched: dict[int, BatchRequest] = {}
        for row, tok in zip(rows, tokens.tolist()):
            if row.done:
                continue
            if tok in self._eos:
                row.done = True
            else:
                row.tokens.append(tok)
                row.done = len(row.tokens) >= row.settings.max_new_tokens
            row.finished_at = now if row.done else 0.0
            touched[id(row.request)] = row.request
        for req in touched.values():
            req.send("tokens", *req.snapshot())

    def _prune(self) -> None:
        """Drop finished and cancelled rows; a request whose rows are all done ends."""
        keep = []
        for row in self._batch.rows:
            req = row.request
            if req.cancelled:
                req.send("cancelled")
            elif all(r.done for r in req.rows):
                req.send("end", tuple(tuple(r.tokens) for r in req.rows), tuple(r.finished_at for r in req.rows))
            keep.append(not row.done and not req.cancelled)
        self._batch.keep(keep)

    def close(self) -> None:
        """Refuse new requests and fail the waiting ones (the app is closing)."""
        with self._cond:
            self._closed = True
            waiting = [req for q in self._waiting.values() for req in q]
            self._waiting.clear()
        for req in waiting:
            req.send("error", UserError("the model is shutting down; try again once the app has restarted"))

    def fail_running(self) -> None:
        """After the worker stopped: the rows still in the batch will never finish; tell their callers."""
        for row in self._batch.rows:
            row.request.send("error", UserError("the model is shutting down; try again once the app has restarted"))
        self._batch = DecodeBatch()


def batch_scheduler(handle: Any) -> BatchScheduler | None:
    """The one scheduler of the base model behind `handle` (an adapter view shares its base's), or None when
    batching is off or the model's cache cannot take joining rows (sliding-window layers)."""
    base = handle.adapters.handle if getattr(handle, "adapters", None) is not None else handle
    if not hasattr(base.model, "forward"):  # an adapter view whose server is not the handle's own: no base to batch
        return None
    if not getattr(base, "batching", False) or not supports_joining(base.model.config):
        return None
    decoder = getattr(base, "decoder", None)  # --decode-process: the rows decode in a process of their own
    if decoder is not None and decoder.serving:
        return decoder
    if base.scheduler is not None:  # made: no need to wait for the lock, which a decode step holds
        return base.scheduler
    with base.lock:
        if base.scheduler is None:
            base.scheduler = BatchScheduler(base)
        return base.scheduler


def stream_scheduled(scheduler: BatchScheduler, req: BatchRequest) -> Iterator[tuple]:
    """Submit `req`; yield ("tokens", tokens, done) as rows move (the newest, at most every STREAM_EVERY_S), then
    ("end", tokens, finished_at), and ("waiting",) every IDLE_S while nothing moves.

    Returns without "end" when the request was cancelled; raises what failed it. Leaving early (close(),
    GeneratorExit: the browser went away) cancels the request, which leaves the batch at the next step."""
    scheduler.submit(req)
    seen, last = 0, 0.0  # seen: the seq of the tokens last passed on, at time `last`
    try:
        while True:
            final = req.final
            if final is not None:  # the end carries every token: newer tokens messages need not be passed on
                if final[0] == "error":
                    raise final[1]
                if final[0] == "end":
                    yield final
                return
            now = time.perf_counter()
            if req.seq != seen:
                if now - last >= STREAM_EVERY_S:
                    seen, last = req.seq, now
                    yield req.latest
                else:  # too soon after the last one: wait out the interval unless the request ends meanwhile
                    req.ended.wait(last + STREAM_EVERY_S - now)
                continue
            req.moved.clear()
            if req.seq == seen and req.final is None and not req.moved.wait(IDLE_S):
                yield ("waiting",)  # still waiting for admission (or a slow step): let the consumer close us
    finally:
        req.cancel.set()
