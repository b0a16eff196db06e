"""Experiment tracking beside alignui's own curves: the `report_to` setting (none | tensorboard | trackio | wandb).

Owns: refusing a tracker that is not installed (one line with the pip command), the TrainingArguments keys and
environment each tracker needs so that its files land inside the run directory where the tracker allows it,
and `tracking.json` in the run directory, which says where the metrics went.

Invariants:
- alignui's own metrics.jsonl / status.json (alignui.training.metrics.RunCallback) are written whatever this
  says: a tracker is an extra copy, never the app's source of truth.
- Import-light (no torch, no transformers): TrainConfig validation calls `check_report_to` in the web process.
- Offline by default: wandb runs in offline mode and trackio stays local unless the user sets the tracker's
  own environment (WANDB_MODE, TRACKIO_SPACE_ID) before starting the app or the command.
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

#: tracker -> (Python module that must import, install hint)
TRACKERS = {"tensorboard": ("tensorboard", "pip install tensorboard"),
            "trackio": ("trackio", "pip install trackio"),
            "wandb": ("wandb", "pip install wandb")}
PROJECT = "alignui"


def installed(name: str) -> bool:
    module, _ = TRACKERS[name]
    return importlib.util.find_spec(module) is not None


def check_report_to(name: str) -> None:
    """Raise a TrainConfigError when `name` is unknown or its package is missing here."""
    from alignui.training.config import REPORT_TO, TrainConfigError

    if name not in REPORT_TO:
        raise TrainConfigError(f"report_to must be one of {', '.join(REPORT_TO)}, got {name!r}")
    if name != "none" and not installed(name):
        raise TrainConfigError(f"report_to={name} needs the {TRACKERS[name][0]} package, which is not installed "
                               f"here: {TRACKERS[name][1]} (or set report_to=none)")


def where(name: str, run) -> dict[str, Any]:
    """Where `name`'s copy of the metrics goes for `run` (what tracking.json records)."""
    if name == "tensorboard":
        return {"report_to": name, "dir": str(run.path / "tensorboard"),
                "open": f"tensorboard --logdir {run.path / 'tensorboard'}"}
    if name == "trackio":
        space = os.environ.get("TRACKIO_SPACE_ID")
        return {"report_to": name, "project": PROJECT, "run_name": run.id, "space": space,
                "open": "trackio show --project " + PROJECT}
    if name == "wandb":
        mode = os.environ.get("WANDB_MODE", "offline")
        return {"report_to": name, "project": os.environ.get("WANDB_PROJECT", PROJECT), "run_name": run.id,
                "mode": mode, "dir": str(run.path / "wandb")}
    return {"report_to": "none"}


def tracking_arguments(name: str, run) -> dict[str, Any]:
    """TrainingArguments keys for `name` (report_to, run_name, project); sets the trackers' environment so their
    files land in the run directory. Called in the job process, never in the web process."""
    if name == "none":
        return {"report_to": "none"}
    if name == "tensorboard":
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run.path / "tensorboard")
    elif name == "wandb":
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ["WANDB_DIR"] = str(run.path)
    return {"report_to": [name], "run_name": run.id, "project": PROJECT}


def record(name: str, run) -> None:
    """Write run/tracking.json: where the metrics went (alignui's own files always, plus the tracker's)."""
    info = {"alignui": {"metrics": str(run.metrics_path), "status": str(run.status_path)}, **where(name, run)}
    (run.path / "tracking.json").write_text(json.dumps(info, indent=2))
