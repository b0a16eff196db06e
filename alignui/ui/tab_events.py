"""How a tab's generating events reach the page: the one pressed last owns the view, and the prompt box is
set only when its text changes.

Owns: `stamped`, the JS that gives every generating event the moment the page sent it (its press ticket),
`NewestPerTab`, which lets only the newest press of each tab show and generate (the Annotate tab's Enter,
Generate, Truncate, Next and the pair after a vote all go through it), and `box_when_changed`, the streamed
views as outputs that leave a prompt being typed alone (Annotate and Thumbs), and `box_left`, one output
tuple that leaves it alone.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator
from typing import Any

import gradio as gr


def stamped(n_inputs: int) -> str:
    """JS that passes an event's first `n_inputs` values on and, as its last input, the moment the page sent it
    (ms since the epoch, sub-ms, rising within a page): the press ticket NewestPerTab orders a tab's events by."""
    return f"(...v) => [...v.slice(0, {n_inputs}), performance.timeOrigin + performance.now()]"


class NewestPerTab:
    """The newest generating event of each browser tab. An older one still streaming there stops at its next
    update: its generator is closed, so its rows leave the shared decode batch and nothing is saved for it. A
    new prompt, Next or the pair after a vote thus replaces the pair being written instead of queueing behind
    it. (Gradio's own `cancels=` needs the browser to send /cancel, which a replacing event did not.)

    Newest means pressed last in that tab, not started last here: each event carries the moment the page sent it
    (`press`, see `stamped`), and one that starts after a later press of the same tab has started shows nothing
    and generates nothing (two presses a fraction of a second apart can start in either order). Without a press
    ticket (0: not a browser event) the one started last is the newest.

    The newer event shows nothing until the older one has stopped (at most REPLACE_WAIT_S): an update the
    older one had already yielded then reaches the page first, and cannot overwrite the newer view."""

    REPLACE_WAIT_S = 5.0
    TABS_KEPT = 4096  # the newest press of this many tabs is remembered (one float each)

    def __init__(self, nothing: tuple):
        self._lock = threading.Lock()
        self._newest: dict[str, threading.Event] = {}  # per session: set once that event's generation stopped
        self._pressed: OrderedDict[str, float] = OrderedDict()  # per session: the latest press started
        self._nothing = nothing  # an update of the tab's outputs that changes none of them

    def run(self, request: gr.Request | None, updates: Generator, press: float | None = None) -> Iterator:
        session = getattr(request, "session_hash", None)
        if not session:  # no browser tab to speak of (not a browser call): nothing to replace
            yield from updates
            return
        press = float(press or 0.0)
        if not math.isfinite(press):  # inf or nan from a hand-made call: as if no ticket came
            press = 0.0
        mine = threading.Event()
        with self._lock:
            stale = bool(press) and press < self._pressed.get(session, 0.0)
            if not stale:
                older, self._newest[session] = self._newest.get(session), mine
                if press:
                    self._pressed[session] = press
                    self._pressed.move_to_end(session)
                    while len(self._pressed) > self.TABS_KEPT:
                        self._pressed.popitem(last=False)
        if stale:  # pressed before the event that already owns this tab: leave the page to that one
            updates.close()
            yield self._nothing
            return
        try:
            if older is not None:
                older.wait(self.REPLACE_WAIT_S)  # it stops at its next update (IDLE_S at most, in-process)
            for update in updates:
                if self._newest.get(session) is not mine:
                    return  # replaced: show nothing more (the newer event owns the view)
                yield update
        finally:
            updates.close()  # GeneratorExit down the chain: the scheduler request (or endpoint stream) is cancelled
            mine.set()
            with self._lock:
                if self._newest.get(session) is mine:
                    del self._newest[session]


def box_when_changed(views: Generator, show: Callable[[Any], tuple], index: int,
                     typed: str | None = None) -> Iterator[tuple]:
    """`views` as output tuples (`show(view)`), with output `index` (the prompt box, `view.prompt`) set only when
    its text changes: every streamed update re-set it and overwrote a new prompt being typed while the response
    was written. `typed`: what the box held when the event was triggered (a generation of it, or a view that keeps
    it, leaves the box alone)."""
    sent = None if typed is None else typed.strip()
    try:
        for view in views:
            out = show(view)
            yield out if view.prompt != sent else box_left(out, index)
            sent = view.prompt
    finally:
        views.close()  # closed early (a replaced or gone tab): the generation below stops now, not when collected


def box_left(out: tuple, index: int) -> tuple:
    """Output tuple `out` with output `index` (the prompt box) left as the page has it."""
    return out[:index] + (gr.skip(),) + out[index + 1:]
