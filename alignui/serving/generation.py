"""Paired generation: two responses to one prompt, decoded together, streamed per side.

Owns: sampling settings (validated, recorded with each generation), fitting a
prompt into the model's context, and `stream_pair`/`stream_rows`, which yield the
text of each row as tokens arrive and end with the finished generations. With
batching on (the default) the rows join the decode batch shared by every
concurrent request (alignui.serving.scheduler); with it off (--no-batching) or with
`generate_kwargs`, one `generate` call of their own on the model's worker.

Why hand-written pieces: transformers' TextIteratorStreamer only takes batch
size 1, so `PairStreamer` splits the batch per row; and one `generate` call has
one temperature/top_p/length, so `PerRowSampling` and `PerRowStop` apply each
side's own settings inside the one batched call.

Invariants:
- Both sides share one forward pass per step (a pair costs about one response), and with batching so
  do the rows of every other request decoding at the same time.
- Each side's record holds its own settings, the shared seed, its token count
  and its latency (time from start until that side finished).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace

from alignui.db.records import Messages, NewGeneration
from alignui.errors import UserError
from alignui.serving.loading import ModelHandle


@dataclass(frozen=True)
class SamplingSettings:
    """How one side samples. temperature 0 means greedy."""

    temperature: float = field(default=0.8, metadata={"help": "0 = greedy; 0.7-1.0 gives varied pairs"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling mass, in (0, 1]"})
    max_new_tokens: int = field(default=128, metadata={"help": "longest response, in tokens"})

    def __post_init__(self):
        if not 0 <= self.temperature <= 5:
            raise UserError(f"temperature must be between 0 and 5, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 1 <= int(self.max_new_tokens) <= 8192:
            raise UserError(f"max new tokens must be between 1 and 8192, got {self.max_new_tokens}")


@dataclass(frozen=True)
class PairSettings:
    """Settings for side A and side B (B defaults to A's) and the seed of the shared sampler."""

    a: SamplingSettings = SamplingSettings()
    b: SamplingSettings | None = None
    seed: int = 0

    @property
    def sides(self) -> tuple[SamplingSettings, SamplingSettings]:
        return self.a, self.b or self.a

    @classmethod
    def same(cls, seed: int = 0, **kwargs) -> "PairSettings":
        return cls(a=SamplingSettings(**kwargs), seed=seed)


@dataclass(frozen=True)
class PairUpdate:
    """Texts so far; `done` flags per side; `result` only on the last update."""

    text_a: str
    text_b: str
    done: tuple[bool, bool]
    result: tuple[NewGeneration, NewGeneration] | None = None


def encode_prompt(handle: ModelHandle, messages: Messages, max_new_tokens: int, *, truncate: bool = False):
    """Token ids of the chat-formatted prompt, checked against the context window.

    Too long: raise with the numbers, or with `truncate` keep the end of the prompt (the latest turns
    matter most) so that prompt + response fit.
    """
    ids = handle.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
    budget = handle.context_length - max_new_tokens
    if budget < 8:
        raise UserError(f"max new tokens ({max_new_tokens}) leaves no room for a prompt in this model's "
                        f"{handle.context_length}-token context; lower it")
    if len(ids) > budget:
        if not truncate:
            raise UserError(f"the prompt is {len(ids)} tokens but only {budget} fit ({handle.context_length}-token "
                            f"context minus {max_new_tokens} new tokens); shorten it or allow truncation "
                            "(keeps the end of the prompt)")
        ids = ids[-budget:]
    return ids


class PerRowSampling:
    """Logits processor: each row gets its own temperature (0 = greedy) and top-p."""

    def __init__(self, temperatures: list[float], top_ps: list[float]):
        self.temperatures = temperatures
        self.top_ps = top_ps

    def __call__(self, input_ids, scores):
        """All rows at once: one sort over the batch, not one per row (16 rows of 2,000 logits on CPU: 1.95 ms a
        call against 2.31 ms for the loop per row)."""
        import torch

        device = scores.device
        temps = torch.tensor([t if t > 0 else 1.0 for t in self.temperatures], dtype=scores.dtype, device=device)
        top_ps = torch.tensor([p if p < 1 else float("inf") for p in self.top_ps], dtype=scores.dtype, device=device)
        logits = scores / temps[:, None]
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        drop_sorted = probs.cumsum(-1) - probs > top_ps[:, None]  # keep the token crossing top_p
        logits = logits.masked_fill(drop_sorted.scatter(1, order, drop_sorted), float("-inf"))
        if 0 in self.temperatures:  # decided on the host: no device sync in the decode loop
            greedy = torch.tensor([t == 0 for t in self.temperatures], device=device)
            best = torch.full_like(scores, float("-inf")).scatter(1, scores.argmax(-1, keepdim=True), 0.0)
            logits = torch.where(greedy[:, None], best, logits)
        return logits


class PerRowStop:
    """Stopping criterion: a row is done at its own token limit (generate stops when all rows are)."""

    def __init__(self, prompt_len: int, limits: list[int]):
        self.prompt_len = prompt_len
        self.limits = limits

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        produced = input_ids.shape[1] - self.prompt_len
        return torch.tensor([produced >= lim for lim in self.limits], device=input_ids.device)


class PairStreamer:
    """A `generate` streamer for a batch of rows: decodes each row incrementally and queues snapshots."""

    def __init__(self, tokenizer, n_rows: int, limits: list[int]):
        self.tokenizer = tokenizer
        self.eos_ids = set(_as_list(tokenizer.eos_token_id))
        self.limits = limits
        self.tokens: list[list[int]] = [[] for _ in range(n_rows)]
        self.texts = [""] * n_rows
        self.done = [False] * n_rows
        self.finished_at = [0.0] * n_rows
        self.queue: queue.Queue = queue.Queue()
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:  # the first call carries the prompt ids
            self._prompt_seen = True
            return
        for row, tok in enumerate(value.reshape(-1).tolist()):
            if self.done[row]:
                continue
            if tok in self.eos_ids:
                self._finish(row)
                continue
            self.tokens[row].append(tok)
            text = self.tokenizer.decode(self.tokens[row], skip_special_tokens=True)
            if not text.endswith("\ufffd"):  # hold back a half-decoded multi-byte character
                self.texts[row] = text
            if len(self.tokens[row]) >= self.limits[row]:
                self._finish(row)
        self.queue.put(("update", tuple(self.texts), tuple(self.done)))

    def _finish(self, row: int) -> None:
        self.done[row] = True
        self.finished_at[row] = time.perf_counter()
        self.texts[row] = self.tokenizer.decode(self.tokens[row], skip_special_tokens=True)

    def end(self) -> None:
        now = time.perf_counter()
        for row in range(len(self.done)):
            if not self.done[row]:
                self._finish(row)
                self.finished_at[row] = now
        self.queue.put(("end", tuple(self.texts), tuple(self.done)))


def _as_list(value) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def stream_pair(handle: ModelHandle, messages: Messages, settings: PairSettings, *, model_ref: str | None = None,
                truncate: bool = False, generate_kwargs: dict | None = None, owner: str = "") -> Iterator[PairUpdate]:
    """Yield PairUpdates while both sides generate in one batched call; the last one carries the result."""
    for texts, done, gens in stream_rows(handle, messages, list(settings.sides), settings.seed, model_ref=model_ref,
                                         truncate=truncate, generate_kwargs=generate_kwargs, owner=owner):
        yield PairUpdate(texts[0], texts[1], done, result=gens)


class CancelStop:
    """Stopping criterion: every row stops once `event` is set (the consumer went away)."""

    def __init__(self, event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), device=input_ids.device)


def stream_rows(handle: ModelHandle, messages: Messages, sides: list[SamplingSettings], seed: int, *,
                model_ref: str | None = None, truncate: bool = False, generate_kwargs: dict | None = None,
                labels: str = "ab", cancel=None, owner: str = ""
                ) -> Iterator[tuple[tuple[str, ...], tuple[bool, ...], tuple | None]]:
    """(texts, done, None) while len(sides) rows generate, then (texts, done, generations).

    Row i samples with sides[i] and is recorded with side label labels[i]; a set `cancel` event stops all rows.
    With batching on (the default) the rows join the shared decode batch of every concurrent request
    (alignui.serving.scheduler; `owner` is who they are for, for fair admission); a cancelled request then
    ends without generations. Otherwise (or with `generate_kwargs`) one batched `generate` call of their own.
    """
    from alignui.serving.scheduler import batch_scheduler

    limits = [side.max_new_tokens for side in sides]
    ids = encode_prompt(handle, messages, max(limits), truncate=truncate)
    scheduler = None if generate_kwargs else batch_scheduler(handle)
    rows = (_scheduled_rows(scheduler, handle, ids, sides, seed, cancel, owner) if scheduler is not None
            else _generate_rows(handle, ids, sides, seed, cancel, generate_kwargs))
    started = time.perf_counter()
    for texts, done, tokens, finished_at in rows:
        if tokens is None:
            yield texts, done, None
            continue
        ref = model_ref or handle.ref
        extra = {"batching": "shared_steps"} if scheduler is not None else {}
        extra.update({"decode_process": True} if getattr(scheduler, "in_own_process", False) else {})
        extra.update({"cpu_batch_parallel": True} if handle.batch_parallel else {})
        gens = tuple(
            NewGeneration(model_ref=ref, text=texts[i],
                          params={**asdict(side), "seed": seed, "side": labels[i], "prompt_tokens": len(ids), **extra},
                          n_tokens=len(tokens[i]), latency_ms=round((finished_at[i] - started) * 1000, 1))
            for i, side in enumerate(sides))
        yield texts, (True,) * len(sides), gens


def _scheduled_rows(scheduler, handle: ModelHandle, ids: list[int], sides: list[SamplingSettings], seed: int,
                    cancel, owner: str) -> Iterator[tuple]:
    """Rows decoded in the shared batch: (texts, done, None, None) updates, then (texts, done, tokens, finished_at)."""
    from alignui.serving.scheduler import stream_scheduled

    adapters = getattr(handle.model, "adapter_names", None)  # an AdapterServer view: one adapter per row
    req = scheduler.request(owner, ids, sides, seed, adapters=adapters, linked=cancel)
    texts, done = [""] * len(sides), (False,) * len(sides)
    for message in stream_scheduled(scheduler, req):
        if message[0] == "waiting":
            yield tuple(texts), done, None, None
            continue
        tokens = message[1]
        for i, row in enumerate(tokens):
            text = handle.tokenizer.decode(list(row), skip_special_tokens=True)
            if message[0] == "end" or not text.endswith("\ufffd"):  # hold back a half-decoded character
                texts[i] = text
        if message[0] == "end":
            yield tuple(texts), (True,) * len(sides), tokens, message[2]
        else:
            done = message[2]
            yield tuple(texts), done, None, None


def _generate_rows(handle: ModelHandle, ids: list[int], sides: list[SamplingSettings], seed: int, cancel,
                   generate_kwargs: dict | None) -> Iterator[tuple]:
    """The rows of one `generate` call on the model's worker (one request at a time): same shape as above."""
    import torch

    limits = [side.max_new_tokens for side in sides]
    input_ids = torch.tensor([ids] * len(sides), device=handle.model.device)
    streamer = PairStreamer(handle.tokenizer, len(sides), limits)
    stops = [PerRowStop(len(ids), limits)] + ([CancelStop(cancel)] if cancel is not None else [])
    kwargs = dict(
        input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max(limits),
        do_sample=True, temperature=1.0, top_p=1.0, top_k=0, streamer=streamer,
        logits_processor=[PerRowSampling([s.temperature for s in sides], [s.top_p for s in sides])],
        stopping_criteria=stops, pad_token_id=handle.tokenizer.pad_token_id,
        eos_token_id=handle.tokenizer.eos_token_id)
    kwargs.update(generate_kwargs or {})
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with handle.lock, torch.inference_mode():
                torch.manual_seed(seed)
                handle.model.generate(**kwargs)
        except BaseException as exc:  # surfaced in the consuming thread below
            errors.append(exc)
            streamer.queue.put(("error", tuple(streamer.texts), tuple(streamer.done)))

    job = handle.submit(run)
    while True:
        kind, texts, done = streamer.queue.get()
        if kind == "error":
            job.result()
            raise errors[0]
        if kind == "end":
            break
        yield texts, done, None, None
    job.result()
    yield tuple(streamer.texts), (True,) * len(sides), streamer.tokens, streamer.finished_at


def generate_pair(handle: ModelHandle, messages: Messages, settings: PairSettings, **kwargs
                  ) -> tuple[NewGeneration, NewGeneration]:
    """The finished pair, without streaming."""
    last = None
    for last in stream_pair(handle, messages, settings, **kwargs):
        pass
    return last.result


def with_seed(settings: PairSettings, seed: int) -> PairSettings:
    return replace(settings, seed=seed)
