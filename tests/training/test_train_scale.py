"""Multi-process settings without training: the shipped accelerate configs (checked by accelerate itself), the
num_processes / accelerate_config / report_to settings, the launch command, pre-flight for processes, and the
rank helpers outside a launched job. The real 2-process runs are in test_train_multiprocess.py."""

import json
import time
import types
from pathlib import Path

import pytest

from alignui.runs import RunDir
from alignui.training import launch, ranks, tracking
from alignui.training.config import CONFIGS_DIR, TrainConfigError
from alignui.training.dpo import DPOTrainConfig
from alignui.training.preflight import PreflightReport

ACCELERATE = CONFIGS_DIR / "accelerate"
EXPECTED = {"ddp": ("MULTI_GPU", None), "zero2": ("DEEPSPEED", 2), "zero3": ("DEEPSPEED", 3),
            "zero3_offload": ("DEEPSPEED", 3), "fsdp": ("FSDP", None)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_accelerate_configs_load_and_validate_in_accelerate(name):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    path = ACCELERATE / f"{name}.yaml"
    loaded = load_config_from_file(str(path))  # accelerate's own reader: refuses unknown keys and bad types
    kind, stage = EXPECTED[name]
    assert loaded.distributed_type.value == kind and loaded.compute_environment.value == "LOCAL_MACHINE"
    if stage is not None:
        assert loaded.deepspeed_config["zero_stage"] == stage
    assert (loaded.deepspeed_config.get("offload_param_device") == "cpu") == (name == "zero3_offload")
    # the launcher's own validation of the very command alignui builds (no deepspeed needed to validate)
    args = launch_command_parser().parse_args(["--config_file", str(path), "--num_processes", "2",
                                               "--mixed_precision", "no", "-m", "alignui", "train", "dpo"])
    args, defaults, _ = _validate_launch_command(args)
    assert args.num_processes == 2 and args.mixed_precision == "no"
    assert args.use_deepspeed == (kind == "DEEPSPEED") and args.use_fsdp == (kind == "FSDP")
    assert args.multi_gpu == (kind == "MULTI_GPU")


def test_process_settings_are_validated():
    assert DPOTrainConfig().num_processes == 1 and DPOTrainConfig().report_to == "none"
    with pytest.raises(TrainConfigError, match="num_processes must be at least 1"):
        DPOTrainConfig(num_processes=0)
    with pytest.raises(TrainConfigError, match="no such file; use one of ddp, zero2"):
        DPOTrainConfig(num_processes=2, accelerate_config="zero9")
    with pytest.raises(TrainConfigError, match="CUDA GPUs or the CPU"):
        DPOTrainConfig(num_processes=2, device="mps")
    assert DPOTrainConfig.from_mapping({"report_to": "none", "num_processes": "2"}).num_processes == 2
    assert DPOTrainConfig(accelerate_config="zero3").accelerate_config == "zero3"
    assert "processes" in DPOTrainConfig.help_of("num_processes")


@pytest.mark.parametrize("name", ["tensorboard", "trackio", "wandb"])
def test_a_tracker_that_is_not_installed_is_refused_with_the_install_line(name, monkeypatch):
    monkeypatch.setattr(tracking, "installed", lambda n: False)
    with pytest.raises(TrainConfigError, match=f"pip install {name}") as err:
        DPOTrainConfig(report_to=name)
    assert "\n" not in str(err.value)
    with pytest.raises(TrainConfigError, match="report_to must be one of"):
        DPOTrainConfig(report_to="mlflow")


def test_run_records_where_metrics_went(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "dpo-1")
    run.path.mkdir()
    tracking.record("none", run)
    info = json.loads((run.path / "tracking.json").read_text())
    assert info["report_to"] == "none" and info["alignui"]["metrics"] == str(run.metrics_path)
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    args = tracking.tracking_arguments("tensorboard", run)
    assert args["report_to"] == ["tensorboard"] and args["run_name"] == "dpo-1"
    import os

    assert os.environ["TENSORBOARD_LOGGING_DIR"] == str(run.path / "tensorboard")
    tracking.record("tensorboard", run)
    assert json.loads((run.path / "tracking.json").read_text())["dir"] == str(run.path / "tensorboard")
    assert tracking.tracking_arguments("none", run) == {"report_to": "none"}


def test_launch_command(tmp_path):
    run = RunDir(tmp_path / "runs" / "dpo-x")
    snap = types.SimpleNamespace(path=tmp_path / "snapshots" / "s")
    config = DPOTrainConfig(device="cpu", num_processes=2)
    cmd = launch.launch_command("dpo", tmp_path, run, config, snap, resume=False)
    assert cmd[1:4] == ["-m", "accelerate.commands.launch", "--num_processes"] and cmd[4] == "2"
    assert "--multi_gpu" in cmd and cmd[cmd.index("--mixed_precision") + 1] == "no"
    assert cmd[cmd.index("-m", 3):][:4] == ["-m", "alignui", "train", "dpo"]
    assert cmd[-4:] == ["--config", str(run.config_path), "--snapshot", str(snap.path.resolve())]
    resumed = launch.launch_command("dpo", tmp_path, run, DPOTrainConfig(device="cpu", num_processes=2,
                                                                         accelerate_config="ddp"), snap, resume=True)
    assert resumed[-1] == "--resume" and "--multi_gpu" not in resumed
    assert resumed[resumed.index("--config_file") + 1] == str(ACCELERATE / "ddp.yaml")
    assert launch.needs_launch(config) and not launch.needs_launch(DPOTrainConfig())
    assert launch.needs_launch(DPOTrainConfig(accelerate_config="zero3"))  # ZeRO-3 offload on one GPU


def test_engine_reads_the_accelerate_config():
    assert launch.engine(DPOTrainConfig(num_processes=2))["type"] == "DDP"
    offload = launch.engine(DPOTrainConfig(num_processes=2, accelerate_config="zero3_offload"))
    assert offload["type"] == "DEEPSPEED" and offload["zero_stage"] == 3 and offload["offload"]
    assert launch.engine(DPOTrainConfig(accelerate_config="fsdp"))["type"] == "FSDP"


def report(**parts) -> PreflightReport:
    r = PreflightReport(rows=10, memory_parts=dict(parts), memory_bytes=sum(parts.values()),
                        available_bytes=64 * 2 ** 30)
    return r


CPU = types.SimpleNamespace(device="cpu")
CUDA = types.SimpleNamespace(device="cuda")


def test_preflight_reports_effective_batch_and_memory_per_device():
    r = report(weights=8 * 2 ** 30, activations=2 ** 30)
    launch.check_processes(r, DPOTrainConfig(num_processes=2, per_device_train_batch_size=4,
                                             gradient_accumulation_steps=3), CPU)
    assert r.ok and r.effective_batch == 24 and r.engine == "DDP" and r.memory_per_device == r.memory_bytes
    assert "effective batch **24**" in r.markdown() and "memory per device" in r.markdown()
    greedy = report(weights=40 * 2 ** 30)
    launch.check_processes(greedy, DPOTrainConfig(num_processes=2), CPU)  # 2 x 40 GiB > 64 GiB of RAM
    assert "2 processes need about 80.0 GiB" in greedy.refusals[0]


def test_preflight_refuses_what_cannot_work(monkeypatch):
    import torch

    on_cpu = report(weights=2 ** 30)
    launch.check_processes(on_cpu, DPOTrainConfig(num_processes=2, accelerate_config="zero3"), CPU)
    assert any("needs CUDA GPUs" in x for x in on_cpu.refusals)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    too_many = report(weights=2 ** 30)
    launch.check_processes(too_many, DPOTrainConfig(num_processes=2), CUDA)
    assert too_many.refusals == ["num_processes=2 but this machine has 1 CUDA GPU(s): one process per GPU; "
                                 "lower num_processes"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    sharded = report(weights=8 * 2 ** 30, activations=2 ** 30)
    launch.check_processes(sharded, DPOTrainConfig(num_processes=4, accelerate_config="zero3",
                                                   load_in_4bit=True), CUDA)
    assert any("ZeRO-3 cannot shard a 4-bit" in x for x in sharded.refusals)
    assert sharded.memory_per_device == 2 ** 30 + 2 * 2 ** 30  # weights split over 4 GPUs


def test_outside_a_launched_job_ranks_change_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(ranks.ENV_JOB_PID, raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    plan = types.SimpleNamespace(run=RunDir(tmp_path))
    assert not ranks.launched() and ranks.rank() == 0 and ranks.as_rank(plan) is plan and ranks.echo() is None
    import os

    assert ranks.owner_pid() == os.getpid() and ranks.synced_stop(lambda: True)() is True


def test_a_rank_past_0_writes_beside_the_run_but_shares_its_checkpoints(tmp_path):
    run = RunDir(tmp_path / "dpo-7")
    run.path.mkdir()
    view = ranks.rank_run(run, 1)
    assert view.id == "dpo-7" and view.status_path == run.path / "ranks" / "1" / "status.json"
    assert view.checkpoints_dir == run.checkpoints_dir and view.adapter_dir != run.adapter_dir
    view.update_status(state="running")
    assert not run.status_path.exists()


def test_the_supervisor_names_the_rank_error(tmp_path):
    run = RunDir(tmp_path / "dpo-8")
    run.path.mkdir()
    run.log_path.write_text("step 1/4 loss 0.69\n[rank 1] failed: RuntimeError: boom\nerror: run dpo-8 failed\n")
    assert launch.rank_error(run) == "[rank 1] failed: RuntimeError: boom"
    assert launch.exit_reason(-9) == "the launcher was killed by SIGKILL"
    assert Path(launch.ACCELERATE_DIR).is_dir()


def test_the_train_form_offers_processes_accelerate_config_and_report_to():
    from alignui.training.app.panel import form_fields
    from alignui.training.methods import get_method

    specs = {s.name: s for s in form_fields([get_method("dpo")])}
    assert specs["num_processes"].key and specs["num_processes"].kind == "int" and specs["num_processes"].default == 1
    assert specs["accelerate_config"].group == "scale" and specs["accelerate_config"].kind == "text"
    assert specs["report_to"].kind == "choice" and specs["report_to"].choices == ("none", "tensorboard", "trackio",
                                                                                 "wandb")


def test_a_rank_of_any_launcher_never_launches_again(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "16")  # e.g. a multi-machine `accelerate launch` typed by hand
    monkeypatch.setenv("RANK", "3")
    monkeypatch.delenv(ranks.ENV_JOB_PID, raising=False)
    assert ranks.launched() and not ranks.supervised() and ranks.rank() == 3
    assert not launch.needs_launch(DPOTrainConfig(num_processes=16))
    import os

    assert ranks.owner_pid() == os.getpid()


def test_the_watchdog_ends_a_rank_whose_supervisor_is_a_zombie(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    supervisor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    rank = subprocess.Popen([sys.executable, "-c", f"import time; from alignui.training.ranks import start_watchdog; "
                             f"start_watchdog({supervisor.pid}, every_s=0.1); time.sleep(60)"], cwd=REPO)
    time.sleep(3)
    assert rank.poll() is None  # the supervisor lives: the rank keeps going
    supervisor.kill()  # not reaped yet: a zombie, as a killed job is until the runner polls it
    assert rank.wait(timeout=20) == 70
    supervisor.wait()
