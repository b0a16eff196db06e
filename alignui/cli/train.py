"""`python -m alignui train <method> ...`: the CLI handler (foreground, never opens the database).

Owns: the train subcommand's extra flags and mapping them onto alignui.training.job.execute. The app's
runner launches exactly this command as a subprocess (with --run-id, and --resume to continue a run).

    python -m alignui train dpo [--snapshot ID|PATH] [--config YAML] [--preset NAME] [--set key=value ...]
                                [--run-id RUN] [--resume] [--storage DIR]

The summary printed as the last line of stdout: {"run", "status", "path", "adapter", "steps", "train",
"eval", "verdict", "watchouts", "params_moved"}.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags beyond the contract's --snapshot/--config/--set (added by alignui.cli.main)."""
    parser.add_argument("--preset", help="preset name inside a presets file (e.g. configs/dpo.yaml: cpu-demo)")
    parser.add_argument("--run-id", help="use this run id (the app pre-creates the run directory)")
    parser.add_argument("--resume", action="store_true", help="continue --run-id from its last checkpoint")


def cmd_train(args: argparse.Namespace) -> dict:
    from alignui.serving.loading import skip_bitsandbytes_without_cuda

    skip_bitsandbytes_without_cuda()  # before trl/peft import it: no CPU "kernels" warning on every run
    from alignui.cli.main import storage_of
    from alignui.training.config import parse_sets
    from alignui.training.job import execute

    _check_run_id(getattr(args, "run_id", None))
    return execute(args.method, storage=storage_of(args), snapshot=args.snapshot,
                   config_file=Path(args.config) if args.config else None, preset=getattr(args, "preset", None),
                   overrides=parse_sets(args.set), run_id=getattr(args, "run_id", None),
                   resume=bool(getattr(args, "resume", False)))


def _check_run_id(run_id: str | None) -> None:
    """A --run-id names a folder under storage/runs: refuse one that is empty or could leave it, before any work."""
    from alignui.errors import UserError, quoted
    from alignui.paths import UnsafeNameError, safe_child

    if run_id is None:
        return
    try:
        safe_child(Path("runs"), run_id)
    except UnsafeNameError:
        raise UserError(f"--run-id {quoted(run_id)} is not a usable run id: use letters, digits, '.', '-' and '_' "
                        "(no '/', no '..'; e.g. dpo-try-2), or leave --run-id out for a fresh one") from None
