"""The job envelope: what `python -m alignui train <method>` does around any method's training function.

Owns: creating (or reopening, to resume) the run directory, writing config.yaml and lineage.json, the
pre-flight check, status.json's life cycle (running -> done | failed | cancelled), turning SIGTERM/Ctrl-C into
"checkpoint, then stop", and turning any failure (bad input, out of memory, a crash) into a failed status that
carries the reason and the last log lines. A method only writes `job(job: Job) -> dict`.

Invariants:
- Never opens the database (the app holds the DuckDB file); the app indexes the run directory instead.
- Every run that started ends with a final state in status.json, unless the process is killed outright
  (SIGKILL, the OOM killer); the app's runner then writes the failure from the outside.
- A failure always reaches the caller as a UserError subclass with one line (the CLI prints `error: ...`).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from alignui.errors import UserError
from alignui.paths import StorageLayout
from alignui.data.snapshot import SnapshotRef, resolve_snapshot
from alignui.training.common import Setup
from alignui.training.config import TrainConfig, build_config
from alignui.training import launch, ranks
from alignui.training.methods import Method, get_method
from alignui.runs import RunDir, now_iso, run_lineage


class JobFailed(UserError):
    """The job ended without a result; the message says why (details in the run's log.txt)."""


class JobCancelled(JobFailed):
    """Stopped on request; the last checkpoint can be resumed."""


@dataclass
class StopFlag:
    """Set from a signal handler (SIGTERM from the app's Cancel, or Ctrl-C); read by the training callback."""

    event: threading.Event = field(default_factory=threading.Event)

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


@dataclass
class Job:
    """Everything a method's training function gets."""

    method: Method
    run: RunDir
    config: TrainConfig
    snapshot: SnapshotRef
    storage: Path
    setup: Setup
    base: str  # the resolved base model: an absolute local path or a hub id
    resume_from: Path | None
    stop: StopFlag
    log: Callable[[str], None]

    def check_stop(self, where: str) -> None:
        if self.stop.is_set():
            raise JobCancelled(f"run {self.run.id} cancelled {where}")


class Tee:
    """Job log lines go to stdout and, unless stdout already IS log.txt (the app redirects it), to log.txt."""

    def __init__(self, run: RunDir, echo: Callable[[str], str | None] | None = None):
        self.echo = echo  # what to print for a line (None: print it as is; the function may return None)
        run.log_path.touch()
        try:
            same = os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(run.log_path))
        except (OSError, ValueError, AttributeError):
            same = False
        self.file = None if same else run.log_path.open("a", buffering=1)

    def __call__(self, line: str) -> None:
        shown = line if self.echo is None else self.echo(line)
        if shown is not None:
            print(shown, flush=True)
        if self.file is not None:
            self.file.write(line + "\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


@contextmanager
def stop_on_signals(stop: StopFlag) -> Iterator[None]:
    """SIGTERM and the first Ctrl-C set `stop` (a checkpoint is saved); a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum, frame):
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


@dataclass
class _Plan:
    run: RunDir
    config: TrainConfig
    snapshot: SnapshotRef
    checked: tuple | None = None  # (report, setup, base) when the pre-flight already ran


def set_cpu_threads(config) -> None:
    """Apply `cpu_threads` before the job's first torch op (pre-flight builds the model on the meta device,
    which already runs a few CPU ops): an OpenMP team created at the default size keeps spinning beside the
    smaller one and costs 5-25% on 2 cores."""
    if config.cpu_threads:
        import torch

        torch.set_num_threads(config.cpu_threads)


def _prepare_run(method: Method, layout: StorageLayout, *, run_id: str | None, resume: bool,
                 config_file: Path | None, preset: str | None, overrides: dict[str, Any],
                 snapshot: str | None) -> _Plan:
    """The run directory, config and snapshot for a new run, one the app pre-created, or a resumed one.

    A new command-line run is checked (config, snapshot, pre-flight) before its directory is created, so a
    refused or mistyped command leaves nothing behind.
    """
    cls = method.config_class()
    if resume:
        if not run_id:
            raise UserError("--resume needs --run-id RUN (the run to continue)")
        run = RunDir.open(layout, run_id)
        saved_method, settings = run.read_config()
        if saved_method not in (None, method.name):
            raise UserError(f"run {run_id} is a {saved_method} run, not {method.name}")
        lineage = run.read_lineage()
        snap = resolve_snapshot(layout.root, snapshot or lineage.get("snapshot_path") or lineage.get("snapshot"))
        config = cls.from_mapping({**settings, **overrides})
        set_cpu_threads(config)
        return _Plan(run, config, snap)
    if preset and config_file is None:
        config_file = method.presets_path  # --preset alone names a preset of configs/<method>.yaml
    config = build_config(cls, config_file=config_file, preset=preset, overrides=overrides)
    set_cpu_threads(config)
    snap = resolve_snapshot(layout.root, snapshot)
    if run_id and layout.run_dir(run_id).is_dir():
        return _Plan(RunDir.open(layout, run_id), config, snap)  # pre-created (and pre-flighted) by the app
    from alignui.training import preflight as pf

    quiet_libraries()
    checked = pf.check(config, layout.root, snap, log=lambda line: print(line, file=sys.stderr))  # e.g. which base
    checked[0].raise_if_refused()
    run = RunDir.create(layout, run_id) if run_id else RunDir.create_new(layout, method.name)
    return _Plan(run, config, snap, checked)


def execute(method_name: str, *, storage: Path, snapshot: str | None = None, config_file: Path | None = None,
            preset: str | None = None, overrides: dict[str, Any] | None = None, run_id: str | None = None,
            resume: bool = False, stop: StopFlag | None = None) -> dict[str, Any]:
    """Run one training job in this process (the CLI's foreground contract); returns its summary."""
    method = get_method(method_name)
    if method.unavailable_reason:
        raise UserError(method.unavailable_reason)  # e.g. this TRL moved the method's trainer
    layout = StorageLayout(Path(storage)).ensure()
    plan = _prepare_run(method, layout, run_id=run_id, resume=resume, config_file=config_file, preset=preset,
                        overrides=dict(overrides or {}), snapshot=snapshot)
    stop = stop or StopFlag()
    if launch.needs_launch(plan.config):  # num_processes > 1 or an accelerate config: supervise the ranks
        return launch.supervise(method, layout, plan, resume=resume, stop=stop)
    plan = ranks.as_rank(plan)  # unchanged in a one-process job
    run = plan.run
    log = Tee(run, echo=ranks.echo())
    created = run.read_status().get("created_at") or now_iso()
    run.update_status(state="running", method=method.name, phase="preparing", pid=ranks.owner_pid(), error=None,
                      started_at=now_iso(), finished_at=None, created_at=created)
    try:
        with stop_on_signals(stop):
            summary = _run(method, layout, plan, resume, stop, log)
    except JobCancelled as exc:
        run.update_status(state="cancelled", phase="stopped", error=str(exc), finished_at=now_iso())
        log(f"cancelled: {exc}")
        raise
    except BaseException as exc:
        message = describe_failure(exc)
        if not isinstance(exc, UserError):
            log(traceback.format_exc())
        log(f"failed: {message}")
        run.update_status(state="failed", phase="stopped", error=message, log_tail=run.log_tail(15),
                          finished_at=now_iso())
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise JobFailed(f"run {run.id} failed: {message} (log: {run.log_path})") from exc
    finally:
        log.close()
    run.update_status(state="done", phase="finished", summary=summary, finished_at=now_iso())
    return {"run": run.id, "status": "done", "path": str(run.path), **summary}


def _run(method: Method, layout: StorageLayout, plan: _Plan, resume: bool, stop: StopFlag,
         log: Callable[[str], None]) -> dict[str, Any]:
    from alignui.training import preflight as pf

    quiet_libraries()
    run, config, snap = plan.run, plan.config, plan.snapshot
    resume_from = run.last_checkpoint() if resume else None
    log(f"alignui: {method.name} run {run.id} on snapshot {snap.id}" + (f", resuming from {resume_from.name}"
                                                                        if resume_from else ""))
    for warning in config.warnings():
        log(f"warning: {warning}")
    run.update_status(phase="pre-flight")
    report, setup, base = plan.checked or pf.check(config, layout.root, snap, log=log)
    run.preflight_path.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    log(f"alignui: base model {base}" + ("" if config.base_model else " (none given: what `serve` would serve here)"))
    log(report.markdown().replace("**", ""))
    report.raise_if_refused()
    assert setup is not None
    run.write_config(method.name, config.to_dict())
    if not resume:
        run.write_lineage({"run_id": run.id, "method": method.name, "snapshot": snap.id,
                           "snapshot_path": str(snap.path.resolve()), "snapshot_sha256": snap.sha256,
                           "base_model": config.base_model or base, "base_model_path": base,
                           **run_lineage(snap.manifest, config.parent_run, getattr(config, "init_adapter", "")),
                           "created_at": now_iso()})
    else:
        step = int(resume_from.name.rsplit("-", 1)[-1]) if resume_from else 0
        run.truncate_metrics(after_step=step)  # steps after the checkpoint are trained (and logged) again
        if resume_from is None:
            log("no checkpoint was saved before the stop: training starts over")
    job = Job(method=method, run=run, config=config, snapshot=snap, storage=layout.root, setup=setup, base=base,
              resume_from=resume_from, stop=stop, log=log)
    job.check_stop("before training started")
    return method.job()(job)


def quiet_libraries() -> None:
    """No per-item progress bars or deprecation chatter in log.txt: RunCallback prints one line per log event."""
    import warnings

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)


def describe_failure(exc: BaseException) -> str:
    """One line for status.json and the UI: what happened and, for out-of-memory, what to do."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, MemoryError) or "out of memory" in text.lower() or type(exc).__name__ == "OutOfMemoryError":
        return ("out of memory: lower the batch size or max_length, turn on gradient checkpointing, or use 4-bit "
                f"QLoRA on a GPU ({text[:160]})")
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text[:300]}"
