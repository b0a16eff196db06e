"""Jobs past one process: the supervisor that runs a job under `accelerate launch` (DDP, DeepSpeed, FSDP).

`python -m alignui train <method> --set num_processes=N [--set accelerate_config=NAME|FILE]` starts as one
process, as always (the app's runner launches exactly that and owns its process group). When the config asks
for N > 1 processes or an accelerate config, that process becomes the job's SUPERVISOR: it writes config.yaml,
then runs accelerate's own launcher

    python -m accelerate.commands.launch --num_processes N [--config_file F | --multi_gpu] --num_machines 1
        --main_process_port P -m alignui train <method> --run-id RUN (--config RUN/config.yaml --snapshot S | --resume)

whose N ranks run the ordinary job envelope (alignui.training.job.execute) in the same run directory; rank 0
writes status/metrics/adapter, other ranks write to ranks/<k>/ (alignui.training.ranks). On CPU `--multi_gpu`
still works: accelerate sees no CUDA and picks MULTI_CPU with the gloo backend.

Invariants:
- One job, one owner: status.json's pid is the supervisor's while the job lives; the ranks' output goes to
  the run's one log.txt (the launcher's stdout), and a CLI user sees that log on the terminal.
- Cancel (SIGTERM or Ctrl-C on the supervisor) reaches every rank: torch's elastic agent starts each rank in
  its own session, so the supervisor signals them itself; ranks stop at the same step (ranks.synced_stop),
  checkpoint and write `cancelled`. Ranks also exit on their own within a second of the supervisor's death.
- A rank that dies fails the job: the agent ends the others, and when no rank could write a final state
  the supervisor writes `failed` with the log's last lines. Nothing is left running after the supervisor returns.
- Import-light: config validation imports this module in the web process (no torch at import).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from alignui.training.config import CONFIGS_DIR, TrainConfigError
from alignui.training.ranks import ENV_JOB_PID, launched

ACCELERATE_DIR = CONFIGS_DIR / "accelerate"
NAMED_CONFIGS = ("ddp", "zero2", "zero3", "zero3_offload", "fsdp")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def resolve_accelerate_config(value: str) -> Path | None:
    """The accelerate config file `value` names: '' = none, a shipped name (configs/accelerate/<name>.yaml) or a
    path; raises TrainConfigError when there is no such file."""
    value = value.strip()
    if not value:
        return None
    path = ACCELERATE_DIR / f"{value}.yaml" if value in NAMED_CONFIGS else Path(value).expanduser()
    if not path.is_file():
        raise TrainConfigError(f"accelerate_config {value!r}: no such file; use one of {', '.join(NAMED_CONFIGS)} "
                               f"(configs/accelerate/) or a path to an accelerate YAML config")
    return path.resolve()


def check_settings(config) -> None:
    """TrainConfig validation of num_processes / accelerate_config (cheap: file checks only)."""
    if config.num_processes < 1:
        raise TrainConfigError(f"num_processes must be at least 1, got {config.num_processes}")
    if config.num_processes > 1 and config.device == "mps":
        raise TrainConfigError("num_processes > 1 needs CUDA GPUs or the CPU; set device=cuda or cpu")
    resolve_accelerate_config(config.accelerate_config)


def engine(config) -> dict[str, Any]:
    """What the job's accelerate config asks for: {'type', 'zero_stage', 'offload', 'file'} (DDP without one)."""
    import yaml

    path = resolve_accelerate_config(config.accelerate_config)
    if path is None:
        return {"type": "DDP" if config.num_processes > 1 else "single", "zero_stage": None, "offload": False,
                "file": None}
    data = yaml.safe_load(path.read_text()) or {}
    ds = data.get("deepspeed_config") or {}
    kind = str(data.get("distributed_type", "NO"))
    offload = any(str(ds.get(k, "none")) not in ("none", "None") for k in ("offload_optimizer_device",
                                                                            "offload_param_device"))
    offload = offload or bool((data.get("fsdp_config") or {}).get("fsdp_offload_params"))
    return {"type": kind, "zero_stage": ds.get("zero_stage"), "offload": offload, "file": str(path)}


def needs_launch(config) -> bool:
    """True in the first process of a job that must run under accelerate (never inside a launched rank)."""
    return (config.num_processes > 1 or bool(config.accelerate_config.strip())) and not launched()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mixed_precision(config) -> str:
    """accelerate's --mixed_precision for this job: the dtype alignui's setup picks (fp32 on CPU: 'no')."""
    from alignui.training.common import resolve_setup

    name = resolve_setup(config).dtype_name
    return "bf16" if name.startswith("bfloat16") else "fp16" if name.startswith("float16") else "no"


def launch_command(method: str, storage: Path, run, config, snapshot, *, resume: bool) -> list[str]:
    """The `accelerate launch` command line that runs `method` for `run` on config.num_processes ranks."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(config.num_processes),
           "--num_machines", "1", "--main_process_port", str(free_port()), "--monitor_interval", "0.5"]
    path = resolve_accelerate_config(config.accelerate_config)
    cmd += ["--mixed_precision", mixed_precision(config)]  # alignui's dtype choice wins over the file's
    cmd += ["--config_file", str(path)] if path is not None else ["--multi_gpu", "--dynamo_backend", "no"]
    cmd += ["-m", "alignui", "train", method, "--storage", str(Path(storage).resolve()), "--run-id", run.id]
    if resume:
        return cmd + ["--resume"]
    return cmd + ["--config", str(run.config_path), "--snapshot", str(Path(snapshot.path).resolve())]


def rank_environment(config) -> dict[str, str]:
    env = {**os.environ, ENV_JOB_PID: str(os.getpid()), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)}
    if config.cpu_threads:
        env["OMP_NUM_THREADS"] = str(config.cpu_threads)
    return env


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"the launcher was killed by {signal.Signals(-code).name}"
    return f"the launcher exited with code {code}"


def rank_error(run) -> str | None:
    """The first error a rank reported in the log (its `error: ...` line or a tagged failure), if any."""
    for line in run.log_tail(200).splitlines():
        text = line.strip()
        if text.startswith("error: ") or (text.startswith("[rank ") and "] failed:" in text):
            return text.removeprefix("error: ")
    return None


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _signal_all(procs: list, sig: int) -> None:
    for p in procs:
        try:
            p.send_signal(sig)
        except Exception:  # psutil.Error: already gone
            pass


class _LogEcho(threading.Thread):
    """Copies what the ranks append to log.txt onto this process's stdout (a CLI user watching the terminal)."""

    def __init__(self, path: Path):
        super().__init__(daemon=True, name="alignui-log-echo")
        self.path, self.done = path, threading.Event()
        self.offset = path.stat().st_size if path.exists() else 0

    def run(self) -> None:
        while True:
            finished = self.done.wait(0.3)
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
            self.offset += len(chunk)
            if chunk:
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
            if finished:
                return


def _stdout_is(path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(path))
    except (OSError, ValueError, AttributeError):
        return False


def _wait(proc: subprocess.Popen, stop, poll_s: float = 0.3) -> tuple[int, bool]:
    """Wait for the launcher; forward a stop request to every rank once. Returns (exit code, forwarded)."""
    forwarded, seen = False, {}
    try:
        while proc.poll() is None:
            for p in _descendants(proc.pid):
                seen[p.pid] = p
            if stop.is_set() and not forwarded:
                _signal_all(list(seen.values()), signal.SIGTERM)
                forwarded = True
            time.sleep(poll_s)
    except KeyboardInterrupt:  # a second Ctrl-C: stop now, no checkpoint
        _signal_all([*_descendants(proc.pid), *seen.values()], signal.SIGKILL)
        proc.kill()
        proc.wait()
        raise
    finally:
        _signal_all([p for p in seen.values() if p.is_running()], signal.SIGKILL)  # nothing outlives the job
    return proc.returncode, forwarded


def supervise(method, layout, plan, *, resume: bool, stop) -> dict[str, Any]:
    """Run the job `plan` describes on config.num_processes ranks; returns the summary rank 0 wrote."""
    from alignui.runs import now_iso
    from alignui.training.job import JobCancelled, JobFailed, stop_on_signals

    run, config = plan.run, plan.config
    run.write_config(method.name, config.to_dict())
    created = run.read_status().get("created_at") or now_iso()
    run.update_status(state="running", method=method.name, phase=f"launching {config.num_processes} processes",
                      pid=os.getpid(), error=None, started_at=now_iso(), finished_at=None, created_at=created,
                      num_processes=config.num_processes)
    cmd = launch_command(method.name, layout.root, run, config, plan.snapshot, resume=resume)
    echo = None if _stdout_is(run.log_path) else _LogEcho(run.log_path)
    with run.log_path.open("ab") as log:
        log.write(f"[{now_iso()}] alignui: {config.num_processes} processes: $ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=rank_environment(config))
    if echo is not None:
        echo.start()
    try:
        with stop_on_signals(stop):
            code, _ = _wait(proc, stop)
    finally:
        if echo is not None:
            echo.done.set()
            echo.join(timeout=5)
    status = run.read_status()
    state = status.get("state")
    if state == "done":
        return {"run": run.id, "status": "done", "path": str(run.path), **(status.get("summary") or {})}
    if state in ("running", "queued"):  # no rank wrote an ending: a rank was killed, or the launcher failed
        state = "cancelled" if stop.is_set() else "failed"
        error = f"{'cancelled; ' if stop.is_set() else ''}{rank_error(run) or exit_reason(code)} (accelerate " \
                f"launch, {config.num_processes} processes); last log lines:\n{run.log_tail(12)}"
        run.update_status(state=state, phase="stopped", error=error, log_tail=run.log_tail(12),
                          finished_at=now_iso())
    error = run.read_status().get("error") or exit_reason(code)
    first = str(error).splitlines()[0]
    if state == "cancelled":
        raise JobCancelled(first)
    raise JobFailed(f"run {run.id} failed: {first} (log: {run.log_path})")


def check_processes(report, config, setup) -> None:
    """Pre-flight for processes: effective batch, memory per device (and on CPU, for all ranks together), and
    refusals for what cannot work (more ranks than GPUs, ZeRO-3 with 4-bit, DeepSpeed/FSDP on CPU or missing)."""
    import importlib.util

    n, kind = config.num_processes, engine(config)
    report.num_processes, report.engine = n, kind["type"]
    report.effective_batch = config.per_device_train_batch_size * config.gradient_accumulation_steps * n
    deepspeed, fsdp = kind["type"] == "DEEPSPEED", kind["type"] == "FSDP"
    if report.memory_bytes and (fsdp or kind["zero_stage"] == 3):  # weights are sharded across the ranks
        weights = report.memory_parts.get("weights", 0)
        report.memory_per_device = report.memory_bytes - weights + (0 if kind["offload"] else weights // n)
    else:
        report.memory_per_device = report.memory_bytes
    if setup.device == "cuda":
        import torch

        if n > torch.cuda.device_count():
            report.refusals.append(f"num_processes={n} but this machine has {torch.cuda.device_count()} CUDA "
                                   "GPU(s): one process per GPU; lower num_processes")
    elif n > 1 or deepspeed or fsdp:
        if deepspeed or fsdp:
            report.refusals.append(f"accelerate_config={config.accelerate_config} ({kind['type']}) needs CUDA GPUs; "
                                   "on CPU leave accelerate_config empty (DDP over gloo)")
        if n > (os.cpu_count() or 1):
            report.warnings.append(f"num_processes={n} is more than this machine's {os.cpu_count()} CPU cores: "
                                   "the processes will slow each other down")
        if report.memory_bytes and report.available_bytes and n * report.memory_bytes > report.available_bytes:
            report.refusals.append(f"{n} processes need about {n * report.memory_bytes / 2 ** 30:.1f} GiB of RAM "
                                   f"together, {report.available_bytes / 2 ** 30:.1f} GiB is free: lower "
                                   "num_processes, the batch size or max_length")
    if deepspeed and kind["zero_stage"] == 3 and config.load_in_4bit:
        report.refusals.append("DeepSpeed ZeRO-3 cannot shard a 4-bit (bitsandbytes) base model: use zero2 or "
                               "fsdp with load_in_4bit, or turn load_in_4bit off")
    if deepspeed and importlib.util.find_spec("deepspeed") is None:
        report.refusals.append(f"accelerate_config={config.accelerate_config} needs DeepSpeed: pip install deepspeed")
