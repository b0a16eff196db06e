"""The metrics stream of a running job: a transformers TrainerCallback writing the run directory.

Owns: `RunCallback`, which every method's trainer gets. It appends each log event to metrics.jsonl (with
step, epoch and wall time), keeps status.json's progress current (step, max_steps, ETA; at most twice a
second), prints one readable progress line per log event, and turns a stop request (SIGTERM/Ctrl-C, see
alignui.training.job.StopFlag) into "save a checkpoint now, then stop".

Invariants:
- Nothing here touches the model or the data: the callback costs a file append per log event and an
  atomic rewrite of status.json at most every `status_interval` seconds (bench/dpo_overhead.py measures it).
- Metric names are TRL's own (loss, rewards/accuracies, rewards/margins, ...); eval metrics keep the
  `eval_` prefix. The UI's curves and the watch-outs read these names.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from transformers import TrainerCallback

from alignui.runs import RunDir, format_eta  # noqa: F401  (format_eta: re-exported, it lived here)

#: Metrics printed on the progress line, in order (whatever the method logs of them).
PROGRESS_KEYS = (("loss", "loss"), ("rewards/accuracies", "acc"), ("rewards/margins", "margin"),
                 ("rewards/chosen", "chosen"), ("rewards/rejected", "rejected"), ("reward", "reward"))


class RunCallback(TrainerCallback):
    """Stream metrics and progress into `run`; stop (after a checkpoint) when `should_stop()` turns true."""

    def __init__(self, run: RunDir, *, should_stop: Callable[[], bool] = lambda: False,
                 log: Callable[[str], None] = print, status_interval: float = 0.5):
        self.run = run
        self.should_stop = should_stop
        self.log = log
        self.status_interval = status_interval
        self._t0 = time.monotonic()
        self._first_step: int | None = None
        self._last_status = 0.0
        self.stopped_at: int | None = None

    # -- progress -----------------------------------------------------------------------------------------
    def _eta(self, state) -> float | None:
        done = state.global_step - (self._first_step or 0)
        if done <= 0 or not state.max_steps:
            return None
        rate = (time.monotonic() - self._t0) / done
        return rate * (state.max_steps - state.global_step)

    def _write_status(self, state, force: bool = False, **extra: Any) -> None:
        now = time.monotonic()
        if not force and now - self._last_status < self.status_interval:
            return
        self._last_status = now
        self.run.update_status(step=state.global_step, max_steps=state.max_steps, epoch=state.epoch,
                               eta_s=self._eta(state), elapsed_s=round(now - self._t0, 2), **extra)

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0 = time.monotonic()
        self._first_step = state.global_step
        self._write_status(state, force=True, phase="training")

    def on_step_end(self, args, state, control, **kwargs):
        self._write_status(state)
        if self.should_stop():
            if self.stopped_at is None:
                self.log(f"stop requested: saving a checkpoint at step {state.global_step}, then stopping")
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        record = {"step": state.global_step, "epoch": state.epoch, "time": round(time.time(), 3), **logs}
        self.run.append_metrics(record)
        if any(k.startswith("eval_") for k in logs):
            self.log(f"eval at step {state.global_step}: " + _fmt(logs, prefix="eval_"))
        elif "loss" in logs:
            self.log(f"step {state.global_step}/{state.max_steps} {_fmt(logs)} (ETA {format_eta(self._eta(state))})")

    def on_train_end(self, args, state, control, **kwargs):
        self._write_status(state, force=True)


def _fmt(logs: dict[str, Any], prefix: str = "") -> str:
    parts = []
    for key, short in PROGRESS_KEYS:
        value = logs.get(prefix + key)
        if isinstance(value, (int, float)):
            parts.append(f"{short} {value:.4g}")
    return " ".join(parts)
