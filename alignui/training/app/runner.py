"""The app-side JobRunner: launches `python -m alignui train <method>` subprocesses and keeps the index current.

Owns: one job at a time (one GPU), start / cancel / resume, watching each job until it ends, writing the
failure a job could not write itself (SIGKILL, the OOM killer, a crash before its handlers were installed:
the run is marked failed with the last lines of its log), re-attaching to jobs that outlived an app restart,
and copying every run directory's state into the database index (Store.upsert_run), which the Runs table and
the arena's model list read. The run directory is the only truth; the index is derived from it by one watcher
(the index loop, which sees app- and CLI-started runs alike) plus the final write of a job that just ended.

Invariants:
- Training never runs in the web process: the job is the very command a user can type (see
  alignui.cli.train), started in its own session so Ctrl-C on the app does not kill it.
- While a job is alive only the job writes status.json; the runner writes it only after the process is gone.
- Privileged: start, cancel and resume call alignui.team.identity.require(identity, "train").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import alignui
from alignui.errors import ConflictError
from alignui.team.identity import Identity, require
from alignui.paths import StorageLayout
from alignui.data.snapshot import resolve_snapshot
from alignui.training.config import TrainConfig
from alignui.training.methods import get_method
from alignui.runs import ACTIVE_STATES, RunDir, list_run_dirs, now_iso

PACKAGE_ROOT = Path(alignui.__file__).resolve().parents[1]  # the checkout holding alignui/, put on the job's path


@dataclass
class _Pending:
    run: RunDir
    method: str
    extra: list[str]


@dataclass
class _Active:
    run: RunDir
    pid: int
    proc: subprocess.Popen | None  # None for a job adopted after an app restart (not our child)
    cancel_requested: bool = False
    monitor: threading.Thread | None = None


def pid_alive(pid: int, run_id: str) -> bool:
    """True when `pid` is a live process running this run (guards against a reused pid)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True  # no /proc (macOS): trust the pid
    return run_id in cmdline


def exit_reason(code: int | None) -> str:
    if code is None:
        return "the job process disappeared"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (often the kernel's out-of-memory killer)" if -code == signal.SIGKILL else ""
        return f"the job was killed by {name}{hint}"
    return f"the job exited with code {code}"


class JobRunner:
    """Owned by the web app (one per data root); `store` may be None (then nothing is indexed)."""

    def __init__(self, layout: StorageLayout, store=None, *, default_base_model: str | Callable[[], str] = "",
                 python: str = sys.executable, poll_s: float = 0.5, kill_grace_s: float = 30.0,
                 index_every_s: float = 1.0):
        self.layout, self.store = layout, store
        self.default_base_model = default_base_model
        self.python, self.poll_s, self.kill_grace_s = python, poll_s, kill_grace_s
        self._lock = threading.RLock()
        self._active: dict[str, _Active] = {}
        self._pending: list[_Pending] = []
        self._synced: dict[str, int] = {}
        self._sync_lock = threading.Lock()  # one index write at a time from this runner's threads
        self._closing = threading.Event()
        self.index_problem: str | None = None  # the last failed index write, shown in the Train tab
        self.reconcile()
        self._indexer: threading.Thread | None = None
        if index_every_s:  # the one watcher of run directories: app- and CLI-started runs reach the index
            self._indexer = threading.Thread(target=self._index_loop, args=(index_every_s,), daemon=True,
                                             name="alignui-runs-index")
            self._indexer.start()

    # -- queries ------------------------------------------------------------------------------------------
    def active_run(self) -> str | None:
        with self._lock:
            return next(iter(self._active), None)

    def is_cancelling(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._active and self._active[run_id].cancel_requested

    # -- start / resume / cancel ----------------------------------------------------------------------------
    def start(self, method_name: str, snapshot_id: str | None, config: TrainConfig, identity: Identity) -> RunDir:
        """Pre-flight, create the run directory and launch the job (or queue it behind the running one)."""
        from alignui.training.preflight import check

        require(identity, "train")
        method = get_method(method_name)
        default = self.default_base_model() if callable(self.default_base_model) else self.default_base_model
        if not config.base_model and default:
            config = type(config).from_mapping({"base_model": default}, base=config)
        snap = resolve_snapshot(self.layout.root, snapshot_id, allow_paths=False)
        report, _, _ = check(config, self.layout.root, snap, log=lambda line: None)
        report.raise_if_refused()
        run = RunDir.create_new(self.layout.ensure(), method.name)
        run.write_config(method.name, config.to_dict())
        run.update_status(state="queued", method=method.name, phase="waiting", started_by=identity.name,
                          created_at=now_iso())
        self._submit(_Pending(run, method.name, ["--snapshot", snap.id, "--config", str(run.config_path)]))
        return run

    def resume(self, run_id: str, identity: Identity) -> RunDir:
        """Continue a failed or cancelled run from its last checkpoint (same run id, same directory)."""
        require(identity, "train")
        run = RunDir.open(self.layout, run_id)
        method, _ = run.read_config()
        with self._lock:
            state = run.state
            if state not in ("failed", "cancelled") or any(p.run.id == run_id for p in self._pending):
                raise ConflictError(f"run {run_id} is {state}: only failed or cancelled runs can be resumed")
            # pid None: the attempt that just ended (maybe still exiting) no longer owns this status
            run.update_status(state="queued", phase="waiting", error=None, finished_at=None, pid=None)
            self._submit(_Pending(run, method or "dpo", ["--resume"]))
        return run

    def cancel(self, run_id: str, identity: Identity) -> str:
        """A queued run is dropped; a running one checkpoints and stops (SIGTERM), or is killed after a grace time."""
        require(identity, "train")
        with self._lock:
            for waiting in self._pending:
                if waiting.run.id == run_id:
                    self._pending.remove(waiting)
                    waiting.run.update_status(state="cancelled", phase="stopped", finished_at=now_iso(),
                                              error="cancelled before it started")
                    self._safe_sync(waiting.run)
                    return f"Cancelled {run_id} before it started."
            active = self._active.get(run_id)
            if active is None:
                raise ConflictError(f"run {run_id} is not running, so there is nothing to cancel")
            active.cancel_requested = True
            _signal_group(active.pid, signal.SIGTERM)
        timer = threading.Timer(self.kill_grace_s, self._kill_if_alive, args=(run_id, active.pid))
        timer.daemon = True
        timer.start()
        return f"Cancelling {run_id}: it saves a checkpoint and stops (Resume continues from there)."

    def queued(self) -> list[str]:
        with self._lock:
            return [p.run.id for p in self._pending]

    def shutdown(self, *, cancel: bool = False, wait_s: float = 60.0) -> None:
        """Stop watching; with `cancel`, drop the queue and stop running jobs (tests; the app leaves jobs running)."""
        self._closing.set()
        with self._lock:
            if cancel:
                self._pending.clear()
            active = list(self._active.values()) if cancel else []
        for a in active:
            a.cancel_requested = True
            _signal_group(a.pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        for a in active:
            while pid_alive(a.pid, a.run.id) and time.monotonic() < deadline:
                if a.proc is not None and a.proc.poll() is not None:
                    break
                time.sleep(0.2)
            if a.proc is not None and a.proc.poll() is None:
                _signal_group(a.pid, signal.SIGKILL)
        for a in active:
            if a.monitor is not None:
                a.monitor.join(timeout=10)  # its last index write happens before the caller closes the store
        if self._indexer is not None:  # likewise the index loop's (it holds the Store until it ends)
            self._indexer.join(timeout=10)

    def _submit(self, pending: "_Pending") -> None:
        """Launch now when no job runs, else queue (one training job at a time on this machine)."""
        with self._lock:
            if self._active:
                self._pending.append(pending)
                pending.run.update_status(phase=f"queued behind {next(iter(self._active))}")
            else:
                self._launch(pending.run, pending.method, pending.extra)
        self._safe_sync(pending.run)

    def _launch_next(self) -> None:
        with self._lock:
            if self._active or not self._pending:
                return
            nxt = self._pending.pop(0)
            self._launch(nxt.run, nxt.method, nxt.extra)
        self._safe_sync(nxt.run)

    def _launch(self, run: RunDir, method: str, extra: list[str]) -> None:
        cmd = [self.python, "-m", "alignui", "train", method, "--storage", str(self.layout.root.resolve()),
               "--run-id", run.id, *extra]
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)}
        with run.log_path.open("ab") as log:
            log.write(f"\n[{now_iso()}] $ {' '.join(cmd)}\n".encode())
            log.flush()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=PACKAGE_ROOT, env=env, start_new_session=True)
        run.update_status(pid=proc.pid, phase="starting")
        self._watch(_Active(run=run, pid=proc.pid, proc=proc))

    def _watch(self, active: _Active) -> None:
        self._active[active.run.id] = active
        active.monitor = threading.Thread(target=self._monitor, args=(active,), daemon=True,
                                          name=f"alignui-run-{active.run.id}")
        active.monitor.start()

    def _kill_if_alive(self, run_id: str, pid: int) -> None:
        """The end of a cancel's grace time: kill that attempt if it still runs (never a later, resumed one)."""
        with self._lock:
            active = self._active.get(run_id)
        if active is not None and active.pid == pid and pid_alive(pid, run_id):
            _signal_group(pid, signal.SIGKILL)

    # -- watching -----------------------------------------------------------------------------------------
    def _monitor(self, active: _Active) -> None:
        # waits for the process only: the index loop copies the job's own status.json changes into the index
        while True:
            code = active.proc.poll() if active.proc is not None else (
                None if pid_alive(active.pid, active.run.id) else -1)
            if code is not None:
                break
            time.sleep(self.poll_s)
        self._finish(active, None if active.proc is None else code)

    def _finish(self, active: _Active, code: int | None) -> None:
        run = active.run
        status = run.read_status()
        # the job could not write its own ending (and no newer attempt has taken the run over since)
        if status.get("state") in ACTIVE_STATES and status.get("pid") == active.pid:
            tail = run.log_tail(12)
            if active.cancel_requested:
                run.update_status(state="cancelled", phase="stopped", finished_at=now_iso(),
                                  error=f"cancelled; {exit_reason(code)}", log_tail=tail)
            else:
                run.update_status(state="failed", phase="stopped", finished_at=now_iso(), log_tail=tail,
                                  error=f"{exit_reason(code)}; last log lines:\n{tail}")
        self._safe_sync(run)  # indexed before the run stops counting as active
        with self._lock:
            self._active.pop(run.id, None)
        self._launch_next()

    def reconcile(self) -> None:
        """At start: re-attach to jobs still running, fail the ones that died with the old app, index all."""
        for run in list_run_dirs(self.layout):
            status = run.read_status()
            if status.get("state") in ACTIVE_STATES:
                pid = status.get("pid")
                if isinstance(pid, int) and pid_alive(pid, run.id):
                    self._watch(_Active(run=run, pid=pid, proc=None))
                    continue
                if status.get("state") == "queued":
                    run.update_status(state="cancelled", phase="stopped", finished_at=now_iso(),
                                      error="the app restarted before this queued run started; Resume starts it")
                else:
                    run.update_status(state="failed", phase="stopped", finished_at=now_iso(),
                                      log_tail=run.log_tail(12), error="the job stopped while the app was not "
                                      "running (no final status); Resume continues from the last checkpoint")
            self._safe_sync(run)

    # -- the database index -------------------------------------------------------------------------------
    def _index_loop(self, every_s: float) -> None:
        while not self._closing.wait(every_s):
            try:
                self.sync_all()
            except Exception as exc:  # a closed store at shutdown, a vanished directory: try again later
                if self._closing.is_set():
                    return
                self._index_failed("runs index", exc)

    def sync_all(self) -> None:
        """Index every run directory whose status changed since the last sync (runs made by the CLI too)."""
        for run in list_run_dirs(self.layout):
            try:
                mtime = run.status_path.stat().st_mtime_ns
            except FileNotFoundError:
                continue
            if self._synced.get(run.id) != mtime:
                self._safe_sync(run)

    def _safe_sync(self, run: RunDir) -> None:
        try:
            self.sync(run)
        except Exception as exc:  # the index is a cache of the run directory: never let it kill a monitor
            self._index_failed(f"run {run.id}", exc)

    def _index_failed(self, what: str, exc: Exception) -> None:
        self.index_problem = (f"the runs index could not be updated ({what}: {type(exc).__name__}: {exc}); the run "
                              "directories are intact and the index is rebuilt from them on the next success")
        print(f"alignui: {self.index_problem}", file=sys.stderr)

    def sync(self, run: RunDir) -> None:
        if self.store is None:
            return
        try:
            mtime = run.status_path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = 0
        with self._sync_lock:
            self.store.upsert_run(run.id, **index_row(run))
            self._synced[run.id] = mtime
            self.index_problem = None


def index_row(run: RunDir) -> dict[str, Any]:
    """The database index fields of a run directory (Store.upsert_run keyword arguments)."""
    method, settings = run.read_config()
    status, lineage = run.read_status(), run.read_lineage()
    summary = status.get("summary") or {}
    state = status.get("state") if status.get("state") in ("queued", "running", "done", "failed", "cancelled") \
        else "failed"
    metrics = {"eval": summary.get("eval") or {}, "train": summary.get("train") or {},
               "verdict": summary.get("verdict"), "watchouts": summary.get("watchouts") or [],
               "step": status.get("step"), "max_steps": status.get("max_steps")}
    return dict(method=method or lineage.get("method") or status.get("method") or "unknown", status=state,
                config=settings, metrics=metrics,
                adapter_path=str(run.adapter_dir) if state == "done" and run.has_adapter else None,
                snapshot_id=lineage.get("snapshot"), snapshot_sha256=lineage.get("snapshot_sha256"),
                base_model=lineage.get("base_model") or settings.get("base_model") or None,
                parent_run=lineage.get("parent_run"), error=status.get("error"),
                finished_at=_parse_time(status.get("finished_at")),
                created_at=_parse_time(status.get("created_at") or lineage.get("created_at")
                                       or status.get("started_at")))


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)).replace(tzinfo=None) if text else None
    except ValueError:
        return None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the job leads its own session/group (start_new_session=True)
    except (ProcessLookupError, PermissionError):
        pass


def job_runner(ctx) -> JobRunner:
    """The one JobRunner of an app context (AppContext.job_runner makes it on first use and closes it)."""
    return ctx.job_runner()
