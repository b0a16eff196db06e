"""Limits that keep one user from starving the others: prompt length and a per-user generation rate.

Owns: `Limits`, one object per running app (built from AppConfig and held by
the app context), with `check_prompt` (maximum prompt length) and
`check_generation` (a sliding-window rate limit per user), and `client_key`,
which says who "one user" is.

How GPU work is shared (the third limit): every Gradio event that runs the
model uses the one concurrency group alignui.ui.common.GPU_QUEUE. With
batching (the default) many run at once and their rows join one shared
decode batch, admitted round-robin per annotator (alignui.serving.scheduler),
so one person's many requests cannot push another's back; with
--no-batching the group runs one event at a time in Gradio's arrival order.
Either way the model runs on ModelHandle's single worker thread. Training never
shares that thread: it is a subprocess (`python -m alignui train ...`) with its
own copy of the weights, so generation keeps answering while a job runs; the
runner starts one job at a time. See docs/spaces.md, "One GPU".

Invariants: the limiter's state lives in the object (a lock guards it), never
in the module; an anonymous user is keyed by network address, so a typed name
cannot be changed to dodge the limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from alignui.errors import UserError, text_arg


class RateLimited(UserError):
    """A user asked for more generations than the limit allows."""


@dataclass
class RateLimiter:
    """At most `per_window` events per key in any `window_s` seconds (0 = unlimited).

    Hand-written (about 20 lines) rather than a dependency: an in-memory sliding window per key is all we
    need, and the `limits` package would bring storage back-ends and string rate syntax we would not use.
    """

    per_window: int
    window_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _events: dict[str, deque] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hit(self, key: str) -> None:
        """Count one event for `key`, or raise RateLimited (counting nothing) when over the limit."""
        if self.per_window <= 0:
            return
        now = self.clock()
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window_s:
                events.popleft()
            if len(events) >= self.per_window:
                wait = math.ceil(events[0] + self.window_s - now)
                raise RateLimited(f"you started {len(events)} generations in the last {self.window_s:.0f} s, the "
                                  f"limit per person; try again in {max(wait, 1)} s")
            events.append(now)
            if len(self._events) > 10_000:  # forget idle keys so memory stays bounded
                self._events = {k: v for k, v in self._events.items() if v and v[-1] > now - self.window_s}

    def used(self, key: str) -> int:
        now = self.clock()
        with self._lock:
            return sum(1 for t in self._events.get(key, ()) if t > now - self.window_s)


@dataclass
class Limits:
    max_prompt_chars: int = 4000
    generation: RateLimiter = field(default_factory=lambda: RateLimiter(60))

    @classmethod
    def from_config(cls, config) -> "Limits":
        return cls(max_prompt_chars=config.max_prompt_chars,
                   generation=RateLimiter(config.rate_limit_per_minute, 60.0))

    def check_prompt(self, prompt: str) -> str:
        """The prompt, unchanged, or UserError when it is not text (a number, a lone surrogate) or longer than
        the limit."""
        prompt = text_arg(prompt, "prompt", allow_none=True)
        if len(prompt) > self.max_prompt_chars:
            raise UserError(f"the prompt is {len(prompt):,} characters long and the limit is "
                            f"{self.max_prompt_chars:,}; shorten it (operators: ALIGNUI_MAX_PROMPT_CHARS)")
        return prompt

    def check_generation(self, key: str, prompt: str | None = None) -> None:
        """Admit one generation for `key` (see client_key): prompt length first, then the rate."""
        if prompt is not None:
            self.check_prompt(prompt)
        self.generation.hit(key)


def client_key(identity, host: str | None, headers: Mapping[str, str] | None = None, *,
               behind_proxy: bool = False) -> str:
    """Who counts as one user: a signed-in name, else the client's network address, never a freely typed
    name. Behind a trusted proxy (a Space) the address is the last X-Forwarded-For hop, the one the proxy
    itself appended; earlier hops come from the client and could be forged."""
    if identity is not None and getattr(identity, "signed_in", False):
        return f"user:{identity.name}"
    forwarded = (headers or {}).get("x-forwarded-for", "") if behind_proxy else ""
    address = forwarded.split(",")[-1].strip() or host or "unknown"
    return f"addr:{address}"
