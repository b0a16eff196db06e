"""The shared decode steps in a process of their own (`--decode-process`), off the web server's GIL.

Owns: `DecodeProcess`, the web process's side, which answers `batch_scheduler` like a BatchScheduler
(`request`, `submit`, `waiting`, `close`, `fail_running`) and passes each request to a child process
(`python -m alignui.serving.decode_process FD`) that loads the same model and runs the one BatchScheduler
there; and `child_main`, the child's side.

Why: on a CPU host every Python thread of the web server (Gradio's event loop, its workers, the decode
loop) shares one GIL, so the served app ran at about one core however the batch grew (py-spy at 8
annotators on the demo model: the decode loop held the GIL 42% of the time, Gradio's event loop 51%).
In its own process the decode loop runs on the other core. The cost: a second copy of the weights
(hence CPU only, and an explicit option) and one message per request per decode step.

Why by hand: the standard library's `multiprocessing.connection` over a socketpair carries the messages;
multiprocessing's own Process (spawn) would re-import the web server's main module, Gradio included, in
the child.

Invariants:
- The child loads the model the web process loaded (the same AppConfig, offline: the files are already
  here), with the same thread settings, so a seeded request decodes to the same tokens in either process.
- Rows of a LoRA adapter (the arena) decode there too: a request carries the directory of each adapter its
  rows use (the web process loaded and checked it first, AdapterServer.ensure), and the child loads it into its
  own model, once per directory, before admitting the request.
- A request whose consumer went away (its cancel or linked event set) is cancelled in the child within
  CANCEL_POLL_S; it gets no "end", so nothing is saved for it.
- If the child dies or fails to load, every request in flight ends with one error line, `serving` turns
  False, and generation goes on in the web process (batch_scheduler falls back): nothing is lost twice.
- Parent gone (socket closed): the child stops. It runs in its own session, so a Ctrl-C in the terminal
  reaches only the web server, which then closes it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import MISSING, dataclass, field, fields, replace
from multiprocessing.connection import Connection
from typing import Any, Callable

from alignui.errors import UserError
from alignui.serving.scheduler import PEFT_BASE, BatchRequest

CANCEL_POLL_S = 0.02  # how often the web side looks for requests whose consumer went away
STOP_WAIT_S = 10  # how long close() waits for the child to exit before killing it


@dataclass(eq=False)
class RelayedRequest(BatchRequest):
    """A request decoded in the child: what the child needs to rebuild it (the rows' settings, the seed)."""

    sides: list = field(default_factory=list)
    seed: int = 0
    adapters: list[str] | None = None
    adapter_paths: dict[str, str] = field(default_factory=dict)  # PEFT name -> adapter directory, for the child
    cancel_sent: bool = False


class DecodeProcess:
    """The web process's end of the decode child: requests go out, their tokens come back into BatchRequests."""

    in_own_process = True

    def __init__(self, config: Any, log: Callable[[str], None] = print,
                 adapter_paths: Callable[[], dict[str, str]] = dict):
        self._log = log
        self._adapter_paths = adapter_paths  # the web process's loaded adapters: PEFT name -> directory
        self._lock = threading.Lock()
        self._inflight: dict[int, RelayedRequest] = {}
        self._next_id = 0
        self._send_lock = threading.Lock()
        self.serving, self._closing = True, False
        self.stopped_why = ""
        self._stats_lock, self._stats_reply, self._stats = threading.Lock(), threading.Event(), {}
        mine, theirs = socket.socketpair()
        self._conn = Connection(mine.detach())
        fd = theirs.detach()
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "alignui.serving.decode_process", str(fd)],
                                         pass_fds=(fd,), start_new_session=True, stdin=subprocess.DEVNULL)
        finally:
            os.close(fd)
        # what the child needs to load the model: no secrets (accounts, keys), no Hub probe (the files are here)
        self._send(("config", replace(config, offline=True, decode_process=False, **_no_secrets(config))))
        self._reader = threading.Thread(target=self._read, name="alignui-decode-reader", daemon=True)
        self._reader.start()

    # -- BatchScheduler's interface ---------------------------------------------------------------------------
    def request(self, owner: str, prompt: list[int], sides: list, seed: int, adapters: list[str] | None = None,
                linked: threading.Event | None = None):
        named = {a for a in adapters or [] if a != PEFT_BASE}
        known = self._adapter_paths() if named else {}
        missing = sorted(named - set(known))
        if missing:
            raise UserError(f"adapter {missing[0]} is not loaded here; load it (AdapterServer.ensure) first")
        return RelayedRequest(owner=owner or "", prompt=list(prompt), linked=linked, sides=list(sides), seed=int(seed),
                              adapters=list(adapters) if adapters else None,
                              adapter_paths={a: known[a] for a in named})

    def submit(self, req: RelayedRequest) -> None:
        if not self.serving:
            raise UserError(f"the decode process stopped ({self.stopped_why}); try again")
        with self._lock:
            rid, self._next_id = self._next_id, self._next_id + 1
            self._inflight[rid] = req
        if not self._send(("submit", rid, req.owner, req.prompt, req.sides, req.seed, req.adapters,
                           req.adapter_paths)):
            with self._lock:
                self._inflight.pop(rid, None)
            raise UserError(f"the decode process stopped ({self.stopped_why or 'its connection closed'}); try again")

    def child_stats(self, timeout: float = 60.0) -> dict:
        """What the child's scheduler did (SchedulerStats as lists, and how each request ended): tests, benches."""
        with self._stats_lock:
            self._stats_reply.clear()
            if not self._send(("stats",)) or not self._stats_reply.wait(timeout):
                raise UserError(f"the decode process did not answer ({self.stopped_why or 'no reply'})")
            return self._stats

    def waiting(self) -> int:
        """Requests sent that have no token yet (waiting for admission or for their prefill)."""
        with self._lock:
            return sum(req.seq == 0 and not req.over and not req.cancelled for req in self._inflight.values())

    def close(self) -> None:
        """Stop the child (after telling it to) and fail what is still in flight."""
        self._closing = True
        if self.proc.poll() is None:
            self._send(("close",))
            try:
                self.proc.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stop("the app is shutting down; try again once it has restarted")

    def fail_running(self) -> None:
        self._stop("the app is shutting down; try again once it has restarted")

    # -- the connection ---------------------------------------------------------------------------------------
    def _send(self, message: tuple) -> bool:
        with self._send_lock:
            try:
                self._conn.send(message)
                return True
            except (OSError, EOFError, ValueError):  # the child is gone (or the connection was closed)
                return False

    def _read(self) -> None:
        last_scan = 0.0
        while True:
            try:
                message = self._conn.recv() if self._conn.poll(CANCEL_POLL_S) else None
            except (OSError, EOFError, ValueError):
                why = self._exit_reason()
                if not self._closing and self.serving:
                    self._log(f"alignui: the decode process stopped ({why}); decoding goes on in the web process")
                self._stop(why)
                return
            if message is not None:
                self._dispatch(*message)
            now = time.perf_counter()
            if now - last_scan >= CANCEL_POLL_S:
                last_scan = now
                self._pass_cancels()

    def _exit_reason(self) -> str:
        try:
            code = self.proc.wait(STOP_WAIT_S)  # its end of the socket closed: it has exited or is exiting
        except subprocess.TimeoutExpired:
            return "its connection closed"
        return f"it was killed by signal {-code}" if code < 0 else f"it exited with code {code}"

    def _dispatch(self, rid, message: tuple) -> None:
        if rid is None:  # the child's own news: ("ready", description), ("failed", why) or ("stats", dict)
            if message[0] == "stats":
                self._stats = message[1]
                self._stats_reply.set()
            elif message[0] == "failed":
                self._log(f"alignui: the decode process could not load the model ({message[1]}); decoding stays "
                          "in the web process")
                self._stop(f"it could not load the model: {message[1]}")
            else:
                self._log(f"alignui: the shared decode steps run in their own process (pid {self.proc.pid}, "
                          f"{message[1]})")
            return
        with self._lock:
            req = self._inflight.get(rid)
            if req is not None and message[0] != "tokens":
                del self._inflight[rid]
        if req is not None:
            req.send(*message)

    def _pass_cancels(self) -> None:
        with self._lock:
            gone = [(rid, req) for rid, req in self._inflight.items() if req.cancelled and not req.cancel_sent]
        for rid, req in gone:
            req.cancel_sent = True
            self._send(("cancel", rid))

    def _stop(self, why: str) -> None:
        """No more serving: every request in flight ends with `why`."""
        self.serving = False
        self.stopped_why = self.stopped_why or why
        with self._lock:
            inflight, self._inflight = list(self._inflight.values()), {}
        for req in inflight:
            req.send("error", UserError(f"the decode process stopped ({self.stopped_why}); try again"))
        try:
            self._conn.close()
        except OSError:
            pass


def _no_secrets(config: Any) -> dict:
    """Every setting marked secret (passwords, keys) at its default."""
    return {f.name: f.default if f.default is not MISSING else f.default_factory()
            for f in fields(config) if f.metadata.get("secret")}


# -- the child ----------------------------------------------------------------------------------------------------
def _portable(exc: BaseException) -> BaseException:
    """An exception that survives pickling to the web process (a user error as it is, anything else as a line)."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any unpicklable exception becomes its message
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _first_line(exc: BaseException) -> str:
    """`Type: first line of the message`, at most 300 characters (errors here are shown as one line)."""
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"[:300]


def child_main(fd: int) -> int:
    """Load the model the web process sends the config of, then serve its requests until told to stop."""
    conn = Connection(fd)
    send_lock = threading.Lock()

    def send(rid, message: tuple) -> None:
        if message[0] == "error":
            message = ("error", _portable(message[1]))
        with send_lock:
            try:
                conn.send((rid, message))
            except (OSError, EOFError, ValueError):
                pass  # the web process is gone; the loop below ends at its next recv

    try:
        kind, config = conn.recv()
        from alignui.serving.loading import load_model
        from alignui.serving.scheduler import BatchScheduler

        handle = load_model(config, log=lambda line: None)
        handle.scheduler = scheduler = BatchScheduler(handle)  # the handle's own: its close() closes it
    except EOFError:
        return 0
    except Exception as exc:  # noqa: BLE001 - told to the web process, which falls back and says why
        send(None, ("failed", _first_line(exc)))
        return 1
    send(None, ("ready", handle.describe()))
    try:
        _serve(conn, scheduler, send, _AdapterLoader(handle))
    finally:
        handle.close()
    return 0


class _AdapterLoader:
    """The child's adapters: each directory a request names is loaded once, as the PEFT name it is sent under."""

    def __init__(self, handle: Any):
        from alignui.serving.adapters import adapter_server

        self.handle, self.server, self.loaded = handle, adapter_server(handle), {}

    def ensure(self, paths: dict[str, str]) -> None:
        for name, path in sorted(paths.items()):
            if self.loaded.get(name) != path:
                try:
                    self.handle.submit(self.server.load_named, name, path).result()
                except Exception as exc:  # noqa: BLE001 - this request fails alone, with what went wrong
                    raise UserError(f"the decode process could not load the adapter at {path} "
                                    f"({_first_line(exc)})") from None
                self.loaded[name] = path


def _serve(conn: Connection, scheduler, send, adapters: _AdapterLoader) -> None:
    requests: dict[int, Any] = {}
    ended: deque[str] = deque(maxlen=10_000)  # how each request ended ("end", "cancelled", "error"), in order

    def relay(rid: int, message: tuple) -> None:
        if message[0] != "tokens":
            requests.pop(rid, None)
            ended.append(message[0])
        send(rid, message)

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "submit":
            _, rid, owner, prompt, sides, seed, names, paths = message
            req = scheduler.request(owner, prompt, sides, seed, adapters=names)
            req.relay = lambda m, rid=rid: relay(rid, m)
            requests[rid] = req
            try:
                adapters.ensure(paths)
                scheduler.submit(req)
            except UserError as exc:
                req.send("error", exc)
        elif message[0] == "cancel":
            req = requests.get(message[1])
            if req is not None:
                req.cancel.set()
        elif message[0] == "stats":
            stats = scheduler.stats
            send(None, ("stats", {"forwards": stats.forwards, "rows_per_forward": list(stats.rows_per_forward),
                                  "admitted": list(stats.admitted), "ended": list(ended)}))
        elif message[0] == "close":
            scheduler.close()
            return


if __name__ == "__main__":
    try:
        sys.exit(child_main(int(sys.argv[1])))
    except KeyboardInterrupt:  # not from a terminal (own session); a kill from outside: leave quietly
        sys.exit(130)
