"""The rank side of a multi-process job (see alignui.training.launch for the supervisor side).

Owns, for a process started by `accelerate launch` under an alignui supervisor:
- `launched()`, `rank()`: whether this process is such a rank, and which;
- `as_rank(plan)`: rank 0 keeps the run directory; rank k > 0 gets a `RankRunDir` whose own files (status,
  metrics, log, config, samples) live in ranks/<k>/ while checkpoints are the shared ones (the Trainer saves on
  the main process and every rank resumes from them), so nothing but rank 0 writes what the app reads;
- `owner_pid()`: the supervisor's pid, which rank 0 keeps in status.json (the runner watches that process);
- `echo()`: what a rank prints to the shared log (rank 0 everything; others only failures, tagged, on
  stderr: a rank k > 0 sends its stdout to ranks/<k>/stdout.txt);
- `synced_stop(flag)`: the stop check every rank makes at each step end, agreed by an all-reduce so all ranks
  stop (and checkpoint) at the same step;
- a watchdog thread: a rank whose supervisor is gone exits within a second (torch's agent starts ranks in
  their own sessions, so a SIGKILL of the supervisor's process group would not reach them).

Outside a launched job every function is the identity / a no-op: one-process jobs do not change.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from alignui.runs import RunDir

ENV_JOB_PID = "ALIGNUI_JOB_PID"  # same name as launch.ENV_JOB_PID (kept import-free of launch)


def launched() -> bool:
    """True in a rank of a distributed launcher (accelerate launch / torchrun set WORLD_SIZE): alignui's own
    supervisor, or a multi-machine `accelerate launch` typed by hand (docs/scale.md)."""
    return "WORLD_SIZE" in os.environ


def supervised() -> bool:
    """True in a rank that alignui's supervisor started (it puts its pid in the environment)."""
    return launched() and ENV_JOB_PID in os.environ


def rank() -> int:
    return int(os.environ.get("RANK", "0")) if launched() else 0


def owner_pid() -> int:
    """The pid status.json names: the supervisor's in a supervised job, else this process's."""
    return int(os.environ[ENV_JOB_PID]) if supervised() else os.getpid()


@dataclass(frozen=True)
class RankRunDir(RunDir):
    """Rank k's view of a run: its own files under <run>/ranks/<k>/, the run's shared checkpoints."""

    shared: Path = Path()

    id = property(lambda self: self.shared.name)
    checkpoints_dir = property(lambda self: self.shared / "checkpoints")


def rank_run(run: RunDir, k: int) -> RankRunDir:
    path = run.path / "ranks" / str(k)
    path.mkdir(parents=True, exist_ok=True)
    return RankRunDir(path=path, shared=run.path)


def as_rank(plan):
    """`plan` for this process: unchanged outside a launched job; in one, the watchdog starts and rank k > 0
    gets its RankRunDir."""
    if not launched():
        return plan
    if supervised():
        start_watchdog(owner_pid())
    k = rank()
    if k == 0:
        return plan
    run = rank_run(plan.run, k)
    sys.stdout = run.path.joinpath("stdout.txt").open("a", buffering=1)  # progress and summary: not the shared log
    return dataclasses.replace(plan, run=run)


def echo() -> Callable[[str], str | None] | None:
    """For alignui.training.job.Tee: None (print every line) on rank 0; on other ranks only failures, tagged."""
    if rank() == 0:
        return None
    k = rank()

    def shown(line: str) -> None:
        if line.startswith(("failed:", "cancelled:", "Traceback")):  # stderr is still the shared log
            print(f"[rank {k}] {line}", file=sys.stderr, flush=True)

    return shown


def synced_stop(is_set: Callable[[], bool]) -> Callable[[], bool]:
    """A stop check that all ranks answer alike (max over ranks); plain `is_set` outside a process group."""

    def check() -> bool:
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return is_set()
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        flag = torch.tensor([1 if is_set() else 0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    return check


def start_watchdog(pid: int, every_s: float = 1.0) -> threading.Thread:
    """Exit this rank (code 70) soon after process `pid` (the supervisor) is gone: dead, a zombie its parent has
    not reaped yet, or its pid reused by another process."""
    import psutil

    try:
        born = psutil.Process(pid).create_time()
    except psutil.Error:
        born = None

    def gone() -> bool:
        try:
            p = psutil.Process(pid)
            return p.status() == psutil.STATUS_ZOMBIE or (born is not None and p.create_time() != born)
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:  # access denied: cannot tell, keep running
            return False

    def watch() -> None:
        while not gone():
            threading.Event().wait(every_s)
        os._exit(70)

    thread = threading.Thread(target=watch, daemon=True, name="alignui-supervisor-watchdog")
    thread.start()
    return thread
